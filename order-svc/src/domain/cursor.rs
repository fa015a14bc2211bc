//! The keyset cursor of `orders.list`: the position (created_at, id) of the last order
//! of a page, as base64url text. Opaque to callers; only its format is checked here.
//!
//! The position does not depend on the filters, so a cursor stays correct for the
//! same query; combining it with other filters is allowed and just continues from
//! that point in time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Version tag, so the format can change without misreading old cursors.
const VERSION: &str = "v1";

/// Where the next page starts: strictly after this order in (created_at, id) DESC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// `created_at` is kept in microseconds: PostgreSQL's precision, so the position
    /// compares equal to the stored row.
    pub fn encode(&self) -> String {
        let text = format!(
            "{VERSION}:{}:{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// `None` for anything that is not a cursor this service made.
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split(':');
        if parts.next()? != VERSION {
            return None;
        }
        let micros: i64 = parts.next()?.parse().ok()?;
        let id = Uuid::parse_str(parts.next()?).ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros)?,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_junk() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        let text = c.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Cursor::decode(&text), Some(c));
        for bad in ["", "!!!", "djE6MTIz", &URL_SAFE_NO_PAD.encode("v2:1:abc")] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
        let extra = URL_SAFE_NO_PAD.encode(format!("v1:1:{}:x", Uuid::nil().simple()));
        assert_eq!(Cursor::decode(&extra), None);
    }
}
