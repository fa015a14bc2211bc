//! RPC echo round trips through the broker: proto-msgs' client and server against a
//! bare lapin pair with no library around it, sending either a minimal message or the
//! one the wire contract asks for, measured in the same run.

use crate::load::{Figures, Load};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, ExchangeKind};
use proto_msgs::rpc::ReplyMode;
use proto_msgs::testing::TestBus;
use proto_msgs::{CancellationToken, RequestContext, RpcClient, RpcClientConfig, RpcServer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

const PAYLOAD: &str = r#"{"n":1,"text":"hello, bus"}"#;

/// proto-msgs' RpcServer + RpcClient echoing a small JSON body.
pub async fn ours(bus: &TestBus, mode: ReplyMode, load: &Load) -> Figures {
    let stop = CancellationToken::new();
    let server = RpcServer::new(bus.config(), "echo")
        .prefetch(64)
        .method(
            "echo.echo",
            |_ctx, v: serde_json::Value| async move { Ok(v) },
        )
        .start(stop.clone())
        .await
        .expect("server");
    let client = RpcClient::connect(
        bus.config(),
        RpcClientConfig {
            reply_mode: mode,
            ..Default::default()
        },
    )
    .await
    .expect("client");
    let ctx = RequestContext::new();
    let c = client.clone();
    let figures = load
        .drive(move || {
            let c = c.clone();
            let ctx = ctx.clone();
            async move {
                c.call_raw("echo.echo", PAYLOAD.as_bytes().to_vec(), &ctx)
                    .await
                    .is_ok()
            }
        })
        .await;
    client.close().await;
    stop.cancel();
    server.stopped().await;
    figures
}

/// What a bare pair sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Correlation id and reply-to only, straight to the queue (the floor).
    Minimal,
    /// What the wire contract asks of a request: through a topic exchange, `mandatory`,
    /// with `expiration`, ids, type, content type, timestamp and the context headers.
    Contract,
}

/// The same exchange of messages written directly against lapin, the way its examples
/// do it: one queue, a consumer that publishes the reply and acks (each awaited), a
/// client with a reply queue and a correlation map. No deadlines, no error replies,
/// no consumer probe.
pub async fn bare(bus: &TestBus, load: &Load, message: Message) -> Figures {
    let prefix = bus.topology().prefix();
    let queue = format!("{prefix}.bare.rpc");
    let exchange = format!("{prefix}.bare");
    let server_conn = proto_msgs::testing::lapin_connect(&bus.config(), "bare server").await;
    let sch = server_conn.create_channel().await.expect("channel");
    sch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare");
    if message == Message::Contract {
        // Auto-delete: gone with its last binding, when the queue goes.
        sch.exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare the exchange");
        sch.queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "echo.*".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    }
    sch.basic_qos(64, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = sch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let server = tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let Some(reply_to) = d.properties.reply_to().clone() else {
                continue;
            };
            let mut props = BasicProperties::default();
            if let Some(c) = d.properties.correlation_id().clone() {
                props = props.with_correlation_id(c);
            }
            let _ = sch
                .basic_publish(
                    "".into(),
                    reply_to,
                    BasicPublishOptions::default(),
                    &d.data,
                    props,
                )
                .await;
            let _ = d.acker.ack(BasicAckOptions::default()).await;
        }
    });

    let client_conn = proto_msgs::testing::lapin_connect(&bus.config(), "bare client").await;
    let cch: Channel = client_conn.create_channel().await.expect("channel");
    let reply_q = cch
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
        .expect("reply queue")
        .name()
        .clone();
    let waiters: Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>> = Arc::default();
    let mut replies = cch
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
        .expect("consume replies");
    let w = waiters.clone();
    let router = tokio::spawn(async move {
        while let Some(Ok(d)) = replies.next().await {
            if let Some(c) = d.properties.correlation_id()
                && let Some(tx) = w.lock().expect("lock").remove(c.as_str())
            {
                let _ = tx.send(d.data);
            }
        }
    });
    let figures = load
        .drive(move || {
            let cch = cch.clone();
            let waiters = waiters.clone();
            let queue = queue.clone();
            let exchange = exchange.clone();
            let reply_q = reply_q.clone();
            async move {
                let id = uuid::Uuid::new_v4().to_string();
                let (tx, rx) = oneshot::channel();
                waiters.lock().expect("lock").insert(id.clone(), tx);
                let props = BasicProperties::default()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(reply_q);
                let (exchange, key, options, props) = match message {
                    Message::Minimal => ("", queue.as_str(), BasicPublishOptions::default(), props),
                    Message::Contract => {
                        let ctx = RequestContext::new()
                            .with_request_id(id.clone())
                            .with_traceparent(proto_msgs::TraceParent::new_root());
                        let mut headers = ctx.to_headers();
                        proto_msgs::amqp::put_i64(&mut headers, "x-deadline", i64::MAX);
                        let props = props
                            .with_content_type("application/json".into())
                            .with_delivery_mode(1)
                            .with_message_id(uuid::Uuid::new_v4().to_string().into())
                            .with_expiration("5000".into())
                            .with_timestamp(0)
                            .with_type("echo.echo".into())
                            .with_headers(headers);
                        let options = BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        };
                        (exchange.as_str(), "echo.echo", options, props)
                    }
                };
                if cch
                    .basic_publish(
                        exchange.into(),
                        key.into(),
                        options,
                        PAYLOAD.as_bytes(),
                        props,
                    )
                    .await
                    .is_err()
                {
                    return false;
                }
                tokio::time::timeout(Duration::from_secs(5), rx)
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
        })
        .await;
    let _ = client_conn.close(200, "done".into()).await;
    let _ = server_conn.close(200, "done".into()).await;
    router.abort();
    server.abort();
    figures
}
