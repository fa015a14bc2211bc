//! `make up` / `make down` the way a newcomer runs them (native path), with this test's
//! own port, run directory, databases and broker names, then the main flow over HTTP.

use proto_msgs::testing::{TestBus, management_url};
use serde_json::Value;
use svc_kit::testing::TestDb;
use system_tests::make::{MakeSystem, alive, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_up_runs_the_main_flow_and_make_down_leaves_nothing() {
    let bus = TestBus::new();
    let users_db = TestDb::new().await;
    let orders_db = TestDb::new().await;
    let admin_password = "e2e-admin-password";
    let system = MakeSystem::new(vec![
        ("USERS_DB".into(), users_db.name.clone()),
        ("ORDERS_DB".into(), orders_db.name.clone()),
        ("BUS_PREFIX".into(), bus.topology().prefix().to_owned()),
        ("ADMIN_EMAIL".into(), "e2e-admin@example.com".into()),
        ("ADMIN_PASSWORD".into(), admin_password.into()),
    ]);

    let up = system.make("up");
    assert!(up.status.success(), "make up failed:\n{}", text(&up));
    assert!(text(&up).contains("The shop is up"), "{}", text(&up));
    let pids = system.pids();
    assert_eq!(pids.len(), 3, "three processes started");
    assert!(pids.iter().all(|p| alive(*p)));
    // A second `make up` notices the running system instead of starting another.
    let again = system.make("up");
    assert!(
        again.status.success() && text(&again).contains("already running"),
        "{}",
        text(&again)
    );
    assert!(text(&system.make("ps")).contains("running"));

    let base = system.base_url();
    let http = reqwest::Client::new();
    system_tests::http::main_flow(&http, &base, "e2e-admin@example.com", admin_password)
        .await
        .unwrap();

    // The queues and exchanges of DESIGN.md, as the management API sees them.
    let mgmt = management_url();
    let prefix = bus.topology().prefix();
    for queue in [
        "users.rpc",
        "orders.rpc",
        "users.events",
        "orders.events",
        "users.events.dlq",
        "orders.events.dlq",
    ] {
        let r = http
            .get(format!("{mgmt}/api/queues/%2f/{prefix}.{queue}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "queue {queue} exists");
        let q: Value = r.json().await.unwrap();
        assert_eq!(q["durable"], true, "{queue} is durable");
    }
    for exchange in ["rpc", "events"] {
        let r: Value = http
            .get(format!("{mgmt}/api/exchanges/%2f/{prefix}.{exchange}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["type"], "topic");
    }
    let dlq: Value = http
        .get(format!("{mgmt}/api/queues/%2f/{prefix}.users.events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        dlq["arguments"]["x-dead-letter-routing-key"],
        format!("{prefix}.users.events.dlq")
    );

    let down = system.make("down");
    assert!(down.status.success(), "{}", text(&down));
    for pid in &pids {
        assert!(!alive(*pid), "process {pid} is gone after make down");
    }
    assert!(system.pids().is_empty(), "pid files removed");
    assert!(text(&system.make("ps")).contains("stopped"));
    let graceful = system.log("order-svc");
    assert!(
        graceful.contains("stopped"),
        "order-svc shut down gracefully:\n{graceful}"
    );
}
