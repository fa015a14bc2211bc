//! The request context that travels in AMQP headers: request id, W3C trace context,
//! the actor the gateway vouches for, an idempotency key and the caller's deadline.

use crate::amqp::{header, put_i64, put_str};
use crate::envelope::RpcError;
use crate::trace::TraceParent;
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Header names, as they appear on the wire.
pub mod headers {
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    pub const REQUEST_ID: &str = "x-request-id";
    pub const ACTOR_ID: &str = "x-actor-id";
    pub const ACTOR_ROLE: &str = "x-actor-role";
    pub const IDEMPOTENCY_KEY: &str = "x-idempotency-key";
    /// Absolute deadline, epoch milliseconds. `expiration` only drops messages at the
    /// head of a queue, so servers also check this before doing any work.
    pub const DEADLINE: &str = "x-deadline";
    /// On a reply: `true` when it is the stored reply of an earlier delivery of the same
    /// request (same idempotency key), not the result of running the method again.
    pub const REPLAYED: &str = "x-idempotent-replayed";
}

/// A user's role. Only user-svc decides it; the gateway copies it from a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (expected \"user\" or \"admin\")"
            )),
        }
    }
}

/// Who is making the call, as verified by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub id: Uuid,
    pub role: Role,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Everything about a request that is not its body.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub traceparent: Option<TraceParent>,
    pub tracestate: Option<String>,
    pub actor: Option<Actor>,
    pub idempotency_key: Option<String>,
    /// When the caller stops waiting. Set by the client from its timeout; read by the
    /// server from `x-deadline`.
    pub deadline: Option<SystemTime>,
    /// The request's AMQP `message_id`, filled in by the server (not a header). It is the
    /// same on a redelivery, so a handler can use it to make a retry harmless.
    pub message_id: Option<String>,
    /// The broker account that published the request (its AMQP `user_id`, which the
    /// broker refuses unless it is the publisher's own), filled in by the server.
    pub origin: Option<String>,
    /// Set by a handler that answers with a stored reply (see [`ReplayMark`]).
    pub replayed: ReplayMark,
}

/// Lets a handler tell the server that its answer is a stored reply, so the reply
/// carries `x-idempotent-replayed: true` (the gateway turns it into
/// `Idempotent-Replayed: true`). Clones share the mark.
#[derive(Debug, Clone, Default)]
pub struct ReplayMark(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl ReplayMark {
    pub fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl RequestContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    pub fn with_actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn with_traceparent(mut self, traceparent: TraceParent) -> Self {
        self.traceparent = Some(traceparent);
        self
    }

    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The actor, or `unauthenticated` for a call that needs one and has none.
    pub fn require_actor(&self) -> Result<Actor, RpcError> {
        self.actor.ok_or_else(|| {
            RpcError::unauthenticated(
                "this method needs an authenticated actor (headers x-actor-id and x-actor-role)",
            )
        })
    }

    /// The trace id (32 hex digits) when the request carries a trace context.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.as_ref().map(|t| t.trace_id())
    }

    /// True when the caller's deadline has passed.
    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| SystemTime::now() >= d)
    }

    /// Time left until the deadline, if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }

    /// The AMQP headers for this context.
    pub fn to_headers(&self) -> FieldTable {
        let mut table = FieldTable::default();
        if let Some(v) = &self.request_id {
            put_str(&mut table, headers::REQUEST_ID, v);
        }
        if let Some(v) = &self.traceparent {
            put_str(&mut table, headers::TRACEPARENT, &v.to_string());
        }
        if let Some(v) = &self.tracestate {
            put_str(&mut table, headers::TRACESTATE, v);
        }
        if let Some(actor) = &self.actor {
            put_str(&mut table, headers::ACTOR_ID, &actor.id.to_string());
            put_str(&mut table, headers::ACTOR_ROLE, actor.role.as_str());
        }
        if let Some(v) = &self.idempotency_key {
            put_str(&mut table, headers::IDEMPOTENCY_KEY, v);
        }
        if let Some(deadline) = self.deadline {
            let ms = deadline
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis();
            put_i64(
                &mut table,
                headers::DEADLINE,
                i64::try_from(ms).unwrap_or(i64::MAX),
            );
        }
        table
    }

    /// Reads a context from AMQP headers. Unknown headers are ignored; a malformed
    /// actor is an error (it would otherwise silently become an anonymous call), a
    /// malformed trace context is dropped (tracing must never fail a request).
    pub fn from_headers(table: Option<&FieldTable>) -> Result<Self, RpcError> {
        let Some(table) = table else {
            return Ok(Self::default());
        };
        let mut ctx = RequestContext {
            request_id: header_str(table, headers::REQUEST_ID),
            traceparent: header_str(table, headers::TRACEPARENT).and_then(|s| s.parse().ok()),
            tracestate: header_str(table, headers::TRACESTATE),
            idempotency_key: header_str(table, headers::IDEMPOTENCY_KEY),
            ..Default::default()
        };
        if let Some(ms) = header_i64(table, headers::DEADLINE) {
            let ms = u64::try_from(ms).unwrap_or(0);
            ctx.deadline = Some(UNIX_EPOCH + Duration::from_millis(ms));
        }
        let id = header_str(table, headers::ACTOR_ID);
        let role = header_str(table, headers::ACTOR_ROLE);
        ctx.actor = match (id, role) {
            (None, None) => None,
            (Some(id), Some(role)) => {
                let id = Uuid::parse_str(&id).map_err(|_| {
                    RpcError::unauthenticated(format!("header x-actor-id {id:?} is not a UUID"))
                })?;
                let role = role
                    .parse::<Role>()
                    .map_err(|e| RpcError::unauthenticated(format!("header x-actor-role: {e}")))?;
                Some(Actor { id, role })
            }
            _ => {
                return Err(RpcError::unauthenticated(
                    "headers x-actor-id and x-actor-role must be sent together",
                ));
            }
        };
        Ok(ctx)
    }
}

