//! Two order-svc instances on one queue share a burst; one is SIGKILLed mid-burst.
//! At-least-once delivery plus idempotency keys: exactly one order per key, and every
//! reply names that order.

use crate::{check_no_wrong_answer, join_all, spawn_burst, wait_done};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use system_tests::harness::{Stack, StackOptions};
use uuid::Uuid;

const BURST: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_burst_and_a_kill_loses_nothing() {
    let mut stack = Stack::start(StackOptions::orders_only(2)).await;
    let actor = Uuid::new_v4();
    let done = Arc::new(AtomicUsize::new(0));
    let tasks = spawn_burst(&stack.rpc, actor, "scale", BURST, 10, done.clone());

    wait_done(&done, BURST / 3).await;
    stack.orders[1].kill();
    let outcomes = join_all(tasks).await;

    let by_key = check_no_wrong_answer(&stack, actor, &outcomes).await;
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.succeeded()).collect();
    assert!(failed.is_empty(), "keys that never succeeded: {failed:?}");
    assert_eq!(by_key.len(), BURST, "exactly one order per key");
    let (survivor, killed) = (
        stack.orders[0].handled("orders.create"),
        stack.orders[1].handled("orders.create"),
    );
    assert!(
        survivor > 0 && killed > 0,
        "both instances handled creates: survivor {survivor}, killed {killed}"
    );
    // Requests the killed instance held went to the survivor; one it had already
    // committed came back as the first order.
    let replayed = stack.orders[0].count_log("idempotent retry", |_| true);
    let retried = outcomes.iter().filter(|o| o.attempts.len() > 1).count();
    eprintln!(
        "scale-out: SIGKILL after {} replies; creates handled: survivor {survivor}, killed {killed}; {retried} keys needed a retry; {replayed} idempotent replays",
        BURST / 3
    );
}
