//! `x-idempotency-key` on `orders.create`: a retry returns the first order, even when
//! the attempts race; the same key with a different body is `failed_precondition`.

use crate::common::*;
use futures::future::join_all;
use proto_msgs::ErrorCode;
use proto_msgs::orders::{Order, methods};
use serde_json::json;

#[tokio::test]
async fn a_retried_create_returns_the_first_order() {
    let svc = Svc::start().await;
    let (alice, bob) = (user(), user());
    let body = json!({"items": [{"sku": "LAMP", "price": "19.99", "quantity": 2}]});
    let with_key = |actor, key: &str| ctx(Some(actor)).with_idempotency_key(key);

    let first: Order = svc
        .call_ctx(methods::CREATE, &body, &with_key(alice, "k-1"))
        .await
        .unwrap();
    let again: Order = svc
        .call_ctx(methods::CREATE, &body, &with_key(alice, "k-1"))
        .await
        .unwrap();
    assert_eq!(again, first);
    // Prices given differently but equal are the same request.
    let same: Order = svc
        .call_ctx(
            methods::CREATE,
            &json!({"items": [{"sku": "LAMP", "price": 19.99, "quantity": 2}]}),
            &with_key(alice, "k-1"),
        )
        .await
        .unwrap();
    assert_eq!(same.id, first.id);
    // The first reply is returned as it was (a stored reply), marked as replayed.
    svc.set_status(alice, first.id, proto_msgs::orders::OrderStatus::Cancelled)
        .await
        .unwrap();
    let reply = svc
        .client
        .call_reply(
            methods::CREATE,
            serde_json::to_vec(&body).unwrap(),
            &with_key(alice, "k-1"),
        )
        .await
        .unwrap();
    assert!(reply.replayed);
    let after: Order = proto_msgs::rpc::client::decode_reply(&reply.body).unwrap();
    assert_eq!(after, first);
    assert_eq!(svc.stock("LAMP").await, 1_000_000, "cancelled: stock back");

    // Same key, different body: refused, nothing created.
    let err = expect_err(
        svc.call_ctx::<_, Order>(
            methods::CREATE,
            &json!({"items": [{"sku": "LAMP", "price": "19.99", "quantity": 3}]}),
            &with_key(alice, "k-1"),
        )
        .await,
        ErrorCode::FailedPrecondition,
    );
    assert!(err.message.contains("idempotency key"), "{}", err.message);

    // Keys belong to a user: Bob's "k-1" is his own order.
    let bobs: Order = svc
        .call_ctx(methods::CREATE, &body, &with_key(bob, "k-1"))
        .await
        .unwrap();
    assert_ne!(bobs.id, first.id);
    // No key: a new order each time.
    let a: Order = svc.call(methods::CREATE, &body, Some(alice)).await.unwrap();
    let b: Order = svc.call(methods::CREATE, &body, Some(alice)).await.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(svc.count("SELECT count(*) FROM orders").await, 4);

    let err = expect_err(
        svc.call_ctx::<_, Order>(methods::CREATE, &body, &with_key(alice, &"k".repeat(201)))
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(field_of(&err), "x-idempotency-key");
    svc.stop().await;
}

#[tokio::test]
async fn concurrent_creates_with_one_key_make_one_order() {
    let svc = Svc::start().await;
    let alice = user();
    let body = json!({"items": [{"sku": "CHAIR", "price": "45.00", "quantity": 4}]});
    for round in 0..3 {
        let key = format!("race-{round}");
        let ctx = ctx(Some(alice)).with_idempotency_key(key.clone());
        let results: Vec<Result<Order, _>> =
            join_all((0..8).map(|_| svc.call_ctx::<_, Order>(methods::CREATE, &body, &ctx))).await;
        let ids: std::collections::HashSet<_> =
            results.into_iter().map(|r| r.unwrap().id).collect();
        assert_eq!(ids.len(), 1, "round {round}: one order for one key");
        assert_eq!(
            svc.count(&format!(
                "SELECT count(*) FROM stored_replies WHERE key = '{key}'"
            ))
            .await,
            1
        );
    }
    // Three keys, three orders, and stock taken three times.
    assert_eq!(svc.count("SELECT count(*) FROM orders").await, 3);
    assert_eq!(svc.stock("CHAIR").await, 1_000_000 - 3 * 4);
    svc.stop().await;
}
