//! Orders and the catalog: prices from the catalog, stock reserved in the order's
//! transaction (no oversell), and put back once on cancel.

use crate::common::*;
use futures::future::join_all;
use proto_msgs::catalog::Product;
use proto_msgs::orders::{Order, OrderStatus, methods};
use proto_msgs::{ErrorCode, RpcError};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_orders_for_ten_in_stock_sell_exactly_ten() {
    let svc = Svc::start().await;
    let tv: Product = svc
        .product(
            json!({"sku": "TV-1", "name": "TV", "category": "tv", "price": "499.00", "stock": 10}),
        )
        .await;
    let body = json!({"items": [{"product_id": tv.id, "quantity": 1}]});
    let results: Vec<Result<Order, RpcError>> =
        join_all((0..50).map(|_| async { svc.call(methods::CREATE, &body, Some(user())).await }))
            .await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 10, "exactly the stock is sold");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(err.code, ErrorCode::FailedPrecondition, "{err:?}");
        let details = err.details.as_ref().unwrap();
        assert_eq!(details["available"], json!(0));
        assert_eq!(details["field"], json!("items[0].quantity"));
    }
    assert_eq!(svc.stock("TV-1").await, 0);
    assert_eq!(svc.count("SELECT count(*) FROM orders").await, 10);
    svc.stop().await;
}

#[tokio::test]
async fn prices_come_from_the_catalog_and_a_different_one_is_refused() {
    let svc = Svc::start().await;
    let alice = user();
    // No price: the catalog's, copied into the order.
    let order: Order = svc
        .call(
            methods::CREATE,
            &json!({"items": [{"sku": "LAMP", "quantity": 2}]}),
            Some(alice),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            order.items[0].name.as_str(),
            order.total.to_string().as_str()
        ),
        ("Lamp", "39.98")
    );

    // The price the client showed must be the current one; details say what it is.
    let err = expect_err(
        svc.call::<_, Order>(
            methods::CREATE,
            &json!({"items": [{"sku": "PEN", "quantity": 1}, {"sku": "LAMP", "price": "0.01", "quantity": 1}]}),
            Some(alice),
        )
        .await,
        ErrorCode::FailedPrecondition,
    );
    let details = err.details.unwrap();
    assert_eq!(details["price"], json!("19.99"));
    assert_eq!(details["field"], json!("items[1].price"));
    assert_eq!(svc.stock("PEN").await, 1_000_000, "nothing reserved");

    // A later price change does not touch the placed order.
    let lamp_id = order.items[0].product_id.unwrap();
    svc.call::<_, Product>(
        proto_msgs::catalog::methods::UPDATE,
        &json!({"id": lamp_id, "price": "25.00"}),
        Some(admin()),
    )
    .await
    .unwrap();
    let again: Order = svc
        .call(methods::GET, &json!({"id": order.id}), Some(alice))
        .await
        .unwrap();
    assert_eq!(again.total.to_string(), "39.98");
    svc.stop().await;
}

#[tokio::test]
async fn unknown_inactive_and_free_form_items_are_refused() {
    let svc = Svc::start().await;
    let alice = user();
    let old = svc
        .product(json!({"sku": "OLD", "name": "Old", "category": "c", "price": 1, "stock": 5, "active": false}))
        .await;
    for (body, field, says) in [
        (
            json!({"items": [{"sku": "PEN", "quantity": 1}, {"sku": "GHOST", "quantity": 1}]}),
            "items[1].sku",
            "not in the catalog",
        ),
        (
            json!({"items": [{"product_id": old.id, "quantity": 1}]}),
            "items[0].product_id",
            "not sold",
        ),
        (
            json!({"items": [{"name": "TV", "price": "0.01", "quantity": 1}]}),
            "items[0]",
            "free-form items are not sold",
        ),
    ] {
        let err = expect_err(
            svc.call::<_, Order>(methods::CREATE, &body, Some(alice))
                .await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(field_of(&err), field, "{body}");
        assert!(err.message.contains(says), "{err:?}");
    }
    assert_eq!(svc.count("SELECT count(*) FROM orders").await, 0);
    svc.stop().await;
}

#[tokio::test]
async fn cancelling_puts_the_stock_back_once() {
    let svc = Svc::start().await;
    let (alice, boss) = (user(), admin());
    svc.product(
        json!({"sku": "SOFA", "name": "Sofa", "category": "home", "price": 300, "stock": 5}),
    )
    .await;
    let order: Order = svc
        .call(
            methods::CREATE,
            &json!({"items": [{"sku": "SOFA", "quantity": 2}, {"sku": "SOFA", "quantity": 1}]}),
            Some(alice),
        )
        .await
        .unwrap();
    assert_eq!(svc.stock("SOFA").await, 2);
    svc.set_status(boss, order.id, OrderStatus::Confirmed)
        .await
        .unwrap();

    // The cancel, then the same request again (a client retry with its key): once.
    let cancel = json!({"id": order.id, "status": "CANCELLED"});
    let keyed = ctx(Some(alice)).with_idempotency_key("cancel-1");
    let first: Order = svc
        .call_ctx(methods::UPDATE_STATUS, &cancel, &keyed)
        .await
        .unwrap();
    let again: Order = svc
        .call_ctx(methods::UPDATE_STATUS, &cancel, &keyed)
        .await
        .unwrap();
    assert_eq!(
        (first.status, again),
        (OrderStatus::Cancelled, first.clone())
    );
    assert_eq!(svc.stock("SOFA").await, 5);
    // A new cancel request (another key) is an illegal move, and changes nothing.
    expect_err(
        svc.set_status(alice, order.id, OrderStatus::Cancelled)
            .await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(svc.stock("SOFA").await, 5);

    // A shipped order is not cancelled, so its stock stays sold.
    let shipped: Order = svc
        .call(
            methods::CREATE,
            &json!({"items": [{"sku": "SOFA", "quantity": 1}]}),
            Some(alice),
        )
        .await
        .unwrap();
    svc.set_status(boss, shipped.id, OrderStatus::Confirmed)
        .await
        .unwrap();
    svc.set_status(boss, shipped.id, OrderStatus::Shipped)
        .await
        .unwrap();
    expect_err(
        svc.set_status(boss, shipped.id, OrderStatus::Cancelled)
            .await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(svc.stock("SOFA").await, 4);
    svc.stop().await;
}
