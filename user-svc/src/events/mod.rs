//! Events: what user-svc publishes (through the outbox) and what it consumes.
//!
//! - [`outgoing`]: `user.registered` / `user.updated`, built from a user row and
//!   written with [`svc_kit::outbox::enqueue`] in the transaction of the change.
//! - [`order_stats`]: `order.created` / `order.updated` from order-svc, folded into
//!   `order_stats` idempotently.

pub mod order_stats;
pub mod outgoing;

/// CloudEvents `source` of every event this service emits.
pub const SOURCE: &str = "user-svc";
