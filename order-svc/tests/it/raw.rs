//! How another team calls order-svc: plain lapin, hand-written headers and JSON, and
//! the exact reply.

use crate::common::*;
use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn hand_written_create_gets_the_exact_reply() {
    let svc = Svc::start().await;
    let actor = uuid::Uuid::new_v4();

    let conn = svc.bus.config().connect("raw order test").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut replies = ch
        .basic_consume(
            q.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let exchange = svc.bus.topology().rpc_exchange();
    let call = async |method: &str, body: &str, with_actor: bool, corr: &str| {
        let mut headers = FieldTable::default();
        headers.insert(
            "x-request-id".into(),
            AMQPValue::LongString("raw-req-1".into()),
        );
        if with_actor {
            headers.insert(
                "x-actor-id".into(),
                AMQPValue::LongString(actor.to_string().into()),
            );
            headers.insert("x-actor-role".into(), AMQPValue::LongString("user".into()));
        }
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(q.name().clone())
            .with_correlation_id(corr.into())
            .with_headers(headers);
        ch.basic_publish(
            exchange.as_str().into(),
            method.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            props,
        )
        .await
        .unwrap();
    };
    let mut next = async || {
        let d = tokio::time::timeout(Duration::from_secs(30), replies.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let request_id = d
            .properties
            .headers()
            .as_ref()
            .and_then(|h| proto_msgs::context::header_str(h, "x-request-id"));
        (
            d.properties.correlation_id().as_ref().unwrap().to_string(),
            request_id,
            serde_json::from_slice::<Value>(&d.data).unwrap(),
        )
    };

    call(
        "orders.create",
        r#"{"user_id": "00000000-0000-0000-0000-000000000000",
            "items": [{"name": "Pen", "price": 0.1, "quantity": 3},
                      {"name": "Book", "price": "100", "quantity": 2}]}"#,
        true,
        "c-1",
    )
    .await;
    let (corr, request_id, body) = next().await;
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
    assert_eq!(
        data["items"],
        json!([
            {"name": "Pen", "price": "0.10", "quantity": 3, "subtotal": "0.30"},
            {"name": "Book", "price": "100.00", "quantity": 2, "subtotal": "200.00"}
        ])
    );
    assert!(uuid::Uuid::parse_str(data["id"].as_str().unwrap()).is_ok());
    let created = data["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );

    // A bad price: the exact error body, with the field.
    call(
        "orders.create",
        r#"{"items": [{"name": "Pen", "price": "0.105", "quantity": 1}]}"#,
        true,
        "c-2",
    )
    .await;
    let (corr, _, body) = next().await;
    assert_eq!(corr, "c-2");
    assert_eq!(
        body,
        json!({"error": {
            "code": "invalid_argument",
            "message": "items[0].price: \"0.105\" has more than 2 decimal places",
            "details": {"field": "items[0].price"}
        }})
    );

    // No actor headers: unauthenticated, nothing created.
    call(
        "orders.create",
        r#"{"items": [{"name": "Pen", "price": 1, "quantity": 1}]}"#,
        false,
        "c-3",
    )
    .await;
    let (_, _, body) = next().await;
    assert_eq!(body["error"]["code"], json!("unauthenticated"));

    // Not JSON at all: invalid_argument, and the service carries on.
    call("orders.create", "{oops", true, "c-4").await;
    let (_, _, body) = next().await;
    assert_eq!(body["error"]["code"], json!("invalid_argument"));

    call(
        "orders.update_status",
        &format!(
            r#"{{"id": "{}", "status": "LOST"}}"#,
            data["id"].as_str().unwrap()
        ),
        true,
        "c-5",
    )
    .await;
    let (_, _, body) = next().await;
    assert_eq!(
        body,
        json!({"error": {
            "code": "invalid_argument",
            "message": "status: unknown status \"LOST\" (expected one of PENDING, CONFIRMED, SHIPPED, DELIVERED, CANCELLED)",
            "details": {"field": "status"}
        }})
    );
    assert_eq!(svc.count("SELECT count(*) FROM orders").await, 1);

    let _ = conn.close(200, "bye".into()).await;
    svc.stop().await;
}

/// A request delivered twice (the broker redelivers one whose ack was lost after the
/// reply went out) creates one order: its message id stands in for an idempotency key.
#[tokio::test]
async fn a_redelivered_create_makes_one_order() {
    let svc = Svc::start().await;
    let actor = uuid::Uuid::new_v4();
    let conn = svc.bus.config().connect("redelivery test").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut replies = ch
        .basic_consume(
            q.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut headers = FieldTable::default();
    headers.insert(
        "x-actor-id".into(),
        AMQPValue::LongString(actor.to_string().into()),
    );
    headers.insert("x-actor-role".into(), AMQPValue::LongString("user".into()));
    let mut ids = Vec::new();
    for corr in ["first", "again"] {
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(q.name().clone())
            .with_correlation_id(corr.into())
            .with_message_id("msg-42".into())
            .with_headers(headers.clone());
        ch.basic_publish(
            svc.bus.topology().rpc_exchange().as_str().into(),
            "orders.create".into(),
            BasicPublishOptions::default(),
            br#"{"items": [{"name": "Pen", "price": "1.00", "quantity": 1}]}"#,
            props,
        )
        .await
        .unwrap();
        let d = tokio::time::timeout(Duration::from_secs(30), replies.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let body: Value = serde_json::from_slice(&d.data).unwrap();
        ids.push(body["data"]["id"].as_str().expect("an order").to_owned());
    }
    assert_eq!(ids[0], ids[1], "the same order both times");
    let _ = conn.close(200, "bye".into()).await;
    svc.stop().await;
}
