//! `users.login`.

use crate::common::TestApp;
use proto_msgs::ErrorCode;
use std::time::{Duration, Instant};

#[tokio::test]
async fn login_returns_a_bearer_token() {
    let app = TestApp::spawn().await;
    let user = app
        .register("ada@example.com", "correct horse", "Ada")
        .await;
    let token = app
        .try_login("  ADA@example.com ", "correct horse")
        .await
        .unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 900);
    let claims = user_svc::tokens::verify(
        &token.access_token,
        app.issuer(Duration::from_secs(1)).jwks(),
        "shop-user-svc",
        "shop",
    )
    .unwrap();
    assert_eq!(claims.sub, user.id.to_string());
    app.stop().await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com", "correct horse", "Ada")
        .await;
    let wrong = app
        .try_login("ada@example.com", "wrong horse")
        .await
        .unwrap_err();
    let unknown = app
        .try_login("nobody@example.com", "correct horse")
        .await
        .unwrap_err();
    assert_eq!(wrong.code, ErrorCode::Unauthenticated);
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.message, "email or password is incorrect");
    // A password shorter than any that can be set is just incorrect: a login does not
    // tell the 8-byte minimum of new passwords.
    for short in ["x", "1234567"] {
        let err = app.try_login("ada@example.com", short).await.unwrap_err();
        assert_eq!(err, wrong, "{short:?}");
    }
    // Over-long passwords can never match (and are refused as such, not cut).
    let err = app
        .try_login("ada@example.com", &"x".repeat(73))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn malformed_login_requests_are_invalid_arguments() {
    let app = TestApp::spawn().await;
    for (email, password, field) in [
        ("", "password123", "email"),
        ("nope", "password123", "email"),
        ("ada@example.com", "", "password"),
    ] {
        let err = app.try_login(email, password).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.details, Some(serde_json::json!({"field": field})));
    }
    app.stop().await;
}

/// An unknown email still costs one bcrypt verification at the configured cost. Only a
/// lower bound is checked (the work can't be skipped), never an upper one.
#[tokio::test]
async fn an_unknown_email_costs_a_bcrypt_verification() {
    let app = TestApp::spawn_with(|_, c| c.bcrypt_cost = 8).await;
    app.register("ada@example.com", "correct horse", "Ada")
        .await;
    // What one cost-8 bcrypt takes on this machine, at the least.
    let mut floor = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        tokio::task::spawn_blocking(|| bcrypt::non_truncating_hash("calibrate", 8).unwrap())
            .await
            .unwrap();
        floor = floor.min(started.elapsed() / 4);
    }
    let started = Instant::now();
    let err = app
        .try_login("nobody@example.com", "correct horse")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    let unknown = started.elapsed();
    assert!(
        unknown >= floor,
        "unknown email answered in {unknown:?}, less than a quarter of one bcrypt ({floor:?})"
    );
    app.stop().await;
}
