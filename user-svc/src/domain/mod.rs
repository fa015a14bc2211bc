//! Values that are valid once parsed: [`Email`], [`Password`], [`Name`]. They are the
//! contract's types (`proto_msgs::users`), so requests are checked while they are read;
//! the rest of the crate cannot hold an invalid one. The admin bootstrap parses its
//! settings with the same rules.

pub use proto_msgs::users::{
    Email, NewPassword as Password, PASSWORD_MAX_BYTES as MAX_PASSWORD_BYTES,
    PASSWORD_MIN_BYTES as MIN_PASSWORD_BYTES, UserName as Name,
};

/// A rule between fields that failed: becomes `invalid_argument` with `{"field": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ValidationError {
            field,
            message: message.into(),
        }
    }
}

impl From<ValidationError> for proto_msgs::RpcError {
    fn from(err: ValidationError) -> Self {
        proto_msgs::RpcError::invalid_field(err.field, err.message)
    }
}
