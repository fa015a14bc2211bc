//! The skeleton both services run in: connect, migrate, metrics, outbox relay, event
//! consumer, RPC server, health; and stop it all in order.
//!
//! A service gives [`start`] its migrator and a `wire` step that builds its RPC methods
//! and event handlers from the shared [`Parts`]; the skeleton does the rest, the same
//! way for every service. If a step fails, what was started before it is stopped
//! again, in reverse order, before the error is returned.

use crate::config::ServiceConfig;
use crate::metrics::ServiceMetrics;
use crate::outbox::{OutboxRelay, OutboxSignal};
use chrono::{DateTime, Utc};
use proto_msgs::events::RunningConsumer;
use proto_msgs::rpc::RunningServer;
use proto_msgs::{Bus, BusError, CancellationToken, EventConsumer, RpcError, RpcServer};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database at {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: DbErr,
    },
    #[error("database migration failed: {0}")]
    Migration(#[source] DbErr),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("message broker: {0}")]
    Bus(#[from] BusError),
    /// A service's own start-up step failed (its keys, its admin account, …).
    #[error("{0}")]
    Service(String),
}

/// What a service's handlers and consumers are built from.
#[derive(Clone)]
pub struct Parts {
    pub db: DatabaseConnection,
    /// Where single-statement reads go: pooled connections kept between them, so that
    /// they skip sqlx's ping on release ([`crate::db::Reads`]).
    pub reads: crate::db::Reads,
    /// The service's one broker connection.
    pub bus: Bus,
    /// Wakes the outbox relay after a commit that wrote events.
    pub outbox: OutboxSignal,
    pub metrics: Arc<ServiceMetrics>,
}

/// What a service adds to the skeleton.
pub struct Wiring {
    /// Its methods (prefetch, health, metrics and observer are added by the skeleton).
    pub server: RpcServer,
    /// The events it consumes, if any.
    pub consumer: Option<EventConsumer>,
    /// Deletes the service's own bookkeeping older than the idempotency window, next to
    /// the stored replies and handled events the skeleton prunes.
    pub prune: Option<Pruner>,
}

/// A service's pruning step: deletes its rows older than the cutoff, returns how many.
pub type Pruner = Arc<
    dyn Fn(
            DatabaseConnection,
            DateTime<Utc>,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<u64, DbErr>> + Send>>
        + Send
        + Sync,
>;

/// The service's name on the bus (`users`, `orders`) and for logs and metrics.
pub struct Identity {
    pub service: &'static str,
    /// CloudEvents source and process name (`user-svc`).
    pub process: &'static str,
}

/// Starts `identity`'s service; returns once requests are being consumed. Cancel
/// `shutdown`, then await [`Running::stopped`].
pub async fn start<M, F, Fut>(
    identity: Identity,
    config: ServiceConfig,
    shutdown: CancellationToken,
    wire: F,
) -> Result<Running, StartError>
where
    M: MigratorTrait,
    F: FnOnce(Parts) -> Fut,
    Fut: Future<Output = Result<Wiring, StartError>>,
{
    let db = crate::db::connect(&config.db)
        .await
        .map_err(|source| StartError::Database {
            url: proto_msgs::config::redact(&config.db.url),
            source,
        })?;
    let mut started = Started {
        db: Some(db.clone()),
        ..Default::default()
    };
    match started
        .run::<M, F, Fut>(&identity, &config, shutdown, wire)
        .await
    {
        Ok(running) => {
            tracing::info!(service = identity.service, "{} started", identity.process);
            Ok(running)
        }
        Err(err) => {
            started.stop().await;
            Err(err)
        }
    }
}

/// What has been started so far, to stop again if a later step fails.
#[derive(Default)]
struct Started {
    db: Option<DatabaseConnection>,
    bus: Option<Bus>,
    relay_bus: Option<Bus>,
    relay: Option<(JoinHandle<()>, CancellationToken)>,
    pruner: Option<(JoinHandle<()>, CancellationToken)>,
    consumer: Option<RunningConsumer>,
    /// Stops the consumer (and the server) if a later step fails.
    stop: CancellationToken,
}

impl Started {
    async fn run<M, F, Fut>(
        &mut self,
        identity: &Identity,
        config: &ServiceConfig,
        shutdown: CancellationToken,
        wire: F,
    ) -> Result<Running, StartError>
    where
        M: MigratorTrait,
        F: FnOnce(Parts) -> Fut,
        Fut: Future<Output = Result<Wiring, StartError>>,
    {
        let db = self
            .db
            .clone()
            .ok_or_else(|| StartError::Service("no database".into()))?;
        crate::db::migrate::<M>(&db)
            .await
            .map_err(StartError::Migration)?;
        let metrics = ServiceMetrics::new(identity.service)?;
        metrics.watch_db(&db);

        // The service's one connection; the relay gets its own only when told to
        // publish elsewhere (EVENTS_AMQP_URL).
        let bus = Bus::start(config.bus.clone(), identity.service);
        self.bus = Some(bus.clone());
        let relay_bus = match &config.events_bus {
            Some(events) => {
                let relay_bus = Bus::start(events.clone(), &format!("{} events", identity.service));
                self.relay_bus = Some(relay_bus.clone());
                relay_bus
            }
            None => bus.clone(),
        };
        // Cancelled by the caller's shutdown, or by us if a later step fails.
        self.stop = shutdown.child_token();

        let outbox = OutboxSignal::default();
        let relay_stop = CancellationToken::new();
        let relay = OutboxRelay::new(db.clone(), &relay_bus, identity.service, outbox.clone())
            .poll_interval(config.outbox_poll)
            .observer(metrics.clone())
            .spawn(relay_stop.clone());
        self.relay = Some((relay, relay_stop));

        let parts = Parts {
            db: db.clone(),
            reads: crate::db::Reads::for_pool(&db, &config.db),
            bus: bus.clone(),
            outbox,
            metrics: metrics.clone(),
        };
        let wiring = wire(parts).await?;
        let prune_stop = CancellationToken::new();
        let pruner = tokio::spawn(prune_loop(
            db.clone(),
            config.idempotency_window,
            config.prune_interval,
            wiring.prune,
            prune_stop.clone(),
        ));
        self.pruner = Some((pruner, prune_stop));
        if let Some(consumer) = wiring.consumer {
            self.consumer = Some(
                consumer
                    .observer(metrics.clone())
                    .start(self.stop.clone())
                    .await?,
            );
        }
        let ping = db.clone();
        let render = metrics.clone();
        let process = identity.process;
        #[allow(unused_mut)]
        let mut server = wiring.server;
        #[cfg(feature = "testing")]
        for fault in &config.reply_faults {
            server = server.fault(fault.clone());
        }
        let server = server
            .prefetch(config.rpc_prefetch)
            .trust(config.trusted_callers.clone())
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
                            RpcError::unavailable(format!("{process}'s database is unreachable"))
                        })
                }
            })
            .start(self.stop.clone())
            .await?;
        Ok(Running {
            server,
            consumer: self.consumer.take(),
            relay: self.relay.take(),
            pruner: self.pruner.take(),
            bus: self.bus.take(),
            relay_bus: self.relay_bus.take(),
            db: self.db.take().unwrap_or(db),
            process,
        })
    }

    /// Stops, in reverse order, what was started.
    async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(consumer) = self.consumer.take() {
            consumer.stopped().await;
        }
        stop_relay(self.pruner.take()).await;
        stop_relay(self.relay.take()).await;
        close_bus(self.relay_bus.take()).await;
        close_bus(self.bus.take()).await;
        if let Some(db) = self.db.take() {
            let _ = db.close().await;
        }
    }
}

