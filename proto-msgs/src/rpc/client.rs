//! [`RpcClient`]: one connection, one reply queue, a correlation-id → waiter map.
//!
//! - Every call has a deadline, sent as `expiration` (so an abandoned request dies in
//!   the queue) and as the `x-deadline` header (so a server that already prefetched it
//!   skips it). A call that times out removes its waiter and returns
//!   `deadline_exceeded`.
//! - Requests are published `mandatory`: when no queue is bound for the method the
//!   broker returns the message (`basic.return`) and the call fails with `unavailable`
//!   within 50 ms instead of waiting for its deadline. No publisher confirms: a request
//!   is transient and its reply is the acknowledgement; confirms cost ~100 µs per call
//!   (see docs/BENCHMARKS.md). A durable `<service>.rpc` queue
//!   outlives its consumers, so the client also watches each queue it calls (a passive
//!   declare on a side channel, every 250 ms, and again before refusing a call): a
//!   call to a queue nobody consumes fails with `unavailable` at once too.
//! - When the connection dies, every waiting call fails with `unavailable` at once, new
//!   calls fail fast until a supervisor task has reconnected.

use crate::config::{Backoff, BusConfig};
use crate::context::RequestContext;
use crate::envelope::{Reply, RpcError};
use crate::error::BusError;
use crate::rpc::observe::{CallObserver, Outcome};
use dashmap::DashMap;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

/// RabbitMQ's pseudo-queue for direct reply-to
/// (<https://www.rabbitmq.com/docs/direct-reply-to>).
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Where replies come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    /// One exclusive, server-named queue per client connection. RabbitMQ advises this
    /// for long-lived, high-rate requesters, and `make bench-rpc` measured it ahead of
    /// direct reply-to on this broker (see docs/BENCHMARKS.md).
    #[default]
    ExclusiveQueue,
    /// `amq.rabbitmq.reply-to`: no queue at all, replies pushed on the channel.
    DirectReplyTo,
}

/// Settings of an [`RpcClient`].
#[derive(Clone)]
pub struct RpcClientConfig {
    /// Deadline of a call whose context carries none.
    pub default_timeout: Duration,
    pub reply_mode: ReplyMode,
    /// Connection name shown in the management UI.
    pub connection_name: String,
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl Default for RpcClientConfig {
    fn default() -> Self {
        RpcClientConfig {
            default_timeout: Duration::from_secs(5),
            reply_mode: ReplyMode::default(),
            connection_name: "rpc-client".to_owned(),
            observer: None,
        }
    }
}

impl std::fmt::Debug for RpcClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClientConfig")
            .field("default_timeout", &self.default_timeout)
            .field("reply_mode", &self.reply_mode)
            .field("connection_name", &self.connection_name)
            .finish_non_exhaustive()
    }
}

type ReplyResult = Result<Vec<u8>, RpcError>;

struct Waiter {
    tx: oneshot::Sender<ReplyResult>,
    generation: u64,
}

/// One live connection with its reply queue.
struct Session {
    connection: Connection,
    channel: Channel,
    reply_to: String,
    generation: u64,
    /// Side channel for passive declares: a 404 closes it, never the publishing one.
    probe: tokio::sync::Mutex<Option<Channel>>,
}

/// How often returned (unroutable) requests are collected and their callers failed.
const RETURNS_INTERVAL: Duration = Duration::from_millis(50);

/// Longest wait for one passive declare.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often watched queues are checked for consumers.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// What the last probe of a queue found.
#[derive(Debug, Clone, Copy)]
struct QueueWatch {
    consumers: u32,
    checked: Instant,
}

struct Inner {
    bus: BusConfig,
    config: RpcClientConfig,
    rpc_exchange: String,
    session: RwLock<Option<Arc<Session>>>,
    waiters: DashMap<String, Waiter>,
    /// `<service>.rpc` queue name → consumers seen by the last probe.
    queues: DashMap<String, QueueWatch>,
    /// One on-demand queue check at a time (see `check_consumers`).
    probing: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    connected: watch::Sender<bool>,
    shutdown: CancellationToken,
}

