//! Request/reply over RabbitMQ: [`RpcClient`] publishes to the `rpc` exchange with
//! `reply_to` and `correlation_id`; [`RpcServer`] consumes `<service>.rpc` and answers.

pub mod client;
pub mod observe;
mod probe;
pub mod server;

pub use client::{RawReply, Repliers, ReplyMode, RpcClient, RpcClientConfig};
pub use observe::{CallObserver, Outcome, ServerObserver};
#[cfg(feature = "testing")]
pub use server::ReplyFault;
pub use server::{MetricsText, PROMETHEUS_TEXT, RpcServer, RunningServer, Trust};
