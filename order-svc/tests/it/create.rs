//! `orders.create`: success, money exactness, validation, authentication.

use crate::common::*;
use proto_msgs::ErrorCode;
use proto_msgs::orders::{Order, OrderStatus, methods};
use serde_json::{Value, json};

#[tokio::test]
async fn creates_a_pending_order_for_the_actor_with_exact_money() {
    let svc = Svc::start().await;
    let alice = user();
    let someone_else = uuid::Uuid::new_v4();
    // 3 × 0.10 (a JSON number) + 2 × 100 (a string) = 200.30, and the body's user_id
    // is ignored.
    let order: Order = svc
        .call(
            methods::CREATE,
            &json!({
                "user_id": someone_else,
                "items": [
                    {"sku": "PEN", "price": 0.1, "quantity": 3},
                    {"sku": "BOOK", "price": "100", "quantity": 2},
                ]
            }),
            Some(alice),
        )
        .await
        .unwrap();
    assert_eq!(order.user_id, alice.id);
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.total.to_string(), "200.30");
    assert_eq!(order.items.len(), 2);
    assert_eq!(order.items[0].name, "Pen", "the catalog's name");
    assert!(order.items[0].product_id.is_some());
    assert_eq!(order.items[0].price.to_string(), "0.10");
    assert_eq!(order.items[0].subtotal.to_string(), "0.30");
    assert_eq!(order.items[1].subtotal.to_string(), "200.00");

    // On the wire: decimal strings with two places.
    let raw: Value = svc
        .call(
            methods::CREATE,
            &json!({"items": [
                {"sku": "PEN", "price": "0.10", "quantity": 3},
                {"sku": "BOOK", "price": 100, "quantity": 2},
            ]}),
            Some(alice),
        )
        .await
        .unwrap();
    assert_eq!(raw["total"], json!("200.30"));
    assert_eq!(raw["items"][0]["price"], json!("0.10"));
    assert_eq!(raw["items"][1]["price"], json!("100.00"));
    assert_eq!(raw["items"][1]["subtotal"], json!("200.00"));

    // Stored as integer cents.
    assert_eq!(
        svc.count(&format!(
            "SELECT total_cents FROM orders WHERE id = '{}'",
            order.id
        ))
        .await,
        20030
    );
    assert_eq!(
        svc.count(&format!(
            "SELECT sum(price_cents * quantity)::bigint FROM order_items WHERE order_id = '{}'",
            order.id
        ))
        .await,
        20030
    );

    // The order reads back identically.
    let again: Order = svc
        .call(methods::GET, &json!({"id": order.id}), Some(alice))
        .await
        .unwrap();
    assert_eq!(again, order);
    svc.stop().await;
}

