//! RPC echo round trips through the broker: proto-msgs' client and server against bare
//! pairs with no library around them (lapin, and amqprs, the client proto-msgs uses),
//! measured in the same run.

use crate::load::{Figures, Load};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
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

/// The same exchange of messages written directly against lapin: one queue, a
/// consumer that publishes the reply and acks, a client with a reply queue and a
/// correlation map. No confirms, no mandatory flag, no deadlines, no headers.
pub async fn bare(bus: &TestBus, load: &Load) -> Figures {
    let queue = format!("{}.bare.rpc", bus.topology().prefix());
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
            let reply_q = reply_q.clone();
            async move {
                let id = uuid::Uuid::new_v4().to_string();
                let (tx, rx) = oneshot::channel();
                waiters.lock().expect("lock").insert(id.clone(), tx);
                let props = BasicProperties::default()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(reply_q);
                if cch
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
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

/// What a bare pair sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Correlation id and reply-to only, straight to the queue (the floor).
    Minimal,
    /// What the wire contract asks of a request: through a topic exchange, `mandatory`,
    /// with `expiration`, ids, type, content type, timestamp and the context headers.
    Contract,
}

/// The same bare pair written against amqprs, the client proto-msgs itself uses: what
/// request/reply through this broker costs with that client and nothing around it.
pub async fn bare_amqprs(bus: &TestBus, load: &Load, message: Message) -> Figures {
    use proto_msgs::amqp::amqprs::channel::{
        BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments,
        ExchangeDeclareArguments, QueueBindArguments, QueueDeclareArguments,
    };
    use proto_msgs::amqp::amqprs::{BasicProperties, FieldTable};
    let prefix = bus.topology().prefix();
    let queue = format!("{prefix}.bare-amqprs.rpc");
    let exchange = format!("{prefix}.bare-amqprs");
    let server_conn = bus
        .config()
        .connect("bare amqprs server")
        .await
        .expect("connect");
    let sch = server_conn.open_channel(None).await.expect("channel");
    sch.queue_declare(
        QueueDeclareArguments::new(&queue)
            .auto_delete(true)
            .finish(),
    )
    .await
    .expect("declare");
    if message == Message::Contract {
        // Auto-delete: gone with its last binding, when the queue goes.
        sch.exchange_declare(
            ExchangeDeclareArguments::new(&exchange, "topic")
                .auto_delete(true)
                .finish(),
        )
        .await
        .expect("declare the exchange");
        sch.queue_bind(QueueBindArguments::new(&queue, &exchange, "echo.*"))
            .await
            .expect("bind");
    }
    sch.basic_qos(BasicQosArguments::new(0, 64, false))
        .await
        .expect("qos");
    let (_, mut requests) = sch
        .basic_consume_rx(
            BasicConsumeArguments::new(&queue, "")
                .manual_ack(true)
                .finish(),
        )
        .await
        .expect("consume");
    let server = tokio::spawn(async move {
        while let Some(m) = requests.recv().await {
            let (Some(deliver), Some(props)) = (m.deliver, m.basic_properties) else {
                continue;
            };
            let Some(reply_to) = props.reply_to() else {
                continue;
            };
            let mut reply = BasicProperties::default();
            if let Some(c) = props.correlation_id() {
                reply.with_correlation_id(c);
            }
            let body = m.content.unwrap_or_default();
            let _ = sch
                .basic_publish(reply, body, BasicPublishArguments::new("", reply_to))
                .await;
            let _ = sch
                .basic_ack(BasicAckArguments::new(deliver.delivery_tag(), false))
                .await;
        }
    });

    let client_conn = bus
        .config()
        .connect("bare amqprs client")
        .await
        .expect("connect");
    let cch = proto_msgs::amqp::ChannelHandle::open(&client_conn)
        .await
        .expect("channel");
    let reply_q = cch
        .declare_private_queue("the reply queue")
        .await
        .expect("reply queue");
    let cch = cch.channel;
    let waiters: Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>> = Arc::default();
    let (_, mut replies) = cch
        .basic_consume_rx(
            BasicConsumeArguments::new(&reply_q, "")
                .auto_ack(true)
                .finish(),
        )
        .await
        .expect("consume replies");
    let w = waiters.clone();
    let router = tokio::spawn(async move {
        while let Some(m) = replies.recv().await {
            let id = m.basic_properties.as_ref().and_then(|p| p.correlation_id());
            if let Some(tx) = id.and_then(|id| w.lock().expect("lock").remove(id)) {
                let _ = tx.send(m.content.unwrap_or_default());
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
                let mut props = BasicProperties::default();
                props.with_correlation_id(&id).with_reply_to(&reply_q);
                let args = match message {
                    Message::Minimal => BasicPublishArguments::new("", &queue),
                    Message::Contract => {
                        let ctx = RequestContext::new()
                            .with_request_id(id.clone())
                            .with_traceparent(proto_msgs::TraceParent::new_root());
                        let mut headers: FieldTable = ctx.to_headers();
                        proto_msgs::amqp::put_i64(&mut headers, "x-deadline", i64::MAX);
                        props
                            .with_content_type("application/json")
                            .with_message_id(&uuid::Uuid::new_v4().to_string())
                            .with_expiration("5000")
                            .with_timestamp(0)
                            .with_message_type("echo.echo")
                            .with_headers(headers);
                        BasicPublishArguments::new(&exchange, "echo.echo")
                            .mandatory(true)
                            .finish()
                    }
                };
                let published = cch
                    .basic_publish(props, PAYLOAD.as_bytes().to_vec(), args)
                    .await;
                if published.is_err() {
                    return false;
                }
                tokio::time::timeout(Duration::from_secs(5), rx)
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
        })
        .await;
    router.abort();
    server.abort();
    let _ = client_conn.close().await;
    let _ = server_conn.close().await;
    figures
}