/// A typed request/reply client, cheap to clone, usable from thousands of tasks.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("connected", &self.is_connected())
            .field("waiting", &self.inner.waiters.len())
            .finish()
    }
}

impl RpcClient {
    /// Connects now (an unreachable broker is an error), then keeps the connection
    /// alive in the background.
    pub async fn connect(bus: BusConfig, config: RpcClientConfig) -> Result<Self, BusError> {
        let client = Self::new(bus, config);
        let first = establish(&client.inner).await?;
        // Installed before returning, so the first call can't race the supervisor.
        client.inner.install(first.0.clone());
        tokio::spawn(supervise(client.inner.clone(), Some(first)));
        Ok(client)
    }

    /// Returns at once and connects in the background, retrying until it succeeds;
    /// calls fail with `unavailable` until then (a gateway that starts before the
    /// broker).
    pub fn start(bus: BusConfig, config: RpcClientConfig) -> Self {
        let client = Self::new(bus, config);
        tokio::spawn(supervise(client.inner.clone(), None));
        client
    }

    fn new(bus: BusConfig, config: RpcClientConfig) -> Self {
        let (connected, _) = watch::channel(false);
        RpcClient {
            inner: Arc::new(Inner {
                rpc_exchange: bus.topology.rpc_exchange(),
                bus,
                config,
                session: RwLock::new(None),
                waiters: DashMap::new(),
                queues: DashMap::new(),
                probing: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
                connected,
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// True while the client holds a working connection.
    pub fn is_connected(&self) -> bool {
        *self.inner.connected.borrow()
    }

    /// Waits until connected, at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.connected.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Number of calls waiting for a reply (for metrics and leak checks).
    pub fn pending(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Calls `method` with `req` and decodes the `data` of the reply into `Resp`.
    pub async fn call<Req, Resp>(
        &self,
        method: &str,
        req: &Req,
        ctx: &RequestContext,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = serde_json::to_vec(req)
            .map_err(|e| RpcError::internal(format!("cannot encode request: {e}")))?;
        let reply = self.call_raw(method, body, ctx).await?;
        decode_reply(&reply)
    }

    /// Calls `method` with an already encoded body and returns the raw reply body
    /// (`{"data": …}` or `{"error": …}`); only transport failures are `Err`.
    pub async fn call_raw(
        &self,
        method: &str,
        body: Vec<u8>,
        ctx: &RequestContext,
    ) -> Result<Vec<u8>, RpcError> {
        let started = Instant::now();
        let result = self.call_inner(method, body, ctx).await;
        if let Some(observer) = &self.inner.config.observer {
            let outcome = match &result {
                Ok(body) => reply_outcome(body),
                Err(e) => Outcome::Error(e.code),
            };
            observer.call_finished(method, outcome, started.elapsed());
        }
        result
    }

    async fn call_inner(
        &self,
        method: &str,
        body: Vec<u8>,
        ctx: &RequestContext,
    ) -> Result<Vec<u8>, RpcError> {
        let deadline = ctx
            .deadline
            .unwrap_or_else(|| SystemTime::now() + self.inner.config.default_timeout);
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        if remaining.is_zero() {
            return Err(deadline_exceeded(method));
        }
        let session = self.inner.current_session().ok_or_else(|| {
            RpcError::unavailable("not connected to the message broker; try again shortly")
        })?;
        // Bounded by the call's deadline like everything else: a stalled broker must not
        // hold a call past it.
        match tokio::time::timeout(remaining, self.inner.check_consumers(&session, method)).await {
            Ok(checked) => checked?,
            Err(_) => return Err(deadline_exceeded(method)),
        }
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);

        let correlation_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.inner.waiters.insert(
            correlation_id.clone(),
            Waiter {
                tx,
                generation: session.generation,
            },
        );
        // Removes the waiter however this call ends (reply, timeout, error, cancel).
        let _guard = WaiterGuard {
            waiters: &self.inner.waiters,
            key: &correlation_id,
        };

        let mut ctx = ctx.clone();
        ctx.deadline = Some(deadline);
        let props = request_properties(method, &correlation_id, &session.reply_to, remaining, &ctx);
        let exchange = self.inner.rpc_exchange.as_str();

        let exchange_and_wait = async {
            let confirm = session
                .channel
                .basic_publish(
                    exchange.into(),
                    method.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &body,
                    props,
                )
                .await
                .map_err(|e| RpcError::unavailable(format!("cannot publish the request: {e}")))?;
            // Resolved at once (no confirm mode); awaited so lapin keeps nothing.
            let _ = confirm.await;
            match rx.await {
                Ok(reply) => reply,
                Err(_) => Err(RpcError::unavailable(
                    "the connection to the message broker was lost before the reply arrived",
                )),
            }
        };
        match tokio::time::timeout(remaining, exchange_and_wait).await {
            Ok(result) => result,
            Err(_) => Err(deadline_exceeded(method)),
        }
    }

    /// Stops the background supervisor and closes the connection.
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        let session = self.inner.take_session();
        if let Some(session) = session {
            let _ = session.connection.close(200, "client closed".into()).await;
        }
    }
}

fn deadline_exceeded(method: &str) -> RpcError {
    RpcError::deadline_exceeded(format!("no reply to {method:?} before the deadline"))
}

/// Decodes `{"data": …}` into `Resp`, `{"error": …}` into `Err`.
pub fn decode_reply<Resp: DeserializeOwned>(body: &[u8]) -> Result<Resp, RpcError> {
    serde_json::from_slice::<Reply<Resp>>(body)
        .map_err(|e| RpcError::internal(format!("the service sent a reply we cannot read: {e}")))?
        .into_result()
}

/// `ok` unless the body is an error reply; only looks as far as it must.
fn reply_outcome(body: &[u8]) -> Outcome {
    #[derive(serde::Deserialize)]
    struct Code {
        code: crate::ErrorCode,
    }
    #[derive(serde::Deserialize)]
    struct ErrorOnly {
        error: Option<Code>,
    }
    if body.starts_with(br#"{"data""#) {
        return Outcome::Ok;
    }
    match serde_json::from_slice::<ErrorOnly>(body) {
        Ok(ErrorOnly { error: Some(c) }) => Outcome::Error(c.code),
        _ => Outcome::Ok,
    }
}

struct WaiterGuard<'a> {
    waiters: &'a DashMap<String, Waiter>,
    key: &'a str,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.waiters.remove(self.key);
    }
}

fn request_properties(
    method: &str,
    correlation_id: &str,
    reply_to: &str,
    remaining: Duration,
    ctx: &RequestContext,
) -> BasicProperties {
    // At least 1 ms: an expiration of 0 means "deliver now or drop".
    let expiration_ms = remaining.as_millis().max(1);
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(1)
        .with_correlation_id(correlation_id.into())
        .with_reply_to(reply_to.into())
        .with_message_id(uuid::Uuid::new_v4().to_string().into())
        .with_expiration(expiration_ms.to_string().into())
        .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
        .with_type(method.into())
        .with_headers(ctx.to_headers())
}

impl Inner {
    /// `<service>.rpc` for `<service>.<method>`.
    fn queue_of(&self, method: &str) -> String {
        let service = method.split('.').next().unwrap_or(method);
        self.bus.topology.rpc_queue(service)
    }

