//! Start-up on a fresh database, health, metrics, shutdown.

use crate::common::TestApp;
use proto_msgs::rpc::MetricsText;
use proto_msgs::users::methods;
use serde_json::Value;

#[tokio::test]
async fn answers_health_and_metrics() {
    let app = TestApp::spawn().await;
    let health: Value = app
        .call(methods::HEALTH, &serde_json::json!({}), None)
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "users");

    app.register("ada@example.com", "password123", "Ada").await;
    let m: MetricsText = app
        .call(methods::METRICS, &serde_json::json!({}), None)
        .await
        .unwrap();
    assert!(
        m.text.contains(
            r#"rpc_server_requests_total{method="users.register",outcome="ok",service="users"} 1"#
        ),
        "{}",
        m.text
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_database_is_a_start_up_error() {
    let bus = proto_msgs::testing::TestBus::new();
    let mut config =
        user_svc::Config::for_tests(bus.config(), "postgres://postgres@127.0.0.1:1/nothing");
    config.service.db.acquire_timeout = std::time::Duration::from_millis(500);
    let err = user_svc::start(config, proto_msgs::CancellationToken::new())
        .await
        .err()
        .expect("start-up fails");
    assert!(err.to_string().contains("database"), "{err}");
}
