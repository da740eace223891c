//! The operational endpoints: health, readiness, metrics.

#![allow(clippy::unwrap_used)]

mod common;

use chat_protocol::{ClientFrame, ServerFrame, UserRef};
use common::{Backend, Client, TestStore, new_id, start};
use rstest::rstest;

#[rstest]
#[tokio::test]
async fn healthz_readyz_and_metrics_report_the_servers_state(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let http = reqwest::Client::new();
    let health: serde_json::Value =
        http.get(format!("{}/healthz", server.http_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["protocol"], chat_protocol::PROTOCOL_VERSION);
    assert_eq!(health["connections"], 0);

    let mut teacher = Client::login(&server, UserRef::teacher(1)).await;
    let (_, ack) = teacher.send_message(UserRef::student(1), "counted").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }));
    teacher.send(&ClientFrame::Send { req: 99, id: new_id(), to: UserRef::student(1), content: " ".into() }).await;
    let (_, _) = teacher.recv_until(|f| f.request_id() == Some(99)).await;

    let health: serde_json::Value =
        http.get(format!("{}/healthz", server.http_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["connections"], 1);

    let ready = http.get(format!("{}/readyz", server.http_url())).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready, serde_json::json!({ "database": "ok", "writer": "ok", "bus": "none" }));

    let metrics = http.get(format!("{}/metrics", server.http_url())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chat_messages_stored_total 1"), "{metrics}");
    assert!(metrics.contains("chat_connections 1"), "{metrics}");
    assert!(metrics.contains(r#"chat_errors_total{code="content_empty"} 1"#), "{metrics}");
    assert!(metrics.contains("chat_batch_size_count 1"), "{metrics}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_gone() {
    let db = common::TestDb::ready().await;
    let server = start(&db).await;
    // Take the database away under the running server.
    let admin = sqlx::PgPool::connect(&common::admin_url()).await.unwrap();
    sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", db.name)).execute(&admin).await.unwrap();
    let ready = reqwest::get(format!("{}/readyz", server.http_url())).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");
    server.stop().await.unwrap();
}
