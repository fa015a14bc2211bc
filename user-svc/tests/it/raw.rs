//! How another team would call us: plain lapin, hand-written JSON, exact replies.

use crate::common::TestApp;
use proto_msgs::testing::RawRpc;
use serde_json::{Value, json};

#[tokio::test]
async fn hand_written_register_and_login() {
    let app = TestApp::spawn().await;
    let mut raw = RawRpc::connect(&app.bus.config()).await;
    let mut call = async |method: &str, body: &[u8], corr: &str| -> Value {
        let reply = raw.call(method, body, corr, &[]).await;
        assert_eq!(reply.correlation_id.as_deref(), Some(corr));
        reply.body
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
            "disabled": false,
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
    let refresh = reply["data"]["refresh_token"].as_str().unwrap();
    assert_eq!(refresh.len(), proto_msgs::users::REFRESH_TOKEN_LEN);
    assert_eq!(
        reply,
        json!({"data": {"access_token": token, "token_type": "Bearer", "expires_in": 900,
                        "refresh_token": refresh, "refresh_expires_in": 14 * 86_400}})
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
            "message": "invalid request body: password: must be at least 8 bytes long",
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

    raw.close().await;
    app.stop().await;
}
