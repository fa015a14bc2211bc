//! Values that are valid once parsed: [`Email`], [`Password`], [`Name`]. Requests are
//! parsed into them at the edge; the rest of the crate cannot hold an invalid one.

mod email;
mod name;
mod password;

pub use email::Email;
pub use name::Name;
pub use password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_BYTES, Password};

/// A field that failed validation: becomes `invalid_argument` with `{"field": …}`.
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
