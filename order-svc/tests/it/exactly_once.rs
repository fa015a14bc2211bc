//! Every mutating method of order-svc, with its reply lost right after the commit
//! (svc-kit's `ReplyFault`, what a broker connection dropping at that moment does):
//! redelivered, or retried by the caller with the same key, it answers the original
//! result, marked as replayed, and its effect happened once.

use crate::common::*;
use order_svc::Config;
use proto_msgs::catalog::{self, Product};
use proto_msgs::orders::{self, Order, OrderStatus};
use proto_msgs::rpc::ReplyFault;
use proto_msgs::rpc::client::decode_reply;
use proto_msgs::{Actor, ErrorCode, RequestContext};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const MUTATING: [&str; 5] = [
    catalog::methods::CREATE,
    catalog::methods::UPDATE,
    catalog::methods::ADJUST_STOCK,
    orders::methods::CREATE,
    orders::methods::UPDATE_STATUS,
];

/// The service with a fault (disarmed) on every mutating method.
async fn start(redeliver: bool) -> (Svc, Vec<ReplyFault>) {
    let faults: Vec<ReplyFault> = MUTATING
        .iter()
        .map(|m| {
            if redeliver {
                ReplyFault::redeliver(m, 0)
            } else {
                ReplyFault::lose(m, 0)
            }
        })
        .collect();
    let installed = faults.clone();
    let svc = Svc::start_with(move |c: &mut Config| c.service.reply_faults = installed).await;
    (svc, faults)
}

/// Calls `method` with its reply lost once: `redeliver` lets the broker deliver the
/// request again (the same message id); otherwise the call times out and is retried
/// with the same idempotency key. Returns the answer, which must be a replayed one.
async fn lost_once<T: DeserializeOwned>(
    svc: &Svc,
    faults: &[ReplyFault],
    method: &str,
    body: &Value,
    actor: Actor,
    redeliver: bool,
) -> T {
    let fault = &faults[MUTATING.iter().position(|m| *m == method).unwrap()];
    fault.arm(1);
    let payload = serde_json::to_vec(body).unwrap();
    let reply = if redeliver {
        svc.client
            .call_reply(method, payload, &ctx(Some(actor)))
            .await
            .unwrap()
    } else {
        let key = format!("key-{}", uuid::Uuid::new_v4());
        let mut first = ctx(Some(actor)).with_idempotency_key(key.clone());
        first.deadline = Some(SystemTime::now() + Duration::from_secs(2));
        let lost = svc.client.call_reply(method, payload.clone(), &first).await;
        assert_eq!(
            lost.unwrap_err().code,
            ErrorCode::DeadlineExceeded,
            "{method}: the reply was lost"
        );
        let retry: RequestContext = ctx(Some(actor)).with_idempotency_key(key);
        svc.client
            .call_reply(method, payload, &retry)
            .await
            .unwrap()
    };
    assert_eq!(fault.remaining(), 0, "{method}: the fault fired");
    assert!(reply.replayed, "{method}: answered from the stored reply");
    decode_reply(&reply.body).unwrap_or_else(|e| panic!("{method}: {e:?}"))
}

