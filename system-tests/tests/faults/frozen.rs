//! A frozen order-svc (SIGSTOP): the gateway answers 504 at its deadline, and an order
//! whose create timed out is never created later, whether the request was still
//! queued or already prefetched by the frozen process when the caller gave up.

use std::time::{Duration, Instant};
use system_tests::harness::{Stack, StackOptions, order_items, sql_i64, status_json};

const DEADLINE: Duration = Duration::from_millis(1000);
/// Requests sent while frozen: `PREFETCH` of them sit in the frozen process, the rest
/// in the queue.
const REQUESTS: usize = 6;
const PREFETCH: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_order_service_gives_504_and_never_creates_late() {
    let mut stack = Stack::start(
        StackOptions::full()
            .orders_env("RPC_PREFETCH", PREFETCH)
            .gateway_env("RPC_TIMEOUT_MS", DEADLINE.as_millis()),
    )
    .await;
    let session = system_tests::http::Session::new(&stack.base, stack.http.clone())
        .await
        .expect("session");
    let orders_url = stack.url("/orders");
    let list = async || {
        let resp = session
            .http
            .get(&orders_url)
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    };
    // Keys fetched and the path warm before the fault.
    let (status, body) = list().await;
    assert_eq!(status, 200, "{body}");

    stack.orders[0].freeze();
    let creates: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let http = session.http.clone();
            let url = stack.url("/orders");
            let token = session.token.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let resp = http
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("frozen-{i}"))
                    .json(&order_items())
                    .send()
                    .await
                    .expect("the gateway answers");
                let (status, body) = status_json(resp).await;
                (status, body, started.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for c in creates {
        let (status, body, elapsed) = c.await.unwrap();
        assert_eq!(status, 504, "{body}");
        assert_eq!(body["error"]["code"], "deadline_exceeded", "{body}");
        assert!(
            elapsed >= DEADLINE.mul_f64(0.9) && elapsed <= DEADLINE * 3,
            "504 after {elapsed:?} for a deadline of {DEADLINE:?}"
        );
        latencies.push(elapsed);
    }
    stack.orders[0].thaw();
    // What the process held is looked at now, and what was queued has expired.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (status, body) = list().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["orders"].as_array().map(Vec::len),
        Some(0),
        "an order whose create timed out appeared: {body}"
    );
    let db = stack.orders_sql().await;
    assert_eq!(sql_i64(&db, "SELECT count(*) FROM orders").await, 0);
    // The prefetched case really happened: the thawed process skipped them.
    let skipped = stack.orders[0].count_log("deadline passed before", |_| true);
    assert!(
        (1..=PREFETCH).contains(&skipped),
        "requests skipped by the thawed process: {skipped}"
    );
    assert_eq!(
        stack
            .queue_ready(&stack.bus.topology().rpc_queue("orders"))
            .await,
        0,
        "expired requests left in the queue"
    );

    // The service works again, and a timed-out key was never used up.
    let resp = session
        .http
        .post(stack.url("/orders"))
        .bearer_auth(&session.token)
        .header("Idempotency-Key", "frozen-0")
        .json(&order_items())
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = list().await;
    assert_eq!(body["orders"].as_array().map(Vec::len), Some(1), "{body}");
    eprintln!(
        "frozen: {REQUESTS} × 504 after {:?}..{:?}; {skipped} skipped by the thawed process, {} expired in the queue",
        latencies.iter().min().unwrap(),
        latencies.iter().max().unwrap(),
        REQUESTS - skipped
    );
}
