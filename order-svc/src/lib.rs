//! # order-svc: orders, their status machine and order events, over the bus only
//!
//! No HTTP port: requests arrive on `orders.rpc` and are answered on the caller's reply
//! queue; events go out through a transactional outbox and come in on `orders.events`.
//!
//! - [`config`]: settings from the environment (or [`Config::for_tests`]).
//! - [`handlers`]: one file per RPC method (`orders.create`, `.get`, `.list`,
//!   `.update_status`) and the server that routes to them.
//! - [`domain`]: request parts that parse at the edge (order lines, list cursor,
//!   single fields with precise error paths).
//! - [`db`]: the schema (migrations, run at start-up) and the SQL of orders and the
//!   customers projection. Money is BIGINT cents.
//! - [`events`]: `order.created` / `order.updated` for the outbox, and the consumer of
//!   `user.registered` / `user.updated` into `customers`.
//! - [`error`]: the one error type and its one mapping to bus error codes.
//!
//! [`start`] wires it together: database + migrations, outbox relay, event consumer,
//! RPC server (with `orders.sys.health` and `orders.sys.metrics`).

pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod handlers;

pub use config::{Config, ConfigError};

use db::migration::Migrator;
use proto_msgs::events::RunningConsumer;
use proto_msgs::orders::SERVICE;
use proto_msgs::rpc::RunningServer;
use proto_msgs::{BusError, CancellationToken, RpcError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use std::sync::Arc;
use svc_kit::metrics::ServiceMetrics;
use svc_kit::outbox::{OutboxRelay, OutboxSignal};
use tokio::task::JoinHandle;
use tokio_util::sync::DropGuard;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the orders database: {0}")]
    Database(#[source] DbErr),
    #[error("cannot migrate the orders database: {0}")]
    Migration(#[source] DbErr),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// A started service. Cancel the shutdown token, then await [`Running::stopped`].
pub struct Running {
    server: RunningServer,
    consumer: RunningConsumer,
    relay: JoinHandle<()>,
    /// Stops the relay when dropped: after the server, so the events of the last
    /// requests it answered are still flushed.
    relay_stop: DropGuard,
    db: DatabaseConnection,
}

impl Running {
    /// The service's database pool (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Waits until every part has stopped: the RPC server first (held requests are
    /// answered), then the consumer, then the relay (one last outbox flush).
    pub async fn stopped(self) {
        self.server.stopped().await;
        self.consumer.stopped().await;
        drop(self.relay_stop);
        let _ = self.relay.await;
        let _ = self.db.close().await;
        tracing::info!("order-svc stopped");
    }
}

/// Connects, migrates, starts outbox relay, event consumer and RPC server, and returns
/// once requests are being consumed.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    let db = svc_kit::db::connect(&config.db)
        .await
        .map_err(StartError::Database)?;
    svc_kit::db::migrate::<Migrator>(&db)
        .await
        .map_err(StartError::Migration)?;
    let metrics = ServiceMetrics::new(SERVICE)?;
    metrics.watch_db(&db);

    // If a later step fails, what already runs is stopped with it.
    let stop = shutdown.child_token();
    let abort_on_error = stop.clone().drop_guard();

    let signal = OutboxSignal::default();
    let relay_stop = CancellationToken::new();
    let relay = OutboxRelay::new(db.clone(), config.relay_bus(), SERVICE, signal.clone())
        .poll_interval(config.outbox_poll)
        .observer(metrics.clone())
        .spawn(relay_stop.clone());
    let relay_stop = relay_stop.drop_guard();

    let consumer = events::consumer(config.bus.clone(), db.clone())
        .observer(metrics.clone())
        .start(stop.clone())
        .await?;

    let app = Arc::new(handlers::App {
        db: db.clone(),
        outbox: signal,
    });
    let ping = db.clone();
    let render = metrics.clone();
    let server = handlers::server(config.bus.clone(), app)
        .prefetch(config.rpc_prefetch)
        .observer(metrics)
        .metrics(move || render.render())
        .health_check(move || {
            let db = ping.clone();
            async move {
                db.execute_unprepared("SELECT 1")
                    .await
                    .map(|_| ())
                    .map_err(|err| {
                        tracing::warn!(error = %err, "health check: database unreachable");
                        RpcError::unavailable("the orders database is unreachable")
                    })
            }
        })
        .start(stop)
        .await?;

    abort_on_error.disarm();
    tracing::info!(service = SERVICE, "order-svc started");
    Ok(Running {
        server,
        consumer,
        relay,
        relay_stop,
        db,
    })
}

/// [`start`], then wait until `shutdown` has stopped everything: what `main` calls.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown).await?.stopped().await;
    Ok(())
}
