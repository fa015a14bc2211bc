//! What every handler shares.

use crate::hashing::Hasher;
use crate::throttle::Throttle;
use crate::tokens::TokenIssuer;
use sea_orm::DatabaseConnection;
use svc_kit::outbox::OutboxSignal;

/// The service's shared state, behind an `Arc`.
#[derive(Debug)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// Single-statement reads (svc-kit's `Reads`); transactions begin on `db`.
    pub reads: svc_kit::db::Reads,
    pub hasher: Hasher,
    /// Per-account limits on password guesses.
    pub throttle: Throttle,
    pub tokens: TokenIssuer,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: std::time::Duration,
    /// Wakes the outbox relay after a commit that wrote events.
    pub outbox: OutboxSignal,
}
