//! Test support shared by this crate's integration tests and the SDK's: a fresh
//! PostgreSQL database per test with the app's tables, and token minting.
//! Compiled only with the `testing` feature; never part of the shipped binary.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, missing_docs)]

use chat_protocol::MessageId;
use sqlx::PgPool;

use crate::schema;
use crate::store::{PgStore, Store};

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
        schema::apply(&db.pool, "public", None).await.unwrap();
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes() -> [u8; 6] {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::time::SystemTime::now());
    let b = n.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}
