//! # proto-msgs: the wire contract of the shop bus
//!
//! The one place that knows the wire, and the only code that talks AMQP.
//!
//! - [`amqp`]: the AMQP client underneath (lapin, as published): connecting from a URL
//!   over a socket that makes every inbound short string valid UTF-8, header helpers.
//! - [`connection`]: [`Bus`], the one supervised connection of a process; each role
//!   (server, consumer, publisher, client) works on a channel of its own on it.
//! - [`topology`]: names of exchanges (`rpc`, `events`) and queues (`<service>.rpc`,
//!   `<service>.events`, `<service>.events.dlq`), an optional prefix, idempotent declare.
//! - [`envelope`]: the reply body `{"data": …}` / `{"error": {code, message, details}}`
//!   and [`ErrorCode`], which knows its HTTP status.
//! - [`context`]: the request context carried in headers (request id, trace context,
//!   actor, idempotency key, deadline).
//! - [`rpc`]: [`RpcClient`] (reply queue, correlation ids, deadlines, fail-fast) and
//!   [`RpcServer`] (typed handlers, bounded concurrency, error replies, never requeues).
//! - [`events`]: CloudEvents envelope, confirmed publisher, consumer with retries + DLQ.
//! - [`users`], [`orders`], [`catalog`] (products, served by order-svc): request, reply
//!   and event types of each service, made of
//!   newtypes that check their rules while being read; [`limits`]: the rules shared by
//!   both (idempotency keys, text), each written once.
//! - [`config`]: broker settings from the environment; [`trace`]: W3C `traceparent`;
//!   [`telemetry`]: each hop's span tied to the trace it received.
//!
//! Reconnects are supervised here: the connection, and every consumer and client on it,
//! survive a broker restart without their process restarting.

pub mod amqp;
pub mod catalog;
pub mod config;
pub mod connection;
pub mod context;
pub mod envelope;
pub mod error;
pub mod events;
pub mod limits;
pub mod money;
pub mod orders;
pub mod rpc;
mod supervise;
pub mod telemetry;
pub mod topology;
pub mod trace;
pub mod users;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::BusConfig;
pub use connection::{Bus, UseBus};
pub use context::{Actor, ReplayMark, RequestContext, Role};
pub use envelope::{ErrorCode, Reply, RpcError};
pub use error::BusError;
pub use events::{CloudEvent, EventConsumer, EventPublisher, HandlerError};
pub use money::Money;
pub use rpc::{RpcClient, RpcClientConfig, RpcServer};
pub use topology::Topology;
pub use trace::TraceParent;

/// Re-exported so callers can share one cancellation type for graceful shutdown.
pub use tokio_util::sync::CancellationToken;
