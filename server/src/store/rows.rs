//! Named row types read by position from either backend ([`row!`]): the SQL stays as it is,
//! and no caller destructures a ten-field tuple.

/// A named row type read by position (the columns in the order the fields are written; a
/// field may itself be a row, which reads its columns in turn), from either backend. The
/// SQL stays as it is, and no caller destructures a ten-field tuple.
macro_rules! row {
    ($(#[$meta:meta])* struct $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub(crate) struct $name {
            $(pub(crate) $field: $ty,)*
        }

        impl $crate::store::ReadRow for $name {
            const WIDTH: usize = 0 $(+ <$ty as $crate::store::ReadRow>::WIDTH)*;

            fn read<R: $crate::store::AnyRow>(row: &R, at: usize) -> Result<Self, sqlx::Error> {
                let mut _at = at;
                Ok($name {
                    $($field: {
                        let value = <$ty as $crate::store::ReadRow>::read(row, _at)?;
                        _at += <$ty as $crate::store::ReadRow>::WIDTH;
                        value
                    },)*
                })
            }
        }

        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for $name {
            fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                <$name as $crate::store::ReadRow>::read(row, 0)
            }
        }

        impl<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> for $name {
            fn from_row(row: &'r sqlx::sqlite::SqliteRow) -> Result<Self, sqlx::Error> {
                <$name as $crate::store::ReadRow>::read(row, 0)
            }
        }
    };
}

/// A row of either backend, read by position.
pub(crate) trait AnyRow {
    /// The column at `index`.
    ///
    /// # Errors
    /// A missing column or one of another type.
    fn column<T: ColumnValue>(&self, index: usize) -> Result<T, sqlx::Error>;
}

/// A column type both backends decode.
pub(crate) trait ColumnValue:
    for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
    + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
{
}

impl<T> ColumnValue for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
{
}

impl AnyRow for sqlx::postgres::PgRow {
    fn column<T: ColumnValue>(&self, index: usize) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

impl AnyRow for sqlx::sqlite::SqliteRow {
    fn column<T: ColumnValue>(&self, index: usize) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

/// What a [`row!`] type is made of: a column, or a row of columns.
pub(crate) trait ReadRow: Sized {
    /// How many columns it takes.
    const WIDTH: usize;

    /// Reads it from `row`, starting at column `at`.
    ///
    /// # Errors
    /// A missing column or one of another type.
    fn read<R: AnyRow>(row: &R, at: usize) -> Result<Self, sqlx::Error>;
}

macro_rules! column {
    ($($ty:ty),*) => {
        $(impl ReadRow for $ty {
            const WIDTH: usize = 1;

            fn read<R: AnyRow>(row: &R, at: usize) -> Result<Self, sqlx::Error> {
                row.column(at)
            }
        })*
    };
}
column!(i64, i32, bool, String, Option<String>, Option<i32>);
