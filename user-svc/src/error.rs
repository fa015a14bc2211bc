//! The one place where the service's failures become bus errors.
//!
//! Handlers return [`Error`] and use `?`; the RPC wiring turns it into an
//! [`RpcError`]: database failures via svc-kit (`unavailable` when the database is
//! down, otherwise `internal`), a full bcrypt lane as `resource_exhausted` (with
//! `retry_after_s`), a deadline that passed while waiting for bcrypt as
//! `deadline_exceeded`, other hashing and signing failures as `internal` (logged,
//! never shown in detail).

use crate::domain::ValidationError;
use crate::hashing::HashError;
use crate::tokens::TokenError;
use proto_msgs::RpcError;
use sea_orm::DbErr;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already a bus error (not found, unauthenticated, …).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("invalid {}: {}", .0.field, .0.message)]
    Invalid(#[from] ValidationError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("password hashing: {0}")]
    Hash(#[from] HashError),
    #[error("token: {0}")]
    Token(#[from] TokenError),
    /// The stored-replies table (a reused idempotency key, the database).
    #[error(transparent)]
    Store(#[from] svc_kit::replies::StoreError),
}

impl From<Error> for RpcError {
    fn from(err: Error) -> Self {
        match err {
            Error::Rpc(e) => e,
            Error::Invalid(e) => e.into(),
            Error::Db(e) => svc_kit::db::rpc_error(e),
            Error::Hash(HashError::Busy) => RpcError::resource_exhausted(
                "the service is busy checking passwords; try again shortly",
                crate::hashing::BUSY_RETRY_AFTER_S,
            ),
            Error::Hash(HashError::DeadlineExceeded) => RpcError::deadline_exceeded(
                "the request's deadline passed while it waited for a password check; \
                 nothing was done",
            ),
            Error::Store(e) => e.into(),
            Error::Hash(e) => {
                tracing::error!(error = %e, "password hashing failed");
                RpcError::internal("the service failed to process the request")
            }
            Error::Token(e) => {
                tracing::error!(error = %e, "token signing failed");
                RpcError::internal("the service failed to process the request")
            }
        }
    }
}

/// The message for a user that is missing or that the actor may not see: the same in
/// both cases, so nobody learns which ids exist.
pub const USER_NOT_FOUND: &str = "no such user";

pub fn user_not_found() -> Error {
    Error::Rpc(RpcError::not_found(USER_NOT_FOUND))
}
