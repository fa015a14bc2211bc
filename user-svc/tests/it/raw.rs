//! How another team would call us: plain lapin, hand-written JSON, exact replies.

use crate::common::TestApp;
use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn hand_written_register_and_login() {
    let app = TestApp::spawn().await;
    let conn = app.bus.config().connect("raw test").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut replies = ch
        .basic_consume(
            q.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let exchange = app.bus.topology().rpc_exchange();
    let mut call = async |method: &str, body: &[u8], corr: &str| -> Value {
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(q.name().clone())
            .with_correlation_id(corr.into());
        ch.basic_publish(
            exchange.as_str().into(),
            method.into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .unwrap();
        let d = tokio::time::timeout(Duration::from_secs(10), replies.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            d.properties.correlation_id().as_ref().unwrap().as_str(),
            corr
        );
        serde_json::from_slice(&d.data).unwrap()
    };

    let reply = call(
        "users.register",
        br#"{"email": " Raw@Example.com ", "password": "password123", "name": "Raw", "role": "admin"}"#,
        "c-1",
    )
    .await;
    let data = &reply["data"];
    let id = data["id"].as_str().unwrap();
    uuid::Uuid::parse_str(id).unwrap();
    let created_at = data["created_at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(created_at).unwrap();
    assert_eq!(
        reply,
        json!({"data": {
            "id": id,
            "email": "raw@example.com",
            "name": "Raw",
            "role": "user",
            "created_at": created_at,
            "updated_at": created_at,
        }})
    );

    let reply = call(
        "users.login",
        br#"{"email": "raw@example.com", "password": "password123"}"#,
        "c-2",
    )
    .await;
    let token = reply["data"]["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    assert_eq!(
        reply,
        json!({"data": {"access_token": token, "token_type": "Bearer", "expires_in": 3600}})
    );

    let reply = call(
        "users.login",
        br#"{"email": "raw@example.com", "password": "wrong password"}"#,
        "c-3",
    )
    .await;
    assert_eq!(
        reply,
        json!({"error": {"code": "unauthenticated", "message": "email or password is incorrect"}})
    );

    let reply = call(
        "users.register",
        br#"{"email": "raw2@example.com", "password": "short", "name": "Raw"}"#,
        "c-4",
    )
    .await;
    assert_eq!(
        reply,
        json!({"error": {
            "code": "invalid_argument",
            "message": "password must be at least 8 bytes long",
            "details": {"field": "password"}
        }})
    );

    let reply = call(
        "users.register",
        br#"{"email": "RAW@example.com", "password": "password123", "name": "Raw"}"#,
        "c-5",
    )
    .await;
    assert_eq!(reply["error"]["code"], "already_exists");

    let reply = call("users.register", b"{not json", "c-6").await;
    assert_eq!(reply["error"]["code"], "invalid_argument");

    let _ = conn.close(200, "bye".into()).await;
    app.stop().await;
}
