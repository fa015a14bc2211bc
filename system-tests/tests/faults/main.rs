//! Faults made for real against the three binaries of the dev build: signals, a frozen
//! process, a database cut off, poison messages, an instance killed mid-burst.
//!
//! Each test has its own bus prefix, databases, ports and scratch directory
//! (`system_tests::harness::Stack`), so they run in parallel and leave nothing behind.
//! Run: `cargo test -p system-tests --test faults`.

mod db_outage;
mod frozen;
mod poison;
mod scale_out;
mod shutdown;

use proto_msgs::{ErrorCode, RpcError};
use std::time::Duration;

/// Codes a caller may see when a process goes away under it: never a wrong answer.
pub fn is_transient(err: &RpcError) -> bool {
    matches!(
        err.code,
        ErrorCode::DeadlineExceeded | ErrorCode::Unavailable
    )
}

/// Generous deadline of the bursts: slow boxes make calls slow, not wrong.
pub const BURST_DEADLINE: Duration = Duration::from_secs(30);

use proto_msgs::RpcClient;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use system_tests::harness::{Stack, create_order, sql_pairs, sql_strings};
use uuid::Uuid;

/// Every reply one idempotency key got, in order.
#[derive(Debug)]
pub struct KeyOutcome {
    pub key: String,
    pub attempts: Vec<Result<Uuid, RpcError>>,
}

impl KeyOutcome {
    pub fn succeeded(&self) -> bool {
        self.attempts.last().is_some_and(|r| r.is_ok())
    }
}

/// `n` concurrent `orders.create` calls as `actor`, keys `<tag>-<i>`. A call that fails
/// with a transient code is retried with the same key up to `retries` times. `done`
/// counts first attempts that have finished (to time a fault mid-burst).
pub fn spawn_burst(
    rpc: &RpcClient,
    actor: Uuid,
    tag: &str,
    n: usize,
    retries: usize,
    done: Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<KeyOutcome>> {
    (0..n)
        .map(|i| {
            let rpc = rpc.clone();
            let key = format!("{tag}-{i}");
            let done = done.clone();
            tokio::spawn(async move {
                let mut attempts = Vec::new();
                loop {
                    let result = create_order(&rpc, actor, &key, BURST_DEADLINE)
                        .await
                        .map(|o| o.id);
                    if attempts.is_empty() {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    let retry = matches!(&result, Err(e) if is_transient(e));
                    attempts.push(result);
                    if !retry || attempts.len() > retries {
                        return KeyOutcome { key, attempts };
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        })
        .collect()
}

pub async fn join_all(tasks: Vec<tokio::task::JoinHandle<KeyOutcome>>) -> Vec<KeyOutcome> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("burst task"));
    }
    out
}

/// Waits until `done` reaches `at_least` (at most 60 s).
pub async fn wait_done(done: &AtomicUsize, at_least: usize) {
    system_tests::harness::eventually(Duration::from_secs(60), "burst progress", || async {
        done.load(Ordering::SeqCst) >= at_least
    })
    .await;
}

/// No wrong answer: every `Ok` reply names the one order the database holds for its
/// key (so no key made two orders), and no error is other than transient. Returns the
/// database's key → order id map of `actor`.
pub async fn check_no_wrong_answer(
    stack: &Stack,
    actor: Uuid,
    outcomes: &[KeyOutcome],
) -> HashMap<String, String> {
    let db = stack.orders_sql().await;
    // Keys live in the stored replies (svc-kit's exactly-once store), each with the
    // order its first run created.
    let rows = sql_pairs(
        &db,
        &format!(
            "SELECT key, reply->>'id' FROM stored_replies \
             WHERE method = 'orders.create' AND scope = '{actor}' AND reply IS NOT NULL"
        ),
    )
    .await;
    let mut by_key: HashMap<String, String> = HashMap::new();
    for (key, id) in rows {
        if let Some(other) = by_key.insert(key.clone(), id.clone()) {
            panic!("key {key} has two orders: {other} and {id}");
        }
    }
    let mut orders = sql_strings(
        &db,
        &format!("SELECT id::text FROM orders WHERE user_id = '{actor}'"),
    )
    .await;
    let mut stored: Vec<String> = by_key.values().cloned().collect();
    orders.sort();
    stored.sort();
    assert_eq!(
        orders, stored,
        "every order is the stored reply of exactly one key (no key made two, none made one without its key)"
    );
    for o in outcomes {
        for attempt in &o.attempts {
            match attempt {
                Ok(id) => assert_eq!(
                    by_key.get(&o.key).map(String::as_str),
                    Some(id.to_string().as_str()),
                    "key {} answered order {id}, the database disagrees",
                    o.key
                ),
                Err(e) => assert!(is_transient(e), "key {}: a wrong answer: {e}", o.key),
            }
        }
    }
    let _ = db.close().await;
    by_key
}