    /// Fails at once when the method's queue has no consumer. A queue last seen with
    /// consumers costs nothing; otherwise (first call, or nobody last time) the queue is
    /// looked at now, one passive declare at a time: calls that arrive meanwhile share
    /// its answer, so a service that just came back is seen by the very next call.
    async fn check_consumers(&self, session: &Session, method: &str) -> Result<(), RpcError> {
        let queue = self.queue_of(method);
        if self.queues.get(&queue).is_some_and(|w| w.consumers > 0) {
            return Ok(());
        }
        let asked = Instant::now();
        let _one_probe_at_a_time = self.probing.lock().await;
        let watch = match self.queues.get(&queue).map(|w| *w) {
            Some(watch) if watch.checked >= asked => watch,
            _ => {
                let watch = QueueWatch {
                    consumers: probe(session, &queue).await.unwrap_or(u32::MAX),
                    checked: Instant::now(),
                };
                self.queues.insert(queue.clone(), watch);
                watch
            }
        };
        if watch.consumers == 0 {
            let service = method.split('.').next().unwrap_or(method);
            return Err(RpcError::unavailable(format!(
                "no instance of the {service} service is running (nothing consumes {queue})"
            )));
        }
        Ok(())
    }

    fn current_session(&self) -> Option<Arc<Session>> {
        self.session.read().ok().and_then(|s| s.clone())
    }

