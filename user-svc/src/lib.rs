//! # user-svc: accounts, passwords and tokens, answered over the bus only
//!
//! No HTTP port: requests arrive on `users.rpc`, events leave through the outbox and
//! order events come in on `users.events`.
//!
//! - [`config`]: settings from the environment ([`Config::from_env`]) or for tests.
//! - `handlers`: one file per RPC method (`users.register`, `login`, `me`, `get`,
//!   `update`, `jwks`, `refresh`, `logout`, `logout_all`, `admin_update`,
//!   `revocations`); `error` maps every failure to a bus error in one place.
//! - [`domain`]: `Email`, `Password`, `Name`, valid once parsed.
//! - `hashing`: bcrypt in a bounded lane (refused when full, skipped past the
//!   deadline); `throttle`: per-account limits on failed password checks, in the
//!   database; [`keys`] + [`tokens`]: the Ed25519
//!   signing key (env, file, or a persisted development key) and EdDSA access tokens.
//! - [`events`]: `user.registered`/`user.updated` into the outbox; `order.created`/
//!   `order.updated` folded into per-user order statistics.
//! - [`sessions`]: refresh-token families (rotation, reuse detection) and revocations,
//!   announced as `user.sessions_revoked`.
//! - `admin`: the optional admin bootstrap; [`db`]: entities and migrations.
//!
//! [`start`] checks keys and admin settings, then runs in svc-kit's skeleton (connect,
//! migrate, bootstrap, RPC server, event consumer, outbox relay); [`run`] is `start` +
//! wait, what `main` calls.

mod admin;
pub mod config;
pub mod db;
pub mod domain;
mod error;
pub mod events;
mod handlers;
mod hashing;
pub mod keys;
mod profile;
pub mod sessions;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;
pub mod tokens;

pub use config::{AppEnv, Config, ConfigError};
pub use svc_kit::service::{Running, StartError};

use crate::admin::AdminAccount;
use crate::db::migration::Migrator;
use crate::hashing::Hasher;
use crate::keys::KeyPair;
use crate::state::AppState;
use crate::throttle::Throttle;
use crate::tokens::TokenIssuer;
use proto_msgs::users::SERVICE;
use proto_msgs::{CancellationToken, RpcError};
use std::sync::Arc;
use svc_kit::service::{Identity, Wiring};

/// Who this service is on the bus and in the logs.
pub const IDENTITY: Identity = Identity {
    service: SERVICE,
    process: events::SOURCE,
};

/// Reads the settings from `vars` (what `main` passes).
pub fn config(vars: &proc_kit::Vars) -> Result<Config, ConfigError> {
    Config::from_vars(vars)
}

/// Checks the settings that need no server (keys, admin), then hands svc-kit's
/// skeleton what this service adds: the admin bootstrap, the `users.*` methods and the
/// order-statistics consumer. Returns once requests are being consumed.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    let service_error = |e: &dyn std::fmt::Display| StartError::Service(e.to_string());
    // Settings first: a bad key or admin setting fails before anything is touched.
    let keys = KeyPair::load(&config.jwt_key).map_err(|e| service_error(&e))?;
    let tokens = TokenIssuer::new(
        &keys,
        config.jwt_issuer.clone(),
        config.jwt_audience.clone(),
        config.jwt_ttl,
    )
    .map_err(|e| service_error(&format!("token signer: {e}")))?;
    let admin = match (&config.admin_email, &config.admin_password) {
        (Some(email), Some(password)) => Some(
            AdminAccount::parse(email, password.expose(), &config.admin_name)
                .map_err(|e| service_error(&format!("admin bootstrap: {e}")))?,
        ),
        _ => None,
    };
    config::check_bcrypt_lane(config.service.rpc_prefetch, config.bcrypt_lane)
        .map_err(|e| service_error(&e))?;
    let hasher = Hasher::new(config.bcrypt_cost, config.bcrypt_lane)
        .await
        .map_err(|e| service_error(&format!("password hashing: {e}")))?;
    let throttle = Throttle::new(keys.derive_secret("password throttle"), config.throttle)?;
    tracing::info!(kid = %keys.kid(), "token signing key ready");
    let refresh_ttl = config.refresh_ttl;

    svc_kit::service::start::<Migrator, _, _>(
        IDENTITY,
        config.service,
        shutdown,
        |parts| async move {
            hasher.register_metrics(parts.metrics.registry())?;
            throttle.register_metrics(parts.metrics.registry())?;
            let state = Arc::new(AppState {
                db: parts.db.clone(),
                reads: parts.reads.clone(),
                hasher,
                throttle,
                tokens,
                refresh_ttl,
                outbox: parts.outbox.clone(),
            });
            if let Some(admin) = &admin {
                admin::bootstrap(&state, admin).await.map_err(|e| {
                    StartError::Service(format!("admin bootstrap: {}", RpcError::from(e).message))
                })?;
            }
            Ok(Wiring {
                server: handlers::rpc_server(&parts.bus, &state),
                consumer: Some(events::order_stats::consumer(&parts.bus, parts.db)),
                prune: Some(Arc::new(|db, before| {
                    Box::pin(
                        async move { events::order_stats::prune_known_orders(&db, before).await },
                    )
                })),
            })
        },
    )
    .await
}

/// [`start`], then wait until `shutdown` has been cancelled and everything stopped.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown).await?.stopped().await;
    Ok(())
}
