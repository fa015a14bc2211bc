//! [`Bus`]: the one broker connection of a process, shared by every role (RPC server,
//! event consumer, outbox publisher, RPC client) on a channel of its own, and kept alive.
//!
//! lapin gives each connection its own I/O thread, and every frame in or out crosses to
//! it; one connection per process keeps those threads few and lets each wake-up carry
//! the frames of every role at once. When the connection dies (a broker restart, a
//! forced close) the supervisor reconnects with backoff, and each role, whose channel
//! died with it, asks [`Bus::channel`] for a new one and declares its topology again.
//! Recovery is ours rather than lapin's auto-recovery so that it stays explicit: what a
//! dead channel held unacked is simply redelivered by the broker.

use crate::config::{Backoff, BusConfig};
use crate::error::BusError;
use crate::topology::Topology;
use futures::StreamExt;
use lapin::{Channel, Connection};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// Longest wait for the broker to open a channel.
const CHANNEL_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a live connection's status is looked at, besides its error events.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A cheap, clonable handle on the process's broker connection.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    config: BusConfig,
    /// As shown in the management UI (topology prefix first).
    name: String,
    link: watch::Sender<Option<Link>>,
    generation: AtomicU64,
    /// A role saw an error: look at the connection now rather than at the next tick.
    recheck: Notify,
    shutdown: CancellationToken,
    stopped: CancellationToken,
}

/// The live connection and which one it is.
#[derive(Clone)]
struct Link {
    connection: Arc<Connection>,
    generation: u64,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("name", &self.inner.name)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Bus {
    /// Returns at once and connects in the background, retrying with backoff until it
    /// succeeds (a process that starts before the broker).
    pub fn start(config: BusConfig, name: &str) -> Bus {
        let bus = Bus::new(config, name);
        tokio::spawn(supervise(bus.inner.clone(), None));
        bus
    }

    /// Connects now (an unreachable broker is an error), then keeps the connection
    /// alive in the background.
    pub async fn connect(config: BusConfig, name: &str) -> Result<Bus, BusError> {
        let bus = Bus::new(config, name);
        let first = crate::amqp::connect(&bus.inner.config.url, &bus.inner.name).await?;
        let first = bus.inner.install(first);
        tokio::spawn(supervise(bus.inner.clone(), Some(first)));
        Ok(bus)
    }

    fn new(config: BusConfig, name: &str) -> Bus {
        let (link, _) = watch::channel(None);
        Bus {
            inner: Arc::new(Inner {
                name: config.connection_name(name),
                config,
                link,
                generation: AtomicU64::new(0),
                recheck: Notify::new(),
                shutdown: CancellationToken::new(),
                stopped: CancellationToken::new(),
            }),
        }
    }

    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.config.topology
    }

    /// The connection's name in the management UI.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// True while a connection is up.
    pub fn is_connected(&self) -> bool {
        self.inner
            .link
            .borrow()
            .as_ref()
            .is_some_and(|l| l.connection.status().connected())
    }

