//! `make bench-rpc`: echo round trips through the broker, proto-msgs' client and server
//! against a bare lapin pair with no library around it, measured in the same run.
//!
//! Env: `BENCH_SECS` (per scenario, default 5), `BENCH_WARMUP_SECS` (default 1),
//! `BENCH_CONCURRENCY` (default "1,32"), `AMQP_URL`.

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
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const PAYLOAD: &str = r#"{"n":1,"text":"hello, bus"}"#;

#[derive(Clone, Copy)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// Runs `concurrency` loops of `call` for warm-up + duration; measures after warm-up.
async fn drive<F, Fut>(concurrency: usize, call: F) -> Figures
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let warmup = env_secs("BENCH_WARMUP_SECS", 1);
    let duration = env_secs("BENCH_SECS", 5);
    let call = Arc::new(call);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(100_000);
                let mut errors = 0u64;
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    let ok = call().await;
                    if t >= measure_from {
                        if ok {
                            lat.push(t.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("bench task");
        all.extend(lat);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(all.len() - 1);
        all[i].as_secs_f64() * 1000.0
    };
    Figures {
        rps: all.len() as f64 / duration.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}

async fn ours(bus: &TestBus, mode: ReplyMode, concurrency: usize) -> Figures {
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
    let figures = drive(concurrency, move || {
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
async fn bare(bus: &TestBus, concurrency: usize) -> Figures {
    let queue = format!("{}.bare.rpc", bus.topology().prefix());
    let server_conn = bus.config().connect("bare server").await.expect("connect");
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

    let client_conn = bus.config().connect("bare client").await.expect("connect");
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
    let figures = drive(concurrency, move || {
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

fn row(name: &str, c: usize, f: Figures, bare: Option<Figures>) {
    let ratio = bare
        .map(|b| format!("{:.2}", f.rps / b.rps))
        .unwrap_or_else(|| "—".into());
    println!(
        "| {name:<28} | {c:>3} | {:>9.0} | {:>7.2} | {:>7.2} | {:>6} | {ratio:>10} |",
        f.rps, f.p50_ms, f.p99_ms, f.errors
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let levels: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
            .unwrap_or_else(|_| "1,32".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let bus = TestBus::new();
        bus.track("echo");
        println!("RPC echo through RabbitMQ ({} s per scenario after {} s warm-up)\n", env_secs("BENCH_SECS", 5).as_secs(), env_secs("BENCH_WARMUP_SECS", 1).as_secs());
        println!("| scenario                     |   c |     req/s | p50 ms  | p99 ms  | errors | ours/bare  |");
        println!("|------------------------------|-----|-----------|---------|---------|--------|------------|");
        for c in levels {
            let b = bare(&bus, c).await;
            row("bare lapin pair", c, b, None);
            let ex = ours(&bus, ReplyMode::ExclusiveQueue, c).await;
            row("proto-msgs, exclusive queue", c, ex, Some(b));
            let direct = ours(&bus, ReplyMode::DirectReplyTo, c).await;
            row("proto-msgs, direct reply-to", c, direct, Some(b));
        }
    });
}
