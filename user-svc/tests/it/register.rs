//! `users.register`.

use crate::common::TestApp;
use proto_msgs::ErrorCode;
use proto_msgs::users::{User, methods};
use serde_json::{Value, json};

#[tokio::test]
async fn registers_a_user_and_never_returns_the_hash() {
    let app = TestApp::spawn().await;
    let user = app
        .register(
            "  Ada.Lovelace@Example.COM ",
            "correct horse",
            "  Ada Lovelace ",
        )
        .await;
    assert_eq!(user.email, "ada.lovelace@example.com");
    assert_eq!(user.name, "Ada Lovelace");
    assert_eq!(user.role, proto_msgs::Role::User);
    assert_eq!(user.created_at, user.updated_at);

    // Raw reply: exactly the public fields.
    let raw: Value = app
        .call(
            methods::REGISTER,
            &json!({"email": "grace@example.com", "password": "password123", "name": "Grace"}),
            None,
        )
        .await
        .unwrap();
    let mut keys: Vec<&str> = raw
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "disabled",
            "email",
            "id",
            "name",
            "role",
            "updated_at"
        ]
    );
    assert!(!raw.to_string().contains("$2b$"));
    app.stop().await;
}

#[tokio::test]
async fn a_role_in_the_request_is_ignored() {
    let app = TestApp::spawn().await;
    let user: User = app
        .call(
            methods::REGISTER,
            &json!({"email": "mallory@example.com", "password": "password123", "name": "M", "role": "admin"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(user.role, proto_msgs::Role::User);
    let token = app
        .try_login("mallory@example.com", "password123")
        .await
        .unwrap();
    let claims = user_svc::tokens::verify(
        &token.access_token,
        app.issuer(std::time::Duration::from_secs(1)).jwks(),
        "shop-user-svc",
        "shop",
    )
    .unwrap();
    assert_eq!(claims.role, proto_msgs::Role::User);
    app.stop().await;
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let app = TestApp::spawn().await;
    let long_name = "n".repeat(101);
    let long_password = "p".repeat(73);
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("", "password123", "A", "email"),
        ("not-an-email", "password123", "A", "email"),
        ("a@b", "password123", "A", "email"),
        ("a b@example.com", "password123", "A", "email"),
        ("a@example.com", "short", "A", "password"),
        ("a@example.com", "1234567", "A", "password"),
        ("a@example.com", &long_password, "A", "password"),
        ("a@example.com", "password123", "", "name"),
        ("a@example.com", "password123", "   ", "name"),
        ("a@example.com", "password123", &long_name, "name"),
    ];
    for (email, password, name, field) in cases {
        let err = app.try_register(email, password, name).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument, "{email:?} {name:?}");
        assert_eq!(
            err.details,
            Some(json!({"field": field})),
            "{email:?} {name:?}"
        );
    }
    let err = app
        .try_register("a@example.com", &long_password, "A")
        .await
        .unwrap_err();
    assert!(err.message.contains("72 bytes"), "{}", err.message);
    assert!(err.message.contains("bcrypt"), "{}", err.message);
    // 72 bytes exactly is fine, and all 72 count: a 73rd byte would have been refused.
    let exactly = "p".repeat(72);
    app.register("max@example.com", &exactly, "Max").await;
    assert!(app.try_login("max@example.com", &exactly).await.is_ok());
    let mut shorter = exactly.clone();
    shorter.pop();
    assert_eq!(
        app.try_login("max@example.com", &shorter)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Unauthenticated
    );

    // A missing field is refused before any work.
    let err = app
        .call::<_, Value>(methods::REGISTER, &json!({"email": "a@example.com"}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.register("dup@example.com", "password123", "First")
        .await;
    for variant in ["dup@example.com", "DUP@Example.com", "  dup@EXAMPLE.COM  "] {
        let err = app
            .try_register(variant, "password456", "Second")
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::AlreadyExists, "{variant:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_email_let_exactly_one_through() {
    // Room in the bcrypt lane for all 20 at once: the race is the point here.
    let app = TestApp::spawn_with(|_, c| {
        c.bcrypt_lane = user_svc::config::LaneSize {
            concurrency: 2,
            queue: 24,
        }
    })
    .await;
    let variants = [
        "race@example.com",
        "RACE@example.com",
        "Race@Example.Com",
        " race@example.com",
        "race@example.com ",
        "\trace@EXAMPLE.com",
    ];
    let calls = (0..20).map(|i| {
        let email = variants[i % variants.len()];
        app.try_register(email, "password123", "Racer")
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let dup = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code == ErrorCode::AlreadyExists))
        .count();
    assert_eq!((ok, dup), (1, 19), "{results:?}");
    app.stop().await;
}
