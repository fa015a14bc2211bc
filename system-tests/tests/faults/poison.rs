//! Poison input, published with plain lapin as a careless client would (including header
//! bytes that are not UTF-8, which the AMQP client underneath used to choke on): every bad
//! request gets an error reply (or, without `reply_to`, is logged and acked) and the
//! service keeps answering; every bad event lands in `<service>.events.dlq` instead of
//! looping; an oversized HTTP body is 413 at the gateway.

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use proto_msgs::CloudEvent;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use system_tests::harness::{
    Stack, StackOptions, create_order, deadline_ctx, eventually, sql_i64, status_json,
};
use uuid::Uuid;

/// One bad request and the error code its reply must carry.
struct Case<'a> {
    corr: &'a str,
    method: &'a str,
    content_type: &'a str,
    /// Send the actor headers.
    actor: bool,
    /// Send an actor id that is not UTF-8 (AMQP strings are bytes).
    bad_bytes: bool,
    body: &'a [u8],
    code: &'a str,
}

impl<'a> Case<'a> {
    fn new(
        corr: &'a str,
        method: &'a str,
        content_type: &'a str,
        body: &'a [u8],
        code: &'a str,
    ) -> Self {
        Case {
            corr,
            method,
            content_type,
            actor: true,
            bad_bytes: false,
            body,
            code,
        }
    }
}

fn headers(actor: Option<&str>) -> FieldTable {
    let mut h = FieldTable::default();
    if let Some(actor) = actor {
        h.insert("x-actor-id".into(), AMQPValue::LongString(actor.into()));
        h.insert("x-actor-role".into(), AMQPValue::LongString("user".into()));
    }
    h
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        props,
    )
    .await
    .expect("publish")
    .await
    .expect("publish reached the broker");
}

