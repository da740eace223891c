//! Test support shared by this crate's integration tests and the SDK's: a fresh database
//! per test with the app's users, on either backend ([`TestStore`]), or a PostgreSQL one
//! for what only PostgreSQL has ([`TestDb`]: `setup`, `check-db`, Prisma's DDL).
//! Compiled only with the `testing` feature; never part of the shipped binary.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, missing_docs)]

use std::path::PathBuf;

use chat_protocol::MessageId;
use sqlx::PgPool;

use crate::store::schema;
use crate::store::{PgStore, SqliteStore, Store};

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test, dropped (forcibly) when the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

/// The host app's own tables, as the verified app has them, with overlapping ids.
pub const APP_TABLES: &str = r#"
CREATE TABLE "Teacher" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE "Student" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO "Teacher" (name) VALUES ('T-Alice'), ('T-Bob');
INSERT INTO "Student" (name) VALUES ('S-Carol'), ('S-Dan'), ('S-Eve');
"#;

impl TestDb {
    /// The database as the server's code takes it (connected directly).
    #[must_use]
    pub fn db(&self) -> crate::store::PgDb {
        crate::store::PgDb::new(self.pool.clone(), false)
    }

    /// An empty database (no tables at all).
    pub async fn empty() -> TestDb {
        let admin = admin_url();
        let name = format!("chat_test_{}", hex(&random_bytes()));
        let admin_pool = PgPool::connect(&admin).await.expect("the test PostgreSQL server is reachable");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin_pool).await.unwrap();
        admin_pool.close().await;
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        let pool = PgPool::connect(&url).await.unwrap();
        TestDb { name, url, pool }
    }

    /// A database with the app's Teacher and Student tables but no chat schema.
    pub async fn with_app_tables() -> TestDb {
        let db = TestDb::empty().await;
        sqlx::raw_sql(APP_TABLES).execute(&db.pool).await.unwrap();
        db
    }

    /// A database ready for the chat: app tables plus `chat-server setup`.
    pub async fn ready() -> TestDb {
        let db = TestDb::with_app_tables().await;
        schema::apply(&db.db(), "public", None).await.unwrap();
        db
    }

    pub fn store(&self) -> Store {
        Store::Postgres(PgStore::new(self.pool.clone()))
    }

    pub async fn message_count(&self) -> i64 {
        sqlx::query_scalar(r#"SELECT count(*) FROM "Message""#).fetch_one(&self.pool).await.unwrap()
    }

    pub async fn count_id(&self, id: MessageId) -> i64 {
        sqlx::query_scalar(r#"SELECT count(*) FROM "Message" WHERE id = $1"#)
            .bind(id.hyphenated().as_str())
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // The test's runtime may be blocked right here (this runs inside it), so the pool it
        // drives cannot be closed gracefully: drop the database with FORCE, which ends its
        // sessions from the server side, from a private runtime on another thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(admin) = PgPool::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A backend the same test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A fresh database on the test PostgreSQL server.
    Postgres,
    /// A fresh SQLite file in the temporary directory.
    Sqlite,
}

/// A SQLite file of its own for one test, deleted when the value is dropped.
#[derive(Debug)]
pub struct TestSqlite {
    pub path: PathBuf,
    pub store: SqliteStore,
}

impl TestSqlite {
    /// A fresh file with the schema applied and the same users as [`APP_TABLES`].
    pub async fn ready() -> TestSqlite {
        let path = std::env::temp_dir().join(format!("chat_test_{}.db", hex(&random_bytes())));
        let store = SqliteStore::open(&path).await.unwrap();
        sqlx::raw_sql(
            r#"INSERT INTO "Teacher" (name) VALUES ('T-Alice'), ('T-Bob');
               INSERT INTO "Student" (name) VALUES ('S-Carol'), ('S-Dan'), ('S-Eve');"#,
        )
        .execute(store.pool())
        .await
        .unwrap();
        TestSqlite { path, store }
    }
}

impl Drop for TestSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

/// A fresh, ready database on either backend, with the users of [`APP_TABLES`].
#[derive(Debug)]
pub enum TestStore {
    Postgres(TestDb),
    Sqlite(TestSqlite),
}

/// A `Message` row as a test reads it back: sender role and id, recipient role and id,
/// content, `isRead`, `createdAt` and `updatedAt` in milliseconds.
pub type StoredRow = (String, i32, String, i32, String, bool, i64, i64);

impl TestStore {
    pub async fn ready(backend: Backend) -> TestStore {
        match backend {
            Backend::Postgres => TestStore::Postgres(TestDb::ready().await),
            Backend::Sqlite => TestStore::Sqlite(TestSqlite::ready().await),
        }
    }

    pub fn store(&self) -> Store {
        match self {
            TestStore::Postgres(db) => db.store(),
            TestStore::Sqlite(db) => Store::Sqlite(db.store.clone()),
        }
    }

    /// Runs a statement written in SQL both backends accept.
    pub async fn execute(&self, sql: &str) {
        match self {
            TestStore::Postgres(db) => drop(sqlx::query(sql).execute(&db.pool).await.unwrap()),
            TestStore::Sqlite(db) => drop(sqlx::query(sql).execute(db.store.pool()).await.unwrap()),
        }
    }

    /// The single integer a query (in SQL both backends accept) returns.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self {
            TestStore::Postgres(db) => sqlx::query_scalar(sql).fetch_one(&db.pool).await.unwrap(),
            TestStore::Sqlite(db) => sqlx::query_scalar(sql).fetch_one(db.store.pool()).await.unwrap(),
        }
    }

    pub async fn message_count(&self) -> i64 {
        self.scalar(r#"SELECT count(*) FROM "Message""#).await
    }

    pub async fn count_id(&self, id: MessageId) -> i64 {
        self.scalar(&format!(r#"SELECT count(*) FROM "Message" WHERE id = '{}'"#, id.hyphenated().as_str())).await
    }

    /// The row with this id, read straight from the table.
    pub async fn row(&self, id: MessageId) -> StoredRow {
        let id = id.hyphenated();
        match self {
            TestStore::Postgres(db) => sqlx::query_as(
                r#"SELECT "senderRole", "senderId", "recipientRole", "recipientId", content, "isRead",
                          (EXTRACT(EPOCH FROM "createdAt") * 1000)::int8, (EXTRACT(EPOCH FROM "updatedAt") * 1000)::int8
                   FROM "Message" WHERE id = $1"#,
            )
            .bind(id.as_str())
            .fetch_one(&db.pool)
            .await
            .unwrap(),
            TestStore::Sqlite(db) => sqlx::query_as(
                r#"SELECT "senderRole", "senderId", "recipientRole", "recipientId", content, "isRead",
                          "createdAt", "updatedAt"
                   FROM "Message" WHERE id = ?1"#,
            )
            .bind(id.as_str())
            .fetch_one(db.store.pool())
            .await
            .unwrap(),
        }
    }
}

/// Anything a test server can be started on.
pub trait HasStore {
    fn store(&self) -> Store;
}

impl HasStore for TestDb {
    fn store(&self) -> Store {
        TestDb::store(self)
    }
}

impl HasStore for TestStore {
    fn store(&self) -> Store {
        TestStore::store(self)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes() -> [u8; 6] {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::time::SystemTime::now());
    let b = n.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// What another node of the deployment (or an attacker who holds the cluster key) would put
/// on the bus: the sealed payload of a log wake-up carrying `rows` (a bare wake-up when
/// empty) from node `node`, its `seq`th payload, sealed now.
pub fn sealed_wake_up(
    keys: &crate::delivery::bus::BusKeys,
    channel: &str,
    node: u64,
    seq: u64,
    rows: Vec<(u64, chat_protocol::StoredMessage)>,
) -> Vec<u8> {
    let event = if rows.is_empty() {
        crate::delivery::bus::BusEvent::Log
    } else {
        crate::delivery::bus::BusEvent::Logged(rows)
    };
    sealed_events(keys, channel, node, seq, &[event])
}

/// A sealed presence announcement: `users` online on node `node`.
pub fn sealed_online(
    keys: &crate::delivery::bus::BusKeys,
    channel: &str,
    node: u64,
    seq: u64,
    users: Vec<chat_protocol::UserRef>,
) -> Vec<u8> {
    sealed_events(keys, channel, node, seq, &[crate::delivery::bus::BusEvent::Online(users)])
}

/// A sealed payload whose body is not bus events at all.
pub fn sealed_garbage(keys: &crate::delivery::bus::BusKeys, channel: &str, node: u64, seq: u64) -> Vec<u8> {
    let header = crate::delivery::bus::seal::Header { node, seq, sent_ms: crate::now_ms() };
    keys.seal(channel, header, &[0xff, 0xff, 0xff, 0x01])
}

fn sealed_events(
    keys: &crate::delivery::bus::BusKeys,
    channel: &str,
    node: u64,
    seq: u64,
    events: &[crate::delivery::bus::BusEvent],
) -> Vec<u8> {
    let header = crate::delivery::bus::seal::Header { node, seq, sent_ms: crate::now_ms() };
    keys.seal(channel, header, &postcard::to_allocvec(events).unwrap())
}

/// A payload as the PostgreSQL bus carries it: base64 (standard, unpadded) text.
#[must_use]
pub fn notify_text(payload: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(payload)
}
