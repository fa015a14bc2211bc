//! `bus`: poke the shop bus by hand.
//!
//! ```text
//! bus call users.sys.health '{}'
//! bus call orders.list '{}' --actor-id <uuid> --actor-role admin
//! bus publish order.created '{"order_id": "…"}' --subject <id>
//! bus listen 'order.*'
//! ```
//! Reads `AMQP_URL` and `BUS_PREFIX` like the services.

use clap::{Parser, Subcommand};
use futures::StreamExt;
use proto_msgs::amqp::lapin::options::{
    BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions,
};
use proto_msgs::amqp::lapin::types::FieldTable;
use proto_msgs::{
    Actor, BusConfig, CloudEvent, EventPublisher, RequestContext, Role, RpcClient, RpcClientConfig,
    TraceParent,
};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(Parser)]
#[command(
    name = "bus",
    about = "Call RPC methods and publish or watch events on the shop bus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Call a method and print the reply body; exit code 1 on an error reply.
    Call {
        /// e.g. users.sys.health, orders.get
        method: String,
        /// The JSON request body.
        #[arg(default_value = "{}")]
        body: String,
        /// Act as this user (what the gateway sets from a verified token).
        #[arg(long, requires = "actor_role")]
        actor_id: Option<uuid::Uuid>,
        #[arg(long, requires = "actor_id")]
        actor_role: Option<Role>,
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        #[arg(long)]
        request_id: Option<String>,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Publish a CloudEvent with this type and data (waits for the broker's confirm).
    Publish {
        /// e.g. order.created
        event_type: String,
        /// The event's `data`, as JSON.
        data: String,
        #[arg(long, default_value = "")]
        subject: String,
        #[arg(long, default_value = "bus-cli")]
        source: String,
    },
    /// Print events as they arrive (a temporary queue bound to the events exchange).
    Listen {
        /// Topic pattern: `#` for everything, `order.*`, `user.registered`, …
        #[arg(default_value = "#")]
        pattern: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bus: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let bus = BusConfig::from_vars(&proc_kit::Vars::from_env())?;
    match cli.command {
        Command::Call {
            method,
            body,
            actor_id,
            actor_role,
            timeout_ms,
            request_id,
            idempotency_key,
        } => {
            let body: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| anyhow::anyhow!("the body is not JSON: {e}"))?;
            let client = RpcClient::connect(
                bus,
                RpcClientConfig {
                    connection_name: "bus-cli".into(),
                    ..Default::default()
                },
            )
            .await?;
            let mut ctx = RequestContext::new()
                .with_request_id(request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()))
                .with_traceparent(TraceParent::new_root());
            if let (Some(id), Some(role)) = (actor_id, actor_role) {
                ctx = ctx.with_actor(Actor { id, role });
            }
            if let Some(key) = idempotency_key {
                ctx = ctx.with_idempotency_key(key);
            }
            ctx.deadline = Some(SystemTime::now() + Duration::from_millis(timeout_ms));
            let result = client
                .call_raw(&method, serde_json::to_vec(&body)?, &ctx)
                .await;
            client.close().await;
            let reply: serde_json::Value = match result {
                Ok(raw) => serde_json::from_slice(&raw)?,
                Err(err) => serde_json::json!({ "error": err }),
            };
            println!("{}", serde_json::to_string_pretty(&reply)?);
            Ok(if reply.get("error").is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Publish {
            event_type,
            data,
            subject,
            source,
        } => {
            let data: serde_json::Value = serde_json::from_str(&data)
                .map_err(|e| anyhow::anyhow!("data is not JSON: {e}"))?;
            let event = CloudEvent::new(source, event_type, subject, data)
                .with_trace(Some(&TraceParent::new_root()), None);
            let publisher = EventPublisher::new(bus, "bus-cli");
            publisher.publish(&event).await?;
            publisher.close().await;
            println!("{}", serde_json::to_string_pretty(&event)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Listen { pattern } => {
            proto_msgs::amqp::check_name("the pattern", &pattern).map_err(anyhow::Error::msg)?;
            let conn = proto_msgs::Bus::connect(bus.clone(), "bus-cli listen").await?;
            conn.topology().ensure_exchanges(&conn).await?;
            let ch = conn.channel().await?;
            let queue = ch
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?
                .name()
                .clone();
            let exchange = bus.topology.events_exchange();
            ch.queue_bind(
                queue.clone(),
                exchange.as_str().into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
            let mut consumer = ch
                .basic_consume(
                    queue,
                    "".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            eprintln!("listening on {exchange} for {pattern:?} (Ctrl-C to stop)");
            loop {
                tokio::select! {
                    next = consumer.next() => match next {
                        Some(Ok(delivery)) => {
                            match serde_json::from_slice::<serde_json::Value>(&delivery.data) {
                                Ok(v) => println!("{}", serde_json::to_string(&v)?),
                                Err(_) => println!("{}", String::from_utf8_lossy(&delivery.data)),
                            }
                        }
                        _ => {
                            eprintln!("the connection to the broker was lost");
                            return Ok(ExitCode::FAILURE);
                        }
                    },
                    _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                }
            }
        }
    }
}
