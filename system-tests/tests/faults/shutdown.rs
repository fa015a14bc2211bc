//! SIGTERM mid-burst: a service answers what it holds and exits 0; the gateway drains
//! its in-flight HTTP requests, exits 0 and refuses new connections.

use crate::{check_no_wrong_answer, join_all, spawn_burst, wait_done};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};
use system_tests::harness::{Stack, StackOptions, order_items, sql_i64, status_json};
use uuid::Uuid;

const BURST: usize = 200;
/// How long a terminated process may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_burst_with_a_second_instance_loses_nothing() {
    let mut stack = Stack::start(StackOptions::orders_only(2)).await;
    let actor = Uuid::new_v4();
    let done = Arc::new(AtomicUsize::new(0));
    let tasks = spawn_burst(&stack.rpc, actor, "term2", BURST, 0, done.clone());

    wait_done(&done, BURST / 5).await;
    let signalled = Instant::now();
    stack.orders[0].terminate();
    let status = stack.orders[0]
        .wait_exit(EXIT_WITHIN)
        .await
        .expect("order-svc exits after SIGTERM");
    let exit_after = signalled.elapsed();
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let outcomes = join_all(tasks).await;
    let by_key = check_no_wrong_answer(&stack, actor, &outcomes).await;
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.succeeded()).collect();
    assert!(
        failed.is_empty(),
        "with a second instance every call succeeds: {failed:?}"
    );
    assert_eq!(by_key.len(), BURST);
    let (a, b) = (
        stack.orders[0].handled("orders.create"),
        stack.orders[1].handled("orders.create"),
    );
    assert!(
        stack.orders[0].log().contains("stopped consuming"),
        "a graceful stop"
    );
    eprintln!(
        "SIGTERM after {} replies; exited 0 in {exit_after:?}; creates handled: terminated {a}, survivor {b}",
        BURST / 5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_burst_alone_then_retries_make_exactly_one_order_per_key() {
    let mut stack = Stack::start(StackOptions::orders_only(1)).await;
    let actor = Uuid::new_v4();
    let done = Arc::new(AtomicUsize::new(0));
    // Short deadline: what is still queued when the only instance stops times out.
    let rpc = stack.rpc.clone();
    let tasks: Vec<_> = (0..BURST)
        .map(|i| {
            let rpc = rpc.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let key = format!("alone-{i}");
                let r =
                    system_tests::harness::create_order(&rpc, actor, &key, Duration::from_secs(6))
                        .await
                        .map(|o| o.id);
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                crate::KeyOutcome {
                    key,
                    attempts: vec![r],
                }
            })
        })
        .collect();
    wait_done(&done, BURST / 5).await;
    let signalled = Instant::now();
    stack.orders[0].terminate();
    let status = stack.orders[0]
        .wait_exit(EXIT_WITHIN)
        .await
        .expect("order-svc exits after SIGTERM");
    let exit_after = signalled.elapsed();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let mut outcomes = join_all(tasks).await;
    // Only deadline_exceeded / unavailable, and every Ok is in the database.
    check_no_wrong_answer(&stack, actor, &outcomes).await;
    let failed_first = outcomes.iter().filter(|o| !o.succeeded()).count();

    // A new instance takes over; each failed key is retried with the same key.
    let i = stack.spawn_orders();
    stack.wait_orders_started(i).await;
    for o in outcomes.iter_mut().filter(|o| !o.succeeded()) {
        for _ in 0..10 {
            let r = system_tests::harness::create_order(
                &stack.rpc,
                actor,
                &o.key,
                crate::BURST_DEADLINE,
            )
            .await
            .map(|o| o.id);
            let retry = matches!(&r, Err(e) if crate::is_transient(e));
            o.attempts.push(r);
            if !retry {
                break;
            }
            // The client learns of the new consumer within a probe interval.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            o.succeeded(),
            "retries of {} failed: {:?}",
            o.key,
            o.attempts
        );
    }
    let by_key = check_no_wrong_answer(&stack, actor, &outcomes).await;
    assert_eq!(by_key.len(), BURST, "exactly one order per key");
    eprintln!(
        "alone: SIGTERM after {} replies, exited 0 in {exit_after:?}; {failed_first} calls failed (transient) and succeeded on retry",
        BURST / 5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_gateway_drains_in_flight_requests() {
    const IN_FLIGHT: usize = 8;
    // order-svc holds one request at a time, so the rest wait visibly in its queue.
    let mut stack = Stack::start(
        StackOptions::full()
            .orders_env("RPC_PREFETCH", 1)
            .gateway_env("RPC_TIMEOUT_MS", 30_000),
    )
    .await;
    let session = system_tests::http::Session::new(&stack.base, stack.http.clone())
        .await
        .expect("session");
    // Keys are fetched and connections warm before the fault.
    let warm = session
        .http
        .get(stack.url("/orders"))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status().as_u16(), 200);

    // Freeze order-svc so the requests stay in flight as long as we like.
    stack.orders[0].freeze();
    let requests: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let http = session.http.clone();
            let url = stack.url("/orders");
            let token = session.token.clone();
            tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("drain-{i}"))
                    .json(&order_items())
                    .send()
                    .await;
                match resp {
                    Ok(r) => Ok(status_json(r).await),
                    Err(e) => Err(e.to_string()),
                }
            })
        })
        .collect();
    // All of them reached the bus: one held by the frozen process, the rest queued.
    let queue = stack.bus.topology().rpc_queue("orders");
    let end = Instant::now() + Duration::from_secs(30);
    while stack.queue_ready(&queue).await < (IN_FLIGHT - 1) as u32 {
        assert!(Instant::now() < end, "requests did not reach the queue");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let gateway = stack.gateway.as_mut().unwrap();
    gateway.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gateway.is_running(), "the gateway waits for its requests");
    // While draining, a new connection is not served.
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get(format!("{}/health", stack.base))
        .send()
        .await;
    let probe_during_drain = match &probe {
        Ok(r) => format!("answered {}", r.status()),
        Err(e) => {
            let mut chain = format!("failed: {e}");
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                chain.push_str(&format!(": {s}"));
                source = s.source();
            }
            chain
        }
    };
    assert!(
        probe.is_err(),
        "a new request during the drain: {probe_during_drain}"
    );

    stack.orders[0].thaw();
    for r in requests {
        let (status, body) = r.await.unwrap().expect("an in-flight request completes");
        assert_eq!(status, 201, "{body}");
    }
    let gateway = stack.gateway.as_mut().unwrap();
    let status = gateway
        .wait_exit(EXIT_WITHIN)
        .await
        .expect("the gateway exits after draining");
    assert!(status.success(), "gateway exit status: {status}");
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", stack.gateway_port)).await;
    assert!(refused.is_err(), "a connection after exit was accepted");

    let db = stack.orders_sql().await;
    assert_eq!(
        sql_i64(&db, "SELECT count(*) FROM orders").await,
        IN_FLIGHT as i64
    );
    eprintln!("gateway drain: new request during drain {probe_during_drain}");
}
