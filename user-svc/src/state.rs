//! What every handler shares.

use crate::hashing::Hasher;
use crate::tokens::TokenIssuer;
use sea_orm::DatabaseConnection;
use svc_kit::outbox::OutboxSignal;

/// The service's shared state, behind an `Arc`.
#[derive(Debug)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub hasher: Hasher,
    pub tokens: TokenIssuer,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: std::time::Duration,
    /// Wakes the outbox relay after a commit that wrote events.
    pub outbox: OutboxSignal,
}
