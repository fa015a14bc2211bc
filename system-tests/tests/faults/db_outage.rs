//! order-svc loses its database (a TCP proxy in front of PostgreSQL, cut): orders
//! routes answer 503 (not 504 or 500), users routes keep working, and the
//! `user.registered` events of the outage wait in `orders.events` until the database
//! is back, then reach the customers projection.

use proto_msgs::testing::TcpProxy;
use std::time::{Duration, Instant};
use system_tests::harness::{
    Stack, StackOptions, database_server, eventually, order_items, sql_i64, status_json,
};

const DURING_OUTAGE: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_database_outage_is_503_and_user_events_wait() {
    let proxy = TcpProxy::start(&database_server()).await;
    let stack = Stack::start(StackOptions {
        orders_db_port: Some(proxy.port()),
        // A query gives up on the pool after 1 s, so an outage answers fast.
        ..StackOptions::full().orders_env("DB_ACQUIRE_TIMEOUT_MS", 1000)
    })
    .await;
    let session = system_tests::http::Session::new(&stack.base, stack.http.clone())
        .await
        .expect("session");
    session
        .create_order()
        .await
        .expect("an order before the outage");
    let create = async || {
        let started = Instant::now();
        let resp = session
            .http
            .post(stack.url("/orders"))
            .bearer_auth(&session.token)
            .json(&order_items())
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        (status, body, started.elapsed())
    };

    proxy.cut();
    let mut latencies = Vec::new();
    for _ in 0..3 {
        let (status, body, elapsed) = create().await;
        assert_eq!(status, 503, "create during the outage: {body}");
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
        latencies.push(elapsed);
        let resp = session
            .http
            .get(stack.url("/orders"))
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 503, "list during the outage: {body}");
    }
    let ready = stack
        .http
        .get(stack.url("/health/ready"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(ready).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["users"]["status"], "ok", "{body}");

    // Users keep working; their events for order-svc wait.
    let tag = uuid::Uuid::new_v4().simple().to_string();
    for i in 0..DURING_OUTAGE {
        let email = format!("outage-{i}-{tag}@example.com");
        let (status, body) = stack.register(&email).await;
        assert_eq!(status, 201, "register during the outage: {body}");
        system_tests::http::login(&stack.http, &stack.base, &email, "password-123")
            .await
            .expect("login during the outage");
    }
    let me = session
        .http
        .get(stack.url("/users/me"))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    let db = stack.orders_sql().await;
    let projected = format!("SELECT count(*) FROM customers WHERE email LIKE 'outage-%-{tag}@%'");
    let queue = stack.bus.topology().events_queue("orders");
    // The events are in order-svc's inbox (held or queued), not applied.
    eventually(
        Duration::from_secs(30),
        "user events waiting in orders.events",
        || async { stack.queue_messages(&queue).await.unwrap_or(0) >= 1 },
    )
    .await;
    assert_eq!(sql_i64(&db, &projected).await, 0);

    proxy.restore();
    eventually(
        Duration::from_secs(60),
        "the waiting user events applied",
        || async { sql_i64(&db, &projected).await == DURING_OUTAGE as i64 },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "orders routes answer again",
        || async { create().await.0 == 201 },
    )
    .await;
    eventually(Duration::from_secs(30), "orders.events drained", || async {
        stack.queue_messages(&queue).await == Some(0)
    })
    .await;
    eprintln!(
        "db outage: 503 after {:?} (DB_ACQUIRE_TIMEOUT_MS=1000, deadline 5 s)",
        latencies
    );
}
