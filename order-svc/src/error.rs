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
    #[error("product {0} not found")]
    ProductNotFound(Uuid),
    #[error("a product with SKU {0:?} already exists")]
    SkuExists(String),
    /// An order line names a product that does not exist or is not sold now.
    #[error("{field}: {message}")]
    UnknownProduct { field: String, message: String },
    /// A refusal that tells the caller what is true now (the current price, the
    /// available quantity) in `details`.
    #[error("{message}")]
    Precondition {
        message: String,
        details: serde_json::Value,
    },
    #[error(
        "cannot change the stock of product {id} by {delta}: only {stock} in stock, and stock never goes below 0"
    )]
    StockBelowZero { id: Uuid, stock: i64, delta: i64 },
    /// The stored-replies table (a reused idempotency key, the database).
    #[error(transparent)]
    Store(#[from] svc_kit::replies::StoreError),
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
            e @ Error::ProductNotFound(_) => RpcError::not_found(e.to_string()),
            e @ Error::SkuExists(_) => RpcError::already_exists(e.to_string())
                .with_details(serde_json::json!({"field": "sku"})),
            Error::UnknownProduct { field, message } => RpcError::invalid_field(&field, message),
            Error::Precondition { message, details } => {
                RpcError::failed_precondition(message).with_details(details)
            }
            e @ Error::StockBelowZero { stock, .. } => RpcError::failed_precondition(e.to_string())
                .with_details(serde_json::json!({"field": "delta", "stock": stock})),
            Error::Store(e) => e.into(),
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
