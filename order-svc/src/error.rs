//! The service's one error type and its one mapping to bus error codes.

use proto_msgs::RpcError;
use proto_msgs::orders::OrderStatus;
use sea_orm::DbErr;
use uuid::Uuid;

/// Why a request was not carried out. Handlers use `?`; [`From<Error> for RpcError`]
/// is the only place that picks codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is wrong; `field` is its path, e.g. `items[2].price`.
    #[error("{message}")]
    InvalidField { field: String, message: String },
    /// Also what a caller gets for someone else's order: the two must be
    /// indistinguishable.
    #[error("order {0} not found")]
    OrderNotFound(Uuid),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("cannot change the status of order {id} from {from} to {to}")]
    IllegalTransition {
        id: Uuid,
        from: OrderStatus,
        to: OrderStatus,
    },
    #[error(
        "idempotency key {0:?} was already used for a different order request; use a new key for a new order"
    )]
    IdempotencyKeyReused(String),
    /// Already in bus form (e.g. a missing actor).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// Data in our own tables that we can't read back: a bug, never the caller's fault.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<Error> for RpcError {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidField { field, message } => RpcError::invalid_field(&field, message),
            e @ Error::OrderNotFound(_) => RpcError::not_found(e.to_string()),
            Error::PermissionDenied(m) => RpcError::permission_denied(m),
            e @ Error::IllegalTransition { .. } => RpcError::failed_precondition(e.to_string()),
            e @ Error::IdempotencyKeyReused(_) => RpcError::failed_precondition(e.to_string()),
            Error::Rpc(e) => e,
            // Down → unavailable, anything else → internal; logged there, details hidden.
            Error::Db(e) => svc_kit::db::rpc_error(e),
            Error::Corrupt(what) => {
                tracing::error!(error = %what, "unreadable row");
                RpcError::internal("the service failed to process the request")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
