//! Hooks for metrics: the bus library reports what happened, the caller decides what
//! to count (so proto-msgs does not pick a metrics registry for anyone).

use crate::envelope::ErrorCode;
use std::time::Duration;

/// How one RPC ended: `ok` or an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error(ErrorCode),
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error(code) => code.as_str(),
        }
    }
}

/// Told about every call an [`RpcClient`](crate::rpc::RpcClient) makes.
pub trait CallObserver: Send + Sync + 'static {
    fn call_finished(&self, method: &str, outcome: Outcome, elapsed: Duration);
    /// A reply to `method` came from an account that does not own it, and was dropped.
    fn reply_rejected(&self, method: &str) {
        let _ = method;
    }
}

/// Told about every request an [`RpcServer`](crate::rpc::RpcServer) handles.
pub trait ServerObserver: Send + Sync + 'static {
    fn request_handled(&self, method: &str, outcome: Outcome, elapsed: Duration);
    /// A request to `method` named an actor but came from an account not trusted to.
    fn request_untrusted(&self, method: &str) {
        let _ = method;
    }
}
