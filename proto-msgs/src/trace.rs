//! W3C Trace Context (`traceparent`) parsing and generation.
//!
//! Each hop keeps the trace id and makes a new span id, so a request can be followed
//! from the HTTP call through the bus into the services and the events they publish.

use std::fmt;
use std::str::FromStr;

/// A parsed `traceparent` header: `00-<trace-id>-<parent-id>-<flags>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    span_id: String,
    flags: u8,
}

impl TraceParent {
    /// A new trace, sampled.
    pub fn new_root() -> Self {
        TraceParent {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            span_id: random_span_id(),
            flags: 0x01,
        }
    }

    /// The same trace with a new span id: what a hop sends onwards.
    pub fn child(&self) -> Self {
        TraceParent {
            trace_id: self.trace_id.clone(),
            span_id: random_span_id(),
            flags: self.flags,
        }
    }

    /// Builds one from hex ids (for example from an OpenTelemetry span context).
    pub fn from_hex(trace_id: &str, span_id: &str, flags: u8) -> Option<Self> {
        format!("00-{trace_id}-{span_id}-{flags:02x}").parse().ok()
    }

    /// 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// 16 lowercase hex digits: the id of the span that sent this header.
    pub fn span_id(&self) -> &str {
        &self.span_id
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }
}

fn random_span_id() -> String {
    let bytes = uuid::Uuid::new_v4();
    let mut id = bytes.simple().to_string();
    id.truncate(16);
    id
}

/// Why a `traceparent` header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid traceparent: {0}")]
pub struct TraceParentError(&'static str);

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let mut parts = s.split('-');
        let (Some(version), Some(trace_id), Some(span_id), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TraceParentError("expected four dash-separated fields"));
        };
        let hex = |v: &str, len: usize| {
            v.len() == len
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2) || version == "ff" {
            return Err(TraceParentError("bad version"));
        }
        // Version 00 has exactly four fields; later versions may append more.
        if version == "00" && parts.next().is_some() {
            return Err(TraceParentError("version 00 has exactly four fields"));
        }
        if !hex(trace_id, 32) || trace_id.bytes().all(|b| b == b'0') {
            return Err(TraceParentError("bad trace id"));
        }
        if !hex(span_id, 16) || span_id.bytes().all(|b| b == b'0') {
            return Err(TraceParentError("bad parent id"));
        }
        if !hex(flags, 2) {
            return Err(TraceParentError("bad flags"));
        }
        let flags = u8::from_str_radix(flags, 16).map_err(|_| TraceParentError("bad flags"))?;
        Ok(TraceParent {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let tp: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            .parse()
            .unwrap();
        assert_eq!(tp.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(tp.span_id(), "b7ad6b7169203331");
        assert_eq!(
            tp.to_string(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        let child = tp.child();
        assert_eq!(child.trace_id(), tp.trace_id());
        assert_ne!(child.span_id(), tp.span_id());
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad}");
        }
        let root = TraceParent::new_root();
        assert_eq!(root.to_string().parse::<TraceParent>().unwrap(), root);
    }
}
