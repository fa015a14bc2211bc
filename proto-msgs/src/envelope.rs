//! The reply envelope and the error model shared by every RPC method.
//!
//! A reply body is exactly one of `{"data": <result>}` or
//! `{"error": {"code": "...", "message": "...", "details": ...}}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// gRPC-style error codes; each maps to exactly one HTTP status at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    ResourceExhausted,
    Unimplemented,
    Internal,
    Unavailable,
    DeadlineExceeded,
}

impl ErrorCode {
    /// Every code, in the order of the table in DESIGN.md.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::ResourceExhausted,
        ErrorCode::Unimplemented,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
    ];

    /// The HTTP status the gateway answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists | ErrorCode::FailedPrecondition => 409,
            ErrorCode::ResourceExhausted => 429,
            ErrorCode::Unimplemented => 501,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::DeadlineExceeded => 504,
        }
    }

    /// The wire spelling (`"invalid_argument"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::FailedPrecondition => "failed_precondition",
            ErrorCode::ResourceExhausted => "resource_exhausted",
            ErrorCode::Unimplemented => "unimplemented",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `details` field of a `resource_exhausted` error that says, in whole seconds,
/// when to try again.
pub const RETRY_AFTER_S: &str = "retry_after_s";

/// An error as it travels on the bus: a code, a human message, optional details
/// (for example which field was wrong).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AlreadyExists, message)
    }
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, message)
    }
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unimplemented, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DeadlineExceeded, message)
    }

    /// `resource_exhausted` with `details.retry_after_s`: how long the caller should
    /// wait (the gateway sends it as `Retry-After`).
    pub fn resource_exhausted(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self::new(ErrorCode::ResourceExhausted, message)
            .with_details(serde_json::json!({ RETRY_AFTER_S: retry_after_s }))
    }

    /// The `retry_after_s` of a `resource_exhausted` error, when it has one.
    pub fn retry_after_s(&self) -> Option<u64> {
        if self.code != ErrorCode::ResourceExhausted {
            return None;
        }
        self.details.as_ref()?.get(RETRY_AFTER_S)?.as_u64()
    }

    /// A field-level validation error: `details` is `{"field": <name>}`.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid_argument(message).with_details(serde_json::json!({ "field": field }))
    }
}

/// A reply body as read from the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply<T> {
    Data(T),
    Error(RpcError),
}

impl<T> Reply<T> {
    pub fn into_result(self) -> Result<T, RpcError> {
        match self {
            Reply::Data(data) => Ok(data),
            Reply::Error(err) => Err(err),
        }
    }
}

impl<T> From<Result<T, RpcError>> for Reply<T> {
    fn from(result: Result<T, RpcError>) -> Self {
        match result {
            Ok(data) => Reply::Data(data),
            Err(err) => Reply::Error(err),
        }
    }
}

/// Serialises a reply body. Serialising our own types cannot fail in practice; if it
/// ever does, the caller still gets a well-formed `internal` error instead of nothing.
pub fn encode_reply<T: Serialize>(result: &Result<T, RpcError>) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum ReplyRef<'a, T> {
        Data(&'a T),
        Error(&'a RpcError),
    }
    let reply = match result {
        Ok(data) => ReplyRef::Data(data),
        Err(err) => ReplyRef::Error(err),
    };
    serde_json::to_vec(&reply).unwrap_or_else(|err| {
        let fallback = RpcError::internal(format!("reply could not be encoded: {err}"));
        serde_json::to_vec(&ReplyRef::<()>::Error(&fallback)).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"reply could not be encoded"}}"#.to_vec()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_map_to_the_design_table() {
        let table: Vec<(&str, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str(), c.http_status()))
            .collect();
        assert_eq!(
            table,
            vec![
                ("invalid_argument", 400),
                ("unauthenticated", 401),
                ("permission_denied", 403),
                ("not_found", 404),
                ("already_exists", 409),
                ("failed_precondition", 409),
                ("resource_exhausted", 429),
                ("unimplemented", 501),
                ("internal", 500),
                ("unavailable", 503),
                ("deadline_exceeded", 504),
            ]
        );
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
    }

    #[test]
    fn retry_after_travels_in_details() {
        let err = RpcError::resource_exhausted("slow down", 7);
        assert_eq!(err.details, Some(json!({"retry_after_s": 7})));
        assert_eq!(err.retry_after_s(), Some(7));
        let other = RpcError::unavailable("x").with_details(json!({"retry_after_s": 7}));
        assert_eq!(other.retry_after_s(), None);
    }

    #[test]
    fn reply_shapes_are_exact() {
        let ok: Result<_, RpcError> = Ok(json!({"id": 1}));
        assert_eq!(
            serde_json::from_slice::<Value>(&encode_reply(&ok)).unwrap(),
            json!({"data": {"id": 1}})
        );
        let err: Result<Value, _> = Err(RpcError::not_found("no such order"));
        assert_eq!(
            serde_json::from_slice::<Value>(&encode_reply(&err)).unwrap(),
            json!({"error": {"code": "not_found", "message": "no such order"}})
        );
        let parsed: Reply<Value> = serde_json::from_value(
            json!({"error": {"code": "internal", "message": "x", "details": {"a": 1}}}),
        )
        .unwrap();
        assert_eq!(
            parsed.into_result().unwrap_err().details,
            Some(json!({"a": 1}))
        );
    }
}
