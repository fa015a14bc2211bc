//! Errors of the bus plumbing itself (connecting, declaring, publishing).

use crate::envelope::RpcError;

/// Something went wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to the message broker at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot declare {name} on the message broker: {reason}")]
    Declare { name: String, reason: String },
    #[error("message broker error: {0}")]
    Amqp(String),
    #[error("the broker refused the message (negative publisher confirm)")]
    Nacked,
    #[error("no queue is bound for {0:?} yet (its consumer has not declared its queue)")]
    Unroutable(String),
    #[error("not connected to the message broker")]
    NotConnected,
    #[error("the connection to the message broker was closed")]
    Closed,
    #[error("cannot encode message: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl BusError {
    pub(crate) fn declare(name: &str, reason: impl Into<String>) -> Self {
        BusError::Declare {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn amqp(err: lapin::Error) -> Self {
        BusError::Amqp(err.to_string())
    }
}

impl From<lapin::Error> for BusError {
    fn from(err: lapin::Error) -> Self {
        BusError::amqp(err)
    }
}

impl From<BusError> for RpcError {
    fn from(err: BusError) -> Self {
        match err {
            BusError::Encode(e) => RpcError::internal(format!("cannot encode request: {e}")),
            BusError::Config(e) => RpcError::internal(e),
            other => RpcError::unavailable(other.to_string()),
        }
    }
}
