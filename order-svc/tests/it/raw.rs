//! How another team calls order-svc: plain lapin, hand-written headers and JSON, and
//! the exact reply.

use crate::common::*;
use proto_msgs::testing::RawRpc;
use serde_json::{Value, json};

#[tokio::test]
async fn hand_written_create_gets_the_exact_reply() {
    let svc = Svc::start().await;
    let actor = uuid::Uuid::new_v4();

    let mut raw = RawRpc::connect(&svc.bus.config()).await;
    let actor_id = actor.to_string();
    let send = async |raw: &RawRpc, method: &str, body: String, with_actor: bool, corr: &str| {
        let mut headers = vec![("x-request-id", "raw-req-1")];
        if with_actor {
            headers.extend([("x-actor-id", actor_id.as_str()), ("x-actor-role", "user")]);
        }
        raw.send(method, body.as_bytes(), RawRpc::props(corr, &headers))
            .await
    };

    send(
        &raw,
        "orders.create",
        r#"{"user_id": "00000000-0000-0000-0000-000000000000",
            "items": [{"sku": "PEN", "price": 0.1, "quantity": 3},
                      {"sku": "BOOK", "price": "100", "quantity": 2}]}"#
            .to_string(),
        true,
        "c-1",
    )
    .await;
    let (corr, request_id, body) = next(&mut raw).await;
    assert_eq!(corr, "c-1");
    assert_eq!(request_id.as_deref(), Some("raw-req-1"));
    let data = body["data"].as_object().expect("a data reply");
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "id",
            "items",
            "status",
            "total",
            "updated_at",
            "user_id"
        ]
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "only data");
    assert_eq!(data["user_id"], json!(actor.to_string()));
    assert_eq!(data["status"], json!("PENDING"));
    assert_eq!(data["total"], json!("200.30"));
    let product = |i: usize| data["items"][i]["product_id"].clone();
    assert!(product(0).is_string() && product(1).is_string());
    assert_eq!(
        data["items"],
        json!([
            {"product_id": product(0), "name": "Pen", "price": "0.10", "quantity": 3, "subtotal": "0.30"},
            {"product_id": product(1), "name": "Book", "price": "100.00", "quantity": 2, "subtotal": "200.00"}
        ])
    );
    assert!(uuid::Uuid::parse_str(data["id"].as_str().unwrap()).is_ok());
    let created = data["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );

    // A bad price: the exact error body, with the field.
    send(
        &raw,
        "orders.create",
        r#"{"items": [{"sku": "PEN", "price": "0.105", "quantity": 1}]}"#.to_string(),
        true,
        "c-2",
    )
    .await;
    let (corr, _, body) = next(&mut raw).await;
    assert_eq!(corr, "c-2");
    assert_eq!(
        body,
        json!({"error": {
            "code": "invalid_argument",
            "message": "invalid request body: items[0].price: \"0.105\" has more than 2 decimal places",
            "details": {"field": "items[0].price"}
        }})
    );

    // No actor headers: unauthenticated, nothing created.
    send(
        &raw,
        "orders.create",
        r#"{"items": [{"sku": "PEN", "price": 1, "quantity": 1}]}"#.to_string(),
        false,
        "c-3",
    )
    .await;
    let (_, _, body) = next(&mut raw).await;
    assert_eq!(body["error"]["code"], json!("unauthenticated"));

    // Not JSON at all: invalid_argument, and the service carries on.
    send(&raw, "orders.create", "{oops".to_string(), true, "c-4").await;
    let (_, _, body) = next(&mut raw).await;
    assert_eq!(body["error"]["code"], json!("invalid_argument"));

    send(
        &raw,
        "orders.update_status",
        format!(
            r#"{{"id": "{}", "status": "LOST"}}"#,
            data["id"].as_str().unwrap()
        ),
        true,
        "c-5",
    )
    .await;
    let (_, _, body) = next(&mut raw).await;
    assert_eq!(
        body,
        json!({"error": {
            "code": "invalid_argument",
            "message": "invalid request body: status: unknown status \"LOST\" (expected one of PENDING, CONFIRMED, SHIPPED, DELIVERED, CANCELLED)",
            "details": {"field": "status"}
        }})
    );
    assert_eq!(svc.count("SELECT count(*) FROM orders").await, 1);

    raw.close().await;
    svc.stop().await;
}

/// The next reply: (correlation id, x-request-id header, body).
async fn next(raw: &mut RawRpc) -> (String, Option<String>, Value) {
    let reply = raw.next_reply().await;
    (
        reply.correlation_id.unwrap_or_default(),
        reply.request_id,
        reply.body,
    )
}