/// A header as text (empty counts as absent). Bytes that are not UTF-8 become U+FFFD:
/// such a value can only be wrong, and its use (a UUID, a trace id) then says so.
pub fn header_str(table: &FieldTable, name: &str) -> Option<String> {
    match header(table, name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// A header as an integer, accepting every integer type and decimal text (the
/// RabbitMQ management UI sends numbers as strings unless told otherwise).
pub fn header_i64(table: &FieldTable, name: &str) -> Option<i64> {
    match header(table, name)? {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok(),
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_headers() {
        let actor = Actor {
            id: Uuid::new_v4(),
            role: Role::Admin,
        };
        let ctx = RequestContext::new()
            .with_request_id("req-1")
            .with_actor(actor)
            .with_traceparent(TraceParent::new_root())
            .with_idempotency_key("k1");
        let mut ctx = ctx;
        ctx.deadline = Some(SystemTime::now() + Duration::from_secs(5));
        let back = RequestContext::from_headers(Some(&ctx.to_headers())).unwrap();
        assert_eq!(back.request_id.as_deref(), Some("req-1"));
        assert_eq!(back.actor, Some(actor));
        assert_eq!(back.traceparent, ctx.traceparent);
        assert_eq!(back.idempotency_key.as_deref(), Some("k1"));
        assert!(!back.deadline_passed());
    }

    #[test]
    fn half_an_actor_is_refused() {
        let mut t = FieldTable::default();
        put_str(&mut t, "x-actor-id", &Uuid::new_v4().to_string());
        let err = RequestContext::from_headers(Some(&t)).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::Unauthenticated);
        put_str(&mut t, "x-actor-role", "root");
        assert!(RequestContext::from_headers(Some(&t)).is_err());
    }

    #[test]
    fn deadline_accepts_text_and_numbers() {
        let mut t = FieldTable::default();
        put_str(&mut t, "x-deadline", "1000");
        let ctx = RequestContext::from_headers(Some(&t)).unwrap();
        assert!(ctx.deadline_passed());
        put_i64(&mut t, "x-deadline", 1000);
        assert!(
            RequestContext::from_headers(Some(&t))
                .unwrap()
                .deadline_passed()
        );
    }
}