    fn take_session(&self) -> Option<Arc<Session>> {
        self.session.write().ok().and_then(|mut s| s.take())
    }

    fn install(&self, session: Arc<Session>) {
        if let Ok(mut slot) = self.session.write() {
            *slot = Some(session);
        }
        self.connected.send_replace(true);
    }

    /// Fails every call waiting on a dead session's reply queue.
    fn fail_waiters(&self, generation: u64) {
        let dead: Vec<String> = self
            .waiters
            .iter()
            .filter(|w| w.generation <= generation)
            .map(|w| w.key().clone())
            .collect();
        for key in dead {
            if let Some((_, waiter)) = self.waiters.remove(&key) {
                let _ = waiter.tx.send(Err(RpcError::unavailable(
                    "the connection to the message broker was lost before the reply arrived",
                )));
            }
        }
    }

    fn route_reply(&self, correlation_id: &str, body: Vec<u8>) {
        match self.waiters.remove(correlation_id) {
            Some((_, waiter)) => {
                let _ = waiter.tx.send(Ok(body));
            }
            None => {
                tracing::debug!(correlation_id, "reply for a call that is no longer waiting")
            }
        }
    }
}

/// Opens a connection, the exchanges, a confirm channel and the reply consumer.
async fn establish(inner: &Inner) -> Result<(Arc<Session>, Consumer), BusError> {
    let connection = inner.bus.connect(&inner.config.connection_name).await?;
    let channel = connection.create_channel().await?;
    inner.bus.topology.declare_rpc_exchange(&channel).await?;
    let reply_to = match inner.config.reply_mode {
        ReplyMode::DirectReplyTo => DIRECT_REPLY_TO.to_owned(),
        ReplyMode::ExclusiveQueue => channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?
            .name()
            .as_str()
            .to_owned(),
    };
    // Direct reply-to must be consumed (no-ack) on the publishing channel before the
    // first publish; we do the same for the exclusive queue, it costs nothing.
    let consumer = channel
        .basic_consume(
            reply_to.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let generation = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
    Ok((
        Arc::new(Session {
            connection,
            channel,
            reply_to,
            generation,
            probe: tokio::sync::Mutex::new(None),
        }),
        consumer,
    ))
}

/// Consumers of `queue`: `Some(0)` when the queue does not exist, `None` when the
/// probe itself failed (unknown: the call goes ahead).
async fn probe(session: &Session, queue: &str) -> Option<u32> {
    let mut slot = session.probe.lock().await;
    let channel = match slot.as_ref() {
        Some(ch) if ch.status().connected() => ch.clone(),
        _ => {
            let ch = session.connection.create_channel().await.ok()?;
            *slot = Some(ch.clone());
            ch
        }
    };
    let declared = tokio::time::timeout(
        PROBE_TIMEOUT,
        channel.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await;
    let Ok(declared) = declared else {
        tracing::warn!(%queue, "checking the queue for consumers timed out; calls to it go ahead");
        // That channel is mid-request: close it and use a fresh one next time.
        if let Some(stale) = slot.take() {
            tokio::spawn(async move {
                let _ = stale.close(200, "probe timed out".into()).await;
            });
        }
        return None;
    };
    match declared {
        Ok(q) => Some(q.consumer_count()),
        Err(err) => {
            // The broker closes the channel after a failed passive declare.
            *slot = None;
            match err.kind() {
                lapin::ErrorKind::ProtocolError(e)
                    if e.get_id() == lapin::protocol::AMQPSoftError::NOTFOUND.get_id() =>
                {
                    Some(0)
                }
                _ => {
                    tracing::warn!(%queue, error = %err, "cannot check the queue for consumers; calls to it go ahead");
                    None
                }
            }
        }
    }
}

/// Fails the callers of requests the broker returned as unroutable (`mandatory`), while
/// `session` is the live one. lapin keeps returned messages of a channel without
/// confirms until they are drained, so draining also keeps memory bounded.
async fn returns(inner: Arc<Inner>, session: Arc<Session>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RETURNS_INTERVAL) => {}
            _ = inner.shutdown.cancelled() => return,
        }
        if inner.current_session().map(|s| s.generation) != Some(session.generation) {
            return;
        }
        let Ok(returned) = session.channel.wait_for_confirms().await else {
            continue;
        };
        for message in returned {
            let props = &message.delivery.properties;
            let method = props
                .kind()
                .as_ref()
                .map(|k| k.as_str().to_owned())
                .unwrap_or_default();
            let Some(id) = props.correlation_id() else {
                continue;
            };
            if let Some((_, waiter)) = inner.waiters.remove(id.as_str()) {
                let _ = waiter.tx.send(Err(RpcError::unavailable(format!(
                    "no service is consuming {method:?} (nothing is bound to receive it)"
                ))));
            }
        }
    }
}