async fn health_ok(stack: &Stack, service: &str) {
    let v: Value = stack
        .rpc
        .call(
            &format!("{service}.sys.health"),
            &json!({}),
            &deadline_ctx(Duration::from_secs(10)),
        )
        .await
        .unwrap_or_else(|e| panic!("{service} health: {e}"));
    assert_eq!(v["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_requests_get_error_replies_and_the_service_keeps_answering() {
    let stack = Stack::start(StackOptions::orders_only(1)).await;
    let actor = Uuid::new_v4().to_string();
    let conn = proto_msgs::testing::lapin_connect(&stack.bus.config(), "poison rpc").await;
    let ch = conn.create_channel().await.unwrap();
    let reply_q = ch
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
        .unwrap()
        .name()
        .clone();
    let mut replies = ch
        .basic_consume(
            reply_q.clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let exchange = stack.bus.topology().rpc_exchange();
    let huge = format!(
        r#"{{"items": [{{"sku": "WIDGET", "price": "1.50", "quantity": 1}}], "pad": "{}"}}"#,
        "x".repeat(1536 * 1024)
    );
    const ITEM: &[u8] = br#"{"items": [{"sku": "WIDGET", "price": "1.50", "quantity": 1}]}"#;
    let json = "application/json";
    let cases = [
        Case::new(
            "malformed",
            "orders.create",
            json,
            br#"{"items": [{"name": "#,
            "invalid_argument",
        ),
        Case::new(
            "array",
            "orders.create",
            json,
            b"[1, 2, 3]",
            "invalid_argument",
        ),
        Case::new(
            "huge",
            "orders.create",
            json,
            huge.as_bytes(),
            "invalid_argument",
        ),
        Case::new(
            "text-plain",
            "orders.create",
            "text/plain",
            ITEM,
            "invalid_argument",
        ),
        Case::new(
            "unknown-method",
            "orders.nope",
            json,
            b"{}",
            "unimplemented",
        ),
        Case::new(
            "wrong-field-type",
            "orders.get",
            json,
            br#"{"id": 42}"#,
            "invalid_argument",
        ),
        Case {
            actor: false,
            ..Case::new("no-actor", "orders.create", json, ITEM, "unauthenticated")
        },
        Case {
            bad_bytes: true,
            ..Case::new("not-utf8", "orders.create", json, ITEM, "unauthenticated")
        },
    ];
    for c in &cases {
        let mut h = headers(c.actor.then_some(actor.as_str()));
        if c.bad_bytes {
            h.insert(
                "x-actor-id".into(),
                AMQPValue::LongString(vec![0xff, 0xfe, b'1'].into()),
            );
            h.insert("x-actor-role".into(), AMQPValue::LongString("user".into()));
        }
        let props = BasicProperties::default()
            .with_content_type(c.content_type.into())
            .with_reply_to(reply_q.clone())
            .with_correlation_id(c.corr.into())
            .with_headers(h);
        publish(&ch, &exchange, c.method, c.body, props).await;
    }
    // A well-formed create without reply_to: logged, acked and dropped, not executed.
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_correlation_id("no-reply-to".into())
        .with_headers(headers(Some(&actor)));
    publish(
        &ch,
        &exchange,
        "orders.create",
        br#"{"items": [{"sku": "WIDGET", "price": "1.50", "quantity": 1}]}"#,
        props,
    )
    .await;

    let mut got: HashMap<String, Value> = HashMap::new();
    while got.len() < cases.len() {
        let d = tokio::time::timeout(Duration::from_secs(30), replies.next())
            .await
            .unwrap_or_else(|_| panic!("replies so far: {got:?}"))
            .expect("reply stream")
            .expect("reply");
        let corr = d
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&d.data).expect("a JSON reply");
        assert!(
            got.insert(corr.clone(), body).is_none(),
            "two replies to {corr}"
        );
    }
    for c in &cases {
        let reply = &got[c.corr];
        assert_eq!(reply["error"]["code"], c.code, "{}: {reply}", c.corr);
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}: {reply}",
            c.corr
        );
    }
    // Nothing more comes (no reply to the request without reply_to, no duplicates).
    assert!(
        tokio::time::timeout(Duration::from_millis(500), replies.next())
            .await
            .is_err()
    );

    health_ok(&stack, "orders").await;
    let order = create_order(
        &stack.rpc,
        Uuid::new_v4(),
        "after-poison",
        Duration::from_secs(10),
    )
    .await
    .expect("a good request after the poison");
    assert_eq!(order.total.to_string(), "3.30");
    let proc = &stack.orders[0];
    eventually(Duration::from_secs(10), "no-reply-to logged", || async {
        proc.count_log("without reply_to", |_| true) == 1
    })
    .await;
    let db = stack.orders_sql().await;
    assert_eq!(
        sql_i64(
            &db,
            &format!("SELECT count(*) FROM orders WHERE user_id = '{actor}'")
        )
        .await,
        0,
        "a poison request created an order"
    );
    assert_eq!(
        stack
            .queue_ready(&stack.bus.topology().rpc_queue("orders"))
            .await,
        0
    );
    assert!(stack.orders[0].log().contains("order-svc started"));
    let _ = conn.close(200, "done".into()).await;
}