/// Every `interval`, deletes what is older than `window`: stored replies, handled
/// events, and the service's own rows (`extra`). A failure is logged and retried at the
/// next tick (a database that is down now is no reason to stop).
async fn prune_loop(
    db: DatabaseConnection,
    window: std::time::Duration,
    interval: std::time::Duration,
    extra: Option<Pruner>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let Ok(window) = chrono::Duration::from_std(window) else {
            return;
        };
        let before = Utc::now() - window;
        let mut pruned = crate::replies::prune(&db, before).await;
        if let (Ok(n), Some(extra)) = (&pruned, &extra) {
            pruned = extra(db.clone(), before).await.map(|m| n + m);
        }
        match pruned {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "pruned rows older than the idempotency window"),
            Err(err) => tracing::warn!(error = %err, "pruning failed; retried at the next tick"),
        }
    }
}

/// Stops a background task (relay, pruner) and waits for it.
async fn stop_relay(relay: Option<(JoinHandle<()>, CancellationToken)>) {
    if let Some((join, stop)) = relay {
        stop.cancel();
        let _ = join.await;
    }
}

async fn close_bus(bus: Option<Bus>) {
    if let Some(bus) = bus {
        bus.close().await;
    }
}

/// A started service. Cancel the shutdown token, then await [`Running::stopped`].
pub struct Running {
    server: RunningServer,
    consumer: Option<RunningConsumer>,
    relay: Option<(JoinHandle<()>, CancellationToken)>,
    pruner: Option<(JoinHandle<()>, CancellationToken)>,
    bus: Option<Bus>,
    relay_bus: Option<Bus>,
    db: DatabaseConnection,
    process: &'static str,
}

impl Running {
    /// The service's database pool (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Waits until everything has stopped, in order: the RPC server first (held
    /// requests are answered), then the consumer, then the relay (one last flush of
    /// the events of those requests), then the broker connection and the database.
    pub async fn stopped(mut self) {
        self.server.stopped().await;
        if let Some(consumer) = self.consumer.take() {
            consumer.stopped().await;
        }
        stop_relay(self.pruner.take()).await;
        stop_relay(self.relay.take()).await;
        close_bus(self.relay_bus.take()).await;
        close_bus(self.bus.take()).await;
        let _ = self.db.close().await;
        tracing::info!("{} stopped", self.process);
    }
}