/// Re-checks every watched queue while `session` is the live one.
async fn prober(inner: Arc<Inner>, session: Arc<Session>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
            _ = inner.shutdown.cancelled() => return,
        }
        if inner.current_session().map(|s| s.generation) != Some(session.generation) {
            return;
        }
        let queues: Vec<String> = inner.queues.iter().map(|e| e.key().clone()).collect();
        for queue in queues {
            if let Some(consumers) = probe(&session, &queue).await {
                inner.queues.insert(
                    queue,
                    QueueWatch {
                        consumers,
                        checked: Instant::now(),
                    },
                );
            }
        }
    }
}

/// Keeps a session alive: routes replies, and on loss fails waiters and reconnects.
async fn supervise(inner: Arc<Inner>, first: Option<(Arc<Session>, Consumer)>) {
    let mut backoff = Backoff::default();
    let mut next = first;
    loop {
        let (session, mut consumer) = match next.take() {
            Some(opened) => opened,
            None => {
                let attempt = tokio::select! {
                    r = establish(&inner) => r,
                    _ = inner.shutdown.cancelled() => return,
                };
                match attempt {
                    Ok(opened) => {
                        tracing::info!(connection = %inner.config.connection_name, "rpc client connected");
                        opened
                    }
                    Err(err) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "rpc client cannot connect; will retry");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => continue,
                            _ = inner.shutdown.cancelled() => return,
                        }
                    }
                }
            }
        };
        backoff = Backoff::default();
        let generation = session.generation;
        inner.install(session.clone());
        tokio::spawn(returns(inner.clone(), session.clone()));
        tokio::spawn(prober(inner.clone(), session));

        loop {
            let next_reply = tokio::select! {
                n = consumer.next() => n,
                _ = inner.shutdown.cancelled() => {
                    inner.connected.send_replace(false);
                    inner.fail_waiters(u64::MAX);
                    return;
                }
            };
            match next_reply {
                Some(Ok(delivery)) => {
                    if let Some(id) = delivery.properties.correlation_id() {
                        inner.route_reply(id.as_str(), delivery.data);
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "rpc client lost its connection");
                    break;
                }
                None => {
                    tracing::warn!("rpc client reply consumer ended");
                    break;
                }
            }
        }
        inner.connected.send_replace(false);
        if let Some(old) = inner.take_session() {
            let _ = old.connection.close(200, "reconnecting".into()).await;
        }
        inner.fail_waiters(generation);
    }
}
