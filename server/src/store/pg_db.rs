//! The handle every PostgreSQL statement goes through: the pool, or, behind a PgBouncer in
//! transaction pooling mode (`pgbouncer=true` in DATABASE_URL), the pool with each
//! statement made safe for it.
//!
//! Such a pooler gives each *transaction* whichever server connection is free. sqlx runs a
//! statement with parameters in two exchanges (parse and describe, then bind and execute,
//! each ending in a sync that ends an implicit transaction), and names the statements it
//! prepares per client connection (`sqlx_s_1`, ...) without closing them when its cache is
//! off: through such a pooler the second exchange can land on another server connection,
//! and one client's names collide with another's on a shared one. So, behind PgBouncer,
//! every statement is unnamed and runs inside an explicit transaction (one `BEGIN` and
//! one `COMMIT` more: two round trips, which is what a pooler in this mode costs), and
//! transactions opened with [`PgDb::begin`] prepare nothing by name either. Directly
//! connected, this is the pool itself, at no cost.

use std::fmt;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgConnection, PgPool, Postgres, Transaction};

/// The pool, and whether a transaction-pooling PgBouncer sits in front of it. Cheap to
/// clone (the pool is shared).
#[derive(Clone)]
pub struct PgDb {
    pool: PgPool,
    pooled: bool,
}

impl fmt::Debug for PgDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDb").field("pooled", &self.pooled).finish_non_exhaustive()
    }
}

impl PgDb {
    /// `pool`, connected directly (`pooled` false) or through PgBouncer in transaction mode.
    #[must_use]
    pub fn new(pool: PgPool, pooled: bool) -> PgDb {
        PgDb { pool, pooled }
    }

    /// The pool itself: for what needs a whole connection of its own (LISTEN, which a
    /// pooler cannot carry anyway), or to close it.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether a transaction-pooling PgBouncer sits in front.
    #[must_use]
    pub fn is_pooled(&self) -> bool {
        self.pooled
    }

    /// Starts a transaction whose statements are safe behind the pooler too.
    ///
    /// # Errors
    /// The database's.
    pub async fn begin(&self) -> Result<PgTx, sqlx::Error> {
        Ok(PgTx { tx: self.pool.begin().await?, pooled: self.pooled })
    }
}

/// A transaction of a [`PgDb`]; rolled back when dropped uncommitted.
pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    pooled: bool,
}

impl fmt::Debug for PgTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTx").field("pooled", &self.pooled).finish_non_exhaustive()
    }
}

impl PgTx {
    /// Commits.
    ///
    /// # Errors
    /// The database's.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// A statement that prepares nothing by name (behind the pooler), else as it was.
struct Unnamed<E> {
    inner: E,
    unnamed: bool,
}

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Unnamed<E> {
    fn sql(&self) -> &'q str {
        self.inner.sql()
    }

    fn statement(&self) -> Option<&PgStatement<'q>> {
        self.inner.statement()
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, BoxDynError> {
        self.inner.take_arguments()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent() && !self.unnamed
    }
}

type Step = Either<PgQueryResult, PgRow>;

// As sqlx's own for `&Pool`: for any `'c`, whatever the borrow's lifetime (what runs holds
// its own handle on the pool).
impl<'c> Executor<'c> for &'_ PgDb {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooled {
            return <&PgPool as Executor<'c>>::fetch_many(&self.pool, query);
        }
        // One statement, one transaction: its results are collected before the commit (the
        // server's statements read bounded pages).
        let pool = self.pool.clone();
        let run = async move {
            let mut tx = pool.begin().await?;
            let steps: Vec<Step> = (&mut *tx).fetch_many(Unnamed { inner: query, unnamed: true }).try_collect().await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(steps)
        };
        stream::once(run)
            .map(|result| match result {
                Ok(steps) => stream::iter(steps.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::iter([Err(e)]).right_stream(),
            })
            .flatten()
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooled {
            return <&PgPool as Executor<'c>>::fetch_optional(&self.pool, query);
        }
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut tx = pool.begin().await?;
            let row = (&mut *tx).fetch_optional(Unnamed { inner: query, unnamed: true }).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        <&PgPool as Executor<'c>>::prepare_with(&self.pool, sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        <&PgPool as Executor<'c>>::describe(&self.pool, sql)
    }
}

impl<'c> Executor<'c> for &'c mut PgTx {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let conn: &'c mut PgConnection = &mut self.tx;
        conn.fetch_many(Unnamed { inner: query, unnamed: self.pooled })
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let conn: &'c mut PgConnection = &mut self.tx;
        conn.fetch_optional(Unnamed { inner: query, unnamed: self.pooled })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        let conn: &'c mut PgConnection = &mut self.tx;
        conn.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        let conn: &'c mut PgConnection = &mut self.tx;
        conn.describe(sql)
    }
}