/// A request delivered twice (the broker redelivers one whose ack was lost after the
/// reply went out) creates one order: its message id stands in for an idempotency key.
#[tokio::test]
async fn a_redelivered_create_makes_one_order() {
    let svc = Svc::start().await;
    let actor = uuid::Uuid::new_v4();
    let mut raw = RawRpc::connect(&svc.bus.config()).await;
    let actor_id = actor.to_string();
    let headers = [("x-actor-id", actor_id.as_str()), ("x-actor-role", "user")];
    let mut ids = Vec::new();
    for corr in ["first", "again"] {
        let props = RawRpc::props(corr, &headers).with_message_id("msg-42".into());
        raw.send(
            "orders.create",
            br#"{"items": [{"sku": "PEN", "price": "0.10", "quantity": 1}]}"#,
            props,
        )
        .await;
        let reply = raw.next_reply().await;
        ids.push(
            reply.body["data"]["id"]
                .as_str()
                .expect("an order")
                .to_owned(),
        );
    }
    assert_eq!(ids[0], ids[1], "the same order both times");
    raw.close().await;
    svc.stop().await;
}

/// `catalog.*` as another team would call it: routing key on the `rpc` exchange (the
/// queue is `orders.rpc`), hand-written headers and JSON, the exact replies.
#[tokio::test]
async fn hand_written_catalog_calls_get_the_exact_replies() {
    let svc = Svc::start().await;
    let mut raw = RawRpc::connect(&svc.bus.config()).await;
    let admin_id = uuid::Uuid::new_v4().to_string();
    let admin = [
        ("x-actor-id", admin_id.as_str()),
        ("x-actor-role", "admin"),
        ("x-idempotency-key", "raw-create-1"),
    ];
    let body = br#"{"sku": "RAW-1", "name": "Raw", "category": "raw", "price": 2.5, "stock": 4}"#;

    let reply = raw.call("catalog.create", body, "k-1", &admin).await;
    let product = reply.body["data"].clone();
    assert_eq!(reply.replayed, None);
    let mut keys: Vec<&str> = product
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "active",
            "category",
            "created_at",
            "description",
            "id",
            "name",
            "price",
            "sku",
            "stock",
            "updated_at"
        ]
    );
    assert_eq!(
        (
            &product["price"],
            &product["stock"],
            &product["description"]
        ),
        (&json!("2.50"), &json!(4), &json!(""))
    );
    // The same request again (a retry with its key): the stored reply, marked.
    let again = raw.call("catalog.create", body, "k-2", &admin).await;
    assert_eq!(
        (again.body["data"].clone(), again.replayed.as_deref()),
        (product.clone(), Some("true"))
    );
    assert_eq!(
        svc.count("SELECT count(*) FROM products WHERE sku = 'RAW-1'")
            .await,
        1
    );

    // Public reads need no actor.
    let id = product["id"].as_str().unwrap();
    let got = raw
        .call(
            "catalog.get",
            format!(r#"{{"id": "{id}"}}"#).as_bytes(),
            "k-3",
            &[],
        )
        .await;
    assert_eq!(got.body["data"], product);
    let page = raw
        .call("catalog.list", br#"{"q": "raw", "limit": 5}"#, "k-4", &[])
        .await;
    assert_eq!(page.body["data"]["total"], json!(1));
    assert_eq!(page.body["data"]["products"][0], product);

    // A user may not write; a bad delta names its field; too much is refused with the stock.
    let user_id = uuid::Uuid::new_v4().to_string();
    let user = [("x-actor-id", user_id.as_str()), ("x-actor-role", "user")];
    let denied = raw
        .call(
            "catalog.adjust_stock",
            format!(r#"{{"id": "{id}", "delta": 1, "reason": "x"}}"#).as_bytes(),
            "k-5",
            &user,
        )
        .await;
    assert_eq!(denied.body["error"]["code"], json!("permission_denied"));
    let bad = raw
        .call(
            "catalog.adjust_stock",
            format!(r#"{{"id": "{id}", "delta": 0, "reason": "x"}}"#).as_bytes(),
            "k-6",
            &admin[..2],
        )
        .await;
    assert_eq!(bad.body["error"]["code"], json!("invalid_argument"));
    assert_eq!(bad.body["error"]["details"], json!({"field": "delta"}));
    let below = raw
        .call(
            "catalog.adjust_stock",
            format!(r#"{{"id": "{id}", "delta": -5, "reason": "count"}}"#).as_bytes(),
            "k-7",
            &admin[..2],
        )
        .await;
    assert_eq!(below.body["error"]["code"], json!("failed_precondition"));
    assert_eq!(
        below.body["error"]["details"],
        json!({"field": "delta", "stock": 4})
    );
    let updated = raw
        .call(
            "catalog.update",
            format!(r#"{{"id": "{id}", "price": "3"}}"#).as_bytes(),
            "k-8",
            &admin[..2],
        )
        .await;
    assert_eq!(updated.body["data"]["price"], json!("3.00"));

    // An order for more than there is: the available quantity in details.
    let order = raw
        .call(
            "orders.create",
            br#"{"items": [{"sku": "RAW-1", "quantity": 5}]}"#,
            "k-9",
            &user,
        )
        .await;
    assert_eq!(order.body["error"]["code"], json!("failed_precondition"));
    assert_eq!(order.body["error"]["details"]["available"], json!(4));
    assert_eq!(
        order.body["error"]["details"]["field"],
        json!("items[0].quantity")
    );
    raw.close().await;
    svc.stop().await;
}
