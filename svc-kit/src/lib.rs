//! # svc-kit: what both services share, written once
//!
//! - [`service`]: the skeleton a service runs in ([`service::start`]): connect,
//!   migrate, metrics, relay, consumer, server, health, and an ordered stop.
//! - [`config`]: [`config::ServiceConfig`], the settings every service reads.
//! - [`db`]: connect to PostgreSQL with sane pool limits and a watchdog for silently
//!   dead connections; migrate once per database; tell a transient database failure
//!   (down, restarting) from a real error, and map both to bus errors.
//! - [`outbox`]: write an event in the same transaction as the change it describes;
//!   [`outbox::OutboxRelay`] publishes pending rows with publisher confirms.
//! - [`inbox`]: record handled event ids in the consumer's transaction, so a
//!   redelivered event has no second effect.
//! - [`replies`]: store each mutating call's reply with its effect, keyed by the
//!   idempotency key, so a redelivered or retried request is answered, not run again;
//!   [`prune`](replies::prune) bounds it and the inbox.
//! - [`migration`]: the tables behind outbox and inbox, for each service's migrator;
//!   [`entities`]: one sea-orm entity for each of them.
//! - [`metrics`]: Prometheus metrics fed by the bus observers, served over the bus.
//! - `testing` (feature): a fresh database per test, and a service started on one.

pub mod config;
pub mod db;
pub mod entities;
pub mod inbox;
pub mod metrics;
pub mod migration;
pub mod outbox;
pub mod replies;
pub mod service;

#[cfg(feature = "testing")]
pub mod testing;
