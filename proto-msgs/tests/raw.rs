//! How other teams talk to our services: plain lapin, hand-written JSON, exact replies.

use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use proto_msgs::testing::TestBus;
use proto_msgs::{CancellationToken, RequestContext, RpcServer};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn hand_written_request_gets_the_exact_reply() {
    let bus = TestBus::new();
    bus.track("echo");
    let stop = CancellationToken::new();
    let server = RpcServer::new(bus.config(), "echo")
        .method("echo.greet", |ctx: RequestContext, req: Value| async move {
            Ok(json!({"hello": req["name"], "request_id": ctx.request_id}))
        })
        .start(stop.clone())
        .await
        .unwrap();

    let conn = bus.config().connect("raw test").await.unwrap();
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
    headers.insert("x-request-id".into(), AMQPValue::LongString("raw-1".into()));
    let publish = |key: &'static str, body: &'static [u8], corr: &'static str| {
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(q.name().clone())
            .with_correlation_id(corr.into())
            .with_headers(headers.clone());
        let ch = ch.clone();
        let exchange = bus.topology().rpc_exchange();
        async move {
            ch.basic_publish(
                exchange.as_str().into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .unwrap();
        }
    };
    let mut next = async || {
        let d = tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        (
            d.properties.correlation_id().as_ref().unwrap().to_string(),
            serde_json::from_slice::<Value>(&d.data).unwrap(),
        )
    };

    publish("echo.greet", br#"{"name":"Ada"}"#, "c-1").await;
    assert_eq!(
        next().await,
        (
            "c-1".into(),
            json!({"data": {"hello": "Ada", "request_id": "raw-1"}})
        )
    );

    publish("echo.greet", b"{oops", "c-2").await;
    let (corr, body) = next().await;
    assert_eq!(corr, "c-2");
    assert_eq!(body["error"]["code"], "invalid_argument");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid request body")
    );

    publish("echo.nothing", b"{}", "c-3").await;
    let (_, body) = next().await;
    assert_eq!(
        body,
        json!({"error": {"code": "unimplemented", "message": "unknown method \"echo.nothing\" for service \"echo\""}})
    );

    let _ = conn.close(200, "bye".into()).await;
    stop.cancel();
    server.stopped().await;
}
