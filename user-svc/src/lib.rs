//! # user-svc: accounts, passwords and tokens, answered over the bus only
//!
//! No HTTP port: requests arrive on `users.rpc`, events leave through the outbox and
//! order events come in on `users.events`.
//!
//! - [`config`]: settings from the environment ([`Config::from_env`]) or for tests.
//! - `handlers`: one file per RPC method (`users.register`, `login`, `me`, `get`,
//!   `update`, `jwks`); `error` maps every failure to a bus error in one place.
//! - [`domain`]: `Email`, `Password`, `Name`, valid once parsed.
//! - `hashing`: bcrypt on a bounded blocking pool; [`keys`] + [`tokens`]: the Ed25519
//!   signing key (env, file, or a persisted development key) and EdDSA access tokens.
//! - [`events`]: `user.registered`/`user.updated` into the outbox; `order.created`/
//!   `order.updated` folded into per-user order statistics.
//! - `admin`: the optional admin bootstrap; [`db`]: entities and migrations.
//!
//! [`start`] connects, migrates, bootstraps and starts the RPC server, event consumer
//! and outbox relay; [`run`] is `start` + wait, what `main` calls.

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
mod state;
pub mod tokens;

pub use config::{AppEnv, Config, ConfigError};

use crate::admin::AdminAccount;
use crate::db::migration::Migrator;
use crate::hashing::{HashError, Hasher};
use crate::keys::{KeyError, KeyPair};
use crate::state::AppState;
use crate::tokens::{TokenError, TokenIssuer};
use proto_msgs::events::RunningConsumer;
use proto_msgs::rpc::RunningServer;
use proto_msgs::users::SERVICE;
use proto_msgs::{BusError, CancellationToken, RpcError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use std::sync::Arc;
use svc_kit::metrics::ServiceMetrics;
use svc_kit::outbox::{OutboxRelay, OutboxSignal};
use tokio::task::JoinHandle;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot connect to the database at {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: DbErr,
    },
    #[error("database migration failed: {0}")]
    Migration(#[source] DbErr),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("token signer: {0}")]
    Token(#[from] TokenError),
    #[error("password hashing: {0}")]
    Hashing(#[from] HashError),
    #[error("admin bootstrap: {0}")]
    Admin(String),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("message broker: {0}")]
    Bus(#[from] BusError),
}

/// A started service. Cancel the shutdown token, then await [`Running::stopped`].
pub struct Running {
    server: RunningServer,
    consumer: RunningConsumer,
    relay: JoinHandle<()>,
    /// Stops the relay once server and consumer are done, so the events of the last
    /// requests are still flushed.
    relay_stop: CancellationToken,
    db: DatabaseConnection,
}

impl Running {
    /// Waits until everything has stopped: the RPC server first (held requests are
    /// answered), then the consumer, then the relay (one last flush); closes the pool.
    pub async fn stopped(self) {
        self.server.stopped().await;
        self.consumer.stopped().await;
        self.relay_stop.cancel();
        let _ = self.relay.await;
        let _ = self.db.close().await;
    }
}

/// Connects, migrates, bootstraps the admin, and starts the event consumer, the
/// outbox relay and the RPC server; returns once requests are being consumed.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    // Settings first: a bad key or admin setting fails before anything is touched.
    let keys = KeyPair::load(&config.jwt_key)?;
    let tokens = TokenIssuer::new(
        &keys,
        config.jwt_issuer.clone(),
        config.jwt_audience.clone(),
        config.jwt_ttl,
    )?;
    let admin = match (&config.admin_email, &config.admin_password) {
        (Some(email), Some(password)) => Some(
            AdminAccount::parse(email, password, &config.admin_name).map_err(StartError::Admin)?,
        ),
        (None, None) => None,
        _ => {
            return Err(StartError::Admin(
                "ADMIN_EMAIL and ADMIN_PASSWORD must be set together".into(),
            ));
        }
    };
    if config.app_env == AppEnv::Production && config.bcrypt_cost < 10 {
        tracing::warn!(
            cost = config.bcrypt_cost,
            "BCRYPT_COST below 10 in production"
        );
    }

    let db = svc_kit::db::connect(&config.db)
        .await
        .map_err(|source| StartError::Database {
            url: proto_msgs::config::redact(&config.db.url),
            source,
        })?;
    svc_kit::db::migrate::<Migrator>(&db)
        .await
        .map_err(StartError::Migration)?;

    let state = Arc::new(AppState {
        db: db.clone(),
        hasher: Hasher::new(config.bcrypt_cost, config.bcrypt_concurrency).await?,
        tokens,
        outbox: OutboxSignal::default(),
    });
    tracing::info!(kid = %keys.kid(), "token signing key ready");
    if let Some(admin) = &admin {
        admin::bootstrap(&state, admin)
            .await
            .map_err(|e| StartError::Admin(RpcError::from(e).message))?;
    }

    let metrics = ServiceMetrics::new(SERVICE)?;
    metrics.watch_db(&db);

    let relay_stop = CancellationToken::new();
    let relay = OutboxRelay::new(
        db.clone(),
        config.events_bus(),
        SERVICE,
        state.outbox.clone(),
    )
    .poll_interval(config.outbox_poll)
    .observer(metrics.clone())
    .spawn(relay_stop.clone());
    let consumer = events::order_stats::consumer(config.bus.clone(), db.clone())
        .observer(metrics.clone())
        .start(shutdown.clone())
        .await?;
    let health_db = db.clone();
    let render = metrics.clone();
    let server = handlers::rpc_server(config.bus.clone(), &state)
        .prefetch(config.rpc_prefetch)
        .observer(metrics.clone())
        .health_check(move || {
            let db = health_db.clone();
            async move {
                db.execute_unprepared("SELECT 1")
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        tracing::warn!(error = %e, "health check: database unreachable");
                        RpcError::unavailable("the service's database is unreachable")
                    })
            }
        })
        .metrics(move || render.render())
        .start(shutdown)
        .await?;
    tracing::info!(service = SERVICE, "user-svc started");
    Ok(Running {
        server,
        consumer,
        relay,
        relay_stop,
        db,
    })
}

/// [`start`], then wait until `shutdown` has been cancelled and everything stopped.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown).await?.stopped().await;
    tracing::info!("user-svc stopped");
    Ok(())
}