    /// Waits until connected, at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.link.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|l| l.is_some()))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// A new channel on the live connection, waiting for one to be up. Fails only once
    /// the bus is closed.
    pub async fn channel(&self) -> Result<Channel, BusError> {
        let mut rx = self.inner.link.subscribe();
        loop {
            let link = rx.borrow_and_update().clone();
            if let Some(link) = link {
                match self.open_on(&link).await {
                    Ok(channel) => return Ok(channel),
                    Err(err) => {
                        tracing::debug!(connection = %self.inner.name, error = %err, "cannot open a channel; waiting for the connection");
                        self.connection_lost();
                    }
                }
            }
            // A connection that failed to open a channel but is not replaced yet is tried
            // again shortly.
            let linked = rx.borrow().is_some();
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return Err(BusError::Closed) },
                _ = tokio::time::sleep(Duration::from_millis(200)), if linked => {}
                _ = self.inner.shutdown.cancelled() => return Err(BusError::Closed),
            }
        }
    }

    /// A new channel now, or `NotConnected` (for callers that retry on their own
    /// schedule, like the outbox relay).
    pub async fn try_channel(&self) -> Result<Channel, BusError> {
        let link = self
            .inner
            .link
            .borrow()
            .clone()
            .ok_or(BusError::NotConnected)?;
        self.open_on(&link)
            .await
            .inspect_err(|_| self.connection_lost())
    }

    async fn open_on(&self, link: &Link) -> Result<Channel, BusError> {
        match tokio::time::timeout(CHANNEL_TIMEOUT, link.connection.create_channel()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(err)) => Err(BusError::amqp(err)),
            Err(_) => Err(BusError::Amqp(format!(
                "the broker opened no channel within {} s",
                CHANNEL_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Which connection is live (grows by one per reconnect); 0 while there is none.
    pub fn generation(&self) -> u64 {
        self.inner
            .link
            .borrow()
            .as_ref()
            .map_or(0, |l| l.generation)
    }

    /// Waits until a connection other than `generation` is live.
    pub async fn wait_for_other(&self, generation: u64) -> Result<(), BusError> {
        let mut rx = self.inner.link.subscribe();
        tokio::select! {
            r = rx.wait_for(|l| l.as_ref().is_some_and(|l| l.generation != generation)) => {
                r.map(|_| ()).map_err(|_| BusError::Closed)
            }
            _ = self.inner.shutdown.cancelled() => Err(BusError::Closed),
        }
    }

    /// Tells the supervisor that a role's channel failed: it looks at the connection now.
    pub fn connection_lost(&self) {
        self.inner.recheck.notify_one();
    }

    /// Closes the connection and stops reconnecting. Every channel closes with it.
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        let _ = tokio::time::timeout(
            crate::amqp::CLOSE_TIMEOUT * 2,
            self.inner.stopped.cancelled(),
        )
        .await;
    }
}

impl Inner {
    fn install(&self, connection: Connection) -> Link {
        let link = Link {
            connection: Arc::new(connection),
            generation: self.generation.fetch_add(1, Ordering::SeqCst) + 1,
        };
        self.link.send_replace(Some(link.clone()));
        link
    }
}

/// Keeps a connection up until the bus is closed.
async fn supervise(inner: Arc<Inner>, first: Option<Link>) {
    let mut backoff = Backoff::default();
    let mut next = first;
    'outer: loop {
        let link = match next.take() {
            Some(link) => link,
            None => {
                let attempt = tokio::select! {
                    r = crate::amqp::connect(&inner.config.url, &inner.name) => r,
                    _ = inner.shutdown.cancelled() => break 'outer,
                };
                match attempt {
                    Ok(connection) => {
                        tracing::info!(connection = %inner.name, "connected to the message broker");
                        inner.install(connection)
                    }
                    Err(err) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(connection = %inner.name, error = %err, retry_in_ms = delay.as_millis() as u64, "cannot connect to the message broker; will retry");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => continue,
                            _ = inner.shutdown.cancelled() => break 'outer,
                        }
                    }
                }
            }
        };
        backoff = Backoff::default();
        let connection = link.connection.clone();
        let mut events = connection.events_listener();
        loop {
            tokio::select! {
                event = events.next() => match event {
                    // lapin reports a channel the broker closed (a 404 probe) here too.
                    Some(lapin::Event::Error(err)) if !connection.status().connected() => {
                        tracing::warn!(connection = %inner.name, error = %err, "lost the message broker connection; reconnecting");
                        break;
                    }
                    Some(lapin::Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(connection = %inner.name, %reason, "the broker blocks publishing on this connection");
                    }
                    Some(lapin::Event::ConnectionUnblocked) => {
                        tracing::info!(connection = %inner.name, "the broker unblocked this connection");
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = inner.recheck.notified() => if !connection.status().connected() { break },
                _ = tokio::time::sleep(CHECK_EVERY) => if !connection.status().connected() {
                    tracing::warn!(connection = %inner.name, "the message broker connection is closed; reconnecting");
                    break;
                },
                _ = inner.shutdown.cancelled() => {
                    inner.link.send_replace(None);
                    crate::amqp::close(&connection).await;
                    break 'outer;
                }
            }
        }
        inner.link.send_replace(None);
        crate::amqp::close(&connection).await;
    }
    inner.stopped.cancel();
}

/// What a component is given to reach the broker: a shared [`Bus`], or settings for a
/// connection of its own (tests, tools), which it then closes when it stops.
pub enum UseBus {
    Shared(Bus),
    Own(BusConfig),
}

impl From<Bus> for UseBus {
    fn from(bus: Bus) -> Self {
        UseBus::Shared(bus)
    }
}

impl From<&Bus> for UseBus {
    fn from(bus: &Bus) -> Self {
        UseBus::Shared(bus.clone())
    }
}

impl From<BusConfig> for UseBus {
    fn from(config: BusConfig) -> Self {
        UseBus::Own(config)
    }
}

impl UseBus {
    /// The bus, and whether the component owns (and so closes) it. A connection of its
    /// own is named `name`.
    pub(crate) fn resolve(self, name: &str) -> (Bus, bool) {
        match self {
            UseBus::Shared(bus) => (bus, false),
            UseBus::Own(config) => (Bus::start(config, name), true),
        }
    }
}