async fn every_method_once(redeliver: bool) {
    let (svc, faults) = start(redeliver).await;
    let (boss, alice) = (admin(), user());
    let lost = |method: &'static str, body: Value, actor: Actor| {
        let (svc, faults) = (&svc, &faults);
        async move { lost_once::<Value>(svc, faults, method, &body, actor, redeliver).await }
    };

    let created: Product = serde_json::from_value(
        lost(
            catalog::methods::CREATE,
            json!({"sku": "ONCE", "name": "Once", "category": "c", "price": 5, "stock": 3}),
            boss,
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        svc.count("SELECT count(*) FROM products WHERE sku = 'ONCE'")
            .await,
        1
    );

    let adjusted: Product = serde_json::from_value(
        lost(
            catalog::methods::ADJUST_STOCK,
            json!({"id": created.id, "delta": 7, "reason": "delivery"}),
            boss,
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        (adjusted.stock, svc.stock("ONCE").await),
        (10, 10),
        "added once"
    );

    let updated: Product = serde_json::from_value(
        lost(
            catalog::methods::UPDATE,
            json!({"id": created.id, "name": "Once more"}),
            boss,
        )
        .await,
    )
    .unwrap();
    assert_eq!(updated.name, "Once more");

    let order: Order = serde_json::from_value(
        lost(
            orders::methods::CREATE,
            json!({"items": [{"sku": "ONCE", "quantity": 4}]}),
            alice,
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        svc.count("SELECT count(*) FROM orders").await,
        1,
        "one order"
    );
    assert_eq!(svc.stock("ONCE").await, 6, "reserved once");

    let cancelled: Order = serde_json::from_value(
        lost(
            orders::methods::UPDATE_STATUS,
            json!({"id": order.id, "status": "CANCELLED"}),
            alice,
        )
        .await,
    )
    .unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(svc.stock("ONCE").await, 10, "put back once");
    svc.stop().await;
}

#[tokio::test]
async fn a_redelivered_request_answers_its_stored_reply() {
    every_method_once(true).await;
}

#[tokio::test]
async fn a_retry_with_the_key_answers_the_stored_reply() {
    every_method_once(false).await;
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused() {
    let svc = Svc::start().await;
    let (boss, alice) = (admin(), user());
    let product = svc
        .product(json!({"sku": "K", "name": "K", "category": "c", "price": 1, "stock": 100}))
        .await;
    let order = svc.create(alice).await;
    for (method, actor, first, second) in [
        (
            catalog::methods::CREATE,
            boss,
            json!({"sku": "K2", "name": "x", "category": "c", "price": 1}),
            json!({"sku": "K3", "name": "x", "category": "c", "price": 1}),
        ),
        (
            catalog::methods::UPDATE,
            boss,
            json!({"id": product.id, "name": "a"}),
            json!({"id": product.id, "name": "b"}),
        ),
        (
            catalog::methods::ADJUST_STOCK,
            boss,
            json!({"id": product.id, "delta": 1, "reason": "r"}),
            json!({"id": product.id, "delta": 2, "reason": "r"}),
        ),
        (
            orders::methods::CREATE,
            alice,
            json!({"items": [{"sku": "K", "quantity": 1}]}),
            json!({"items": [{"sku": "K", "quantity": 2}]}),
        ),
        (
            orders::methods::UPDATE_STATUS,
            alice,
            json!({"id": order.id, "status": "CANCELLED"}),
            json!({"id": order.id, "status": "CONFIRMED"}),
        ),
    ] {
        let keyed = ctx(Some(actor)).with_idempotency_key(format!("reuse-{method}"));
        svc.call_ctx::<_, Value>(method, &first, &keyed)
            .await
            .unwrap();
        let err = expect_err(
            svc.call_ctx::<_, Value>(method, &second, &keyed).await,
            ErrorCode::FailedPrecondition,
        );
        assert!(err.message.contains("idempotency key"), "{method}: {err:?}");
    }
    assert_eq!(
        svc.stock("K").await,
        100 + 1 - 1,
        "only the first bodies had effects"
    );
    svc.stop().await;
}

#[tokio::test]
async fn stored_replies_and_handled_events_older_than_the_window_are_pruned() {
    let svc = Svc::start().await;
    svc.create(user()).await;
    let keep = svc.count("SELECT count(*) FROM stored_replies").await;
    assert!(
        keep >= 6,
        "the catalog seeding and the order stored replies"
    );
    sea_orm::ConnectionTrait::execute_unprepared(
        svc.pool(),
        "UPDATE stored_replies SET created_at = now() - interval '2 days' WHERE method = 'orders.create';
         INSERT INTO processed_events (event_id, event_type, processed_at)
           VALUES (gen_random_uuid(), 'user.registered', now() - interval '2 days')",
    )
    .await
    .unwrap();
    // The pruning task runs every 200 ms in tests (the window is a day).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while svc.count("SELECT count(*) FROM processed_events").await > 0
        || svc
            .count("SELECT count(*) FROM stored_replies WHERE method = 'orders.create'")
            .await
            > 0
    {
        assert!(std::time::Instant::now() < deadline, "pruned in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        svc.count("SELECT count(*) FROM stored_replies").await,
        keep - 1,
        "the recent ones stay"
    );
    svc.stop().await;
}