/// A user.registered event as user-svc would publish it.
fn user_registered(email: &str) -> Value {
    let user_id = Uuid::new_v4();
    let mut event = CloudEvent::new(
        "user-svc",
        "user.registered",
        user_id.to_string(),
        json!({}),
    );
    event.data = json!({"user_id": user_id, "email": email, "name": "Poison Test",
                        "role": "user", "created_at": event.time});
    serde_json::to_value(event).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_events_are_dead_lettered_and_nothing_loops() {
    let stack = Stack::start(StackOptions::services()).await;
    let conn = proto_msgs::testing::lapin_connect(&stack.bus.config(), "poison events").await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let exchange = stack.bus.topology().events_exchange();
    let json_ct = || {
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
    };

    let mut wrong_shape = user_registered("x@example.com");
    wrong_shape["data"] = json!({"unexpected": true});
    let mut old_spec = user_registered("y@example.com");
    old_spec["specversion"] = json!("0.3");
    let good_but_text = user_registered("z@example.com");
    let orders_poison: Vec<(Vec<u8>, BasicProperties)> = vec![
        (b"this is not json".to_vec(), json_ct()),
        (wrong_shape.to_string().into_bytes(), json_ct()),
        (old_spec.to_string().into_bytes(), json_ct()),
        (
            good_but_text.to_string().into_bytes(),
            BasicProperties::default()
                .with_content_type("text/plain".into())
                .with_delivery_mode(2),
        ),
    ];
    for (body, props) in &orders_poison {
        publish(&ch, &exchange, "user.registered", body, props.clone()).await;
    }
    // user-svc's inbox: order events.
    let mut order_wrong_shape = user_registered("w@example.com");
    order_wrong_shape["type"] = json!("order.created");
    let users_poison: Vec<Vec<u8>> = vec![
        b"{\"half\": ".to_vec(),
        order_wrong_shape.to_string().into_bytes(),
    ];
    for body in &users_poison {
        publish(&ch, &exchange, "order.created", body, json_ct()).await;
    }
    // A good event behind the poison is still applied.
    let tag = Uuid::new_v4().simple().to_string();
    let good_email = format!("after-poison-{tag}@example.com");
    publish(
        &ch,
        &exchange,
        "user.registered",
        user_registered(&good_email).to_string().as_bytes(),
        json_ct(),
    )
    .await;

    let topology = stack.bus.topology();
    for (service, expected) in [
        (
            "orders",
            orders_poison
                .iter()
                .map(|(b, _)| b.clone())
                .collect::<Vec<_>>(),
        ),
        ("users", users_poison.clone()),
    ] {
        let dlq = topology.events_dlq(service);
        eventually(
            Duration::from_secs(30),
            &format!("{} poison events in {dlq}", expected.len()),
            || async { stack.queue_ready(&dlq).await as usize >= expected.len() },
        )
        .await;
        let mut bodies = Vec::new();
        while let Some(msg) = ch
            .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            bodies.push(msg.delivery.data.clone());
        }
        let mut want = expected.clone();
        want.sort();
        bodies.sort();
        assert_eq!(
            bodies
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect::<Vec<_>>(),
            want.iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect::<Vec<_>>(),
            "{dlq} holds exactly the poison"
        );
        let inbox = topology.events_queue(service);
        eventually(
            Duration::from_secs(30),
            &format!("{inbox} back to empty"),
            || async { stack.queue_messages(&inbox).await == Some(0) },
        )
        .await;
    }
    let db = stack.orders_sql().await;
    eventually(
        Duration::from_secs(30),
        "the good event applied",
        || async {
            sql_i64(
                &db,
                &format!("SELECT count(*) FROM customers WHERE email = '{good_email}'"),
            )
            .await
                == 1
        },
    )
    .await;
    health_ok(&stack, "orders").await;
    health_ok(&stack, "users").await;
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_http_bodies_are_413() {
    let stack = Stack::start(StackOptions::full()).await;
    let session = system_tests::http::Session::new(&stack.base, stack.http.clone())
        .await
        .expect("session");
    let big = json!({"email": "big@example.com", "password": "password-123",
                     "name": "x".repeat(100 * 1024)});
    let resp = stack
        .http
        .post(stack.url("/users/register"))
        .json(&big)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "invalid_argument", "{body}");

    let items: Vec<Value> = (0..3000)
        .map(
            |i| json!({"sku": format!("ITEM-{i}-with-a-long-sku"), "price": "1.00", "quantity": 1}),
        )
        .collect();
    let resp = session
        .http
        .post(stack.url("/orders"))
        .bearer_auth(&session.token)
        .json(&json!({ "items": items }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 413, "{body}");
    // Still serving.
    session
        .create_order()
        .await
        .expect("an order after the big bodies");
    let db = stack.users_sql().await;
    assert_eq!(
        sql_i64(
            &db,
            "SELECT count(*) FROM users WHERE email = 'big@example.com'"
        )
        .await,
        0
    );
}
