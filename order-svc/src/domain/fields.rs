//! Single request fields, read from JSON by hand so that every error names its field
//! (`details: {"field": …}`) instead of a serde line/column.

use crate::error::{Error, Result};
use proto_msgs::orders::OrderStatus;
use serde_json::Value;
use uuid::Uuid;

/// A required UUID.
pub fn uuid(field: &str, value: Option<&Value>) -> Result<Uuid> {
    match value {
        None | Some(Value::Null) => Err(Error::invalid(field, format!("{field} is required"))),
        Some(v) => optional_uuid(field, Some(v))?
            .ok_or_else(|| Error::invalid(field, format!("{field} is required"))),
    }
}

/// An optional UUID (`null` or absent → `None`).
pub fn optional_uuid(field: &str, value: Option<&Value>) -> Result<Option<Uuid>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Uuid::parse_str(s.trim())
            .map(Some)
            .map_err(|_| Error::invalid(field, format!("{field} {s:?} is not a UUID"))),
        Some(other) => Err(Error::invalid(
            field,
            format!("{field} must be a UUID string, not {other}"),
        )),
    }
}

/// A required order status (case-insensitive, e.g. `"CANCELLED"`).
pub fn status(field: &str, value: Option<&Value>) -> Result<OrderStatus> {
    optional_status(field, value)?.ok_or_else(|| {
        Error::invalid(
            field,
            format!(
                "{field} is required (one of PENDING, CONFIRMED, SHIPPED, DELIVERED, CANCELLED)"
            ),
        )
    })
}

/// An optional order status.
pub fn optional_status(field: &str, value: Option<&Value>) -> Result<Option<OrderStatus>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse::<OrderStatus>()
            .map(Some)
            .map_err(|e| Error::invalid(field, format!("{field}: {e}"))),
        Some(other) => Err(Error::invalid(
            field,
            format!("{field} must be a status string, not {other}"),
        )),
    }
}

/// An optional non-negative whole number no larger than `max`.
pub fn optional_count(field: &str, value: Option<&Value>, max: u64) -> Result<Option<u64>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= max => Ok(Some(v)),
            _ => Err(Error::invalid(
                field,
                format!("{field} must be a whole number from 0 to {max}, not {n}"),
            )),
        },
        Some(other) => Err(Error::invalid(
            field,
            format!("{field} must be a whole number, not {other}"),
        )),
    }
}

/// An optional string.
pub fn optional_string(field: &str, value: Option<&Value>) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::invalid(
            field,
            format!("{field} must be a string, not {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(err: Error) -> String {
        match err {
            Error::InvalidField { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn statuses_have_clear_errors() {
        assert_eq!(
            status("status", Some(&json!("shipped"))).unwrap(),
            OrderStatus::Shipped
        );
        let err = status("status", Some(&json!("LOST"))).unwrap_err();
        assert!(err.to_string().contains("unknown status \"LOST\""), "{err}");
        assert!(err.to_string().contains("CANCELLED"), "{err}");
        assert_eq!(field_of(err), "status");
        assert!(status("status", None).is_err());
        assert!(status("status", Some(&json!(3))).is_err());
    }

    #[test]
    fn uuids_and_counts() {
        let id = Uuid::new_v4();
        assert_eq!(uuid("id", Some(&json!(id.to_string()))).unwrap(), id);
        assert_eq!(
            field_of(uuid("id", Some(&json!("nope"))).unwrap_err()),
            "id"
        );
        assert_eq!(field_of(uuid("id", None).unwrap_err()), "id");
        assert_eq!(optional_uuid("user_id", None).unwrap(), None);
        assert_eq!(
            optional_count("limit", Some(&json!(5)), 100).unwrap(),
            Some(5)
        );
        assert!(optional_count("limit", Some(&json!(-1)), 100).is_err());
        assert!(optional_count("limit", Some(&json!(1.5)), 100).is_err());
        assert!(optional_count("limit", Some(&json!("5")), 100).is_err());
    }
}