#[tokio::test]
async fn invalid_orders_name_the_field() {
    let svc = Svc::start().await;
    let alice = user();
    let ok = || json!({"sku": "PEN", "quantity": 1});
    let item =
        |price: Value, quantity: Value| json!({"sku": "PEN", "price": price, "quantity": quantity});
    // A missing field is named by serde's message (the path of its parent is empty).
    let err = expect_err(
        svc.call::<_, Order>(methods::CREATE, &json!({}), Some(alice))
            .await,
        ErrorCode::InvalidArgument,
    );
    assert!(err.message.contains("missing field `items`"), "{err:?}");
    let cases: Vec<(Value, &str)> = vec![
        (json!({"items": []}), "items"),
        (json!({"items": [ok(), {"quantity": 1}]}), "items[1]"),
        (
            json!({"items": [{"sku": "a b", "quantity": 1}]}),
            "items[0].sku",
        ),
        (
            json!({"items": [{"product_id": "x", "quantity": 1}]}),
            "items[0].product_id",
        ),
        (json!({"items": vec![ok(); 101]}), "items"),
        (json!({"items": "lots"}), "items"),
        (
            json!({"items": [ok(), ok(), item(json!(0), json!(1))]}),
            "items[2].price",
        ),
        (
            json!({"items": [item(json!("-5"), json!(1))]}),
            "items[0].price",
        ),
        (
            json!({"items": [item(json!("0.105"), json!(1))]}),
            "items[0].price",
        ),
        (
            json!({"items": [item(json!(0.105), json!(1))]}),
            "items[0].price",
        ),
        (
            json!({"items": [item(json!("1000000.01"), json!(1))]}),
            "items[0].price",
        ),
        (
            json!({"items": [item(json!("1e3"), json!(1))]}),
            "items[0].price",
        ),
        (
            json!({"items": [ok(), item(json!(1), json!(0))]}),
            "items[1].quantity",
        ),
        (
            json!({"items": [item(json!(1), json!(10001))]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [item(json!(1), json!(2.5))]}),
            "items[0].quantity",
        ),
        // The catalog's verdicts name the line too.
        (
            json!({"items": [ok(), {"sku": "NOPE", "quantity": 1}]}),
            "items[1].sku",
        ),
        (
            json!({"items": [{"product_id": uuid::Uuid::new_v4(), "quantity": 1}]}),
            "items[0].product_id",
        ),
    ];
    for (body, field) in cases {
        let err = expect_err(
            svc.call::<_, Order>(methods::CREATE, &body, Some(alice))
                .await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(field_of(&err), field, "{body}");
        assert!(!err.message.is_empty());
    }
    let err = expect_err(
        svc.call::<_, Order>(
            methods::CREATE,
            &json!({"items": [item(json!("0.105"), json!(1))]}),
            Some(alice),
        )
        .await,
        ErrorCode::InvalidArgument,
    );
    assert!(
        err.message.contains("more than 2 decimal places"),
        "{err:?}"
    );

    // The largest order allowed: 100 lines, each at the bounds.
    svc.product(
        json!({"sku": "MAX", "name": "é".repeat(200), "category": "test",
                       "price": 1000000, "stock": 1_000_000}),
    )
    .await;
    let max_item = json!({"sku": "MAX", "price": 1000000, "quantity": 10000});
    let order: Order = svc
        .call(
            methods::CREATE,
            &json!({"items": vec![max_item; 100]}),
            Some(alice),
        )
        .await
        .unwrap();
    assert_eq!(order.total.minor(), 100 * 100_000_000 * 10_000);
    assert_eq!(svc.stock("MAX").await, 0);
    assert_eq!(
        svc.count("SELECT count(*) FROM orders").await,
        1,
        "only the valid order was stored"
    );
    svc.stop().await;
}
#[tokio::test]
async fn every_method_needs_an_actor() {
    let svc = Svc::start().await;
    let id = uuid::Uuid::new_v4();
    for (method, body) in [
        (
            methods::CREATE,
            json!({"items": [{"sku": "PEN", "quantity": 1}]}),
        ),
        (methods::GET, json!({"id": id})),
        (methods::LIST, json!({})),
        (
            methods::UPDATE_STATUS,
            json!({"id": id, "status": "CANCELLED"}),
        ),
    ] {
        expect_err(
            svc.call::<_, Value>(method, &body, None).await,
            ErrorCode::Unauthenticated,
        );
    }
    assert_eq!(svc.count("SELECT count(*) FROM orders").await, 0);

    // Health and metrics answer over the bus.
    let health: Value = svc.call(methods::HEALTH, &json!({}), None).await.unwrap();
    assert_eq!(health["status"], "ok");
    // Counted just after the reply went out, so allow a moment.
    let wanted = r#"rpc_server_requests_total{method="orders.create",outcome="unauthenticated",service="orders"} 1"#;
    let mut text = String::new();
    for _ in 0..50 {
        let metrics: Value = svc.call(methods::METRICS, &json!({}), None).await.unwrap();
        text = metrics["text"].as_str().unwrap().to_owned();
        if text.contains(wanted) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(text.contains(wanted), "{text}");
    svc.stop().await;
}
