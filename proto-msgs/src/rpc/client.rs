//! [`RpcClient`]: one connection, one reply queue, a correlation-id → waiter map.
//!
//! - Every call has a deadline, sent as `expiration` (so an abandoned request dies in
//!   the queue) and as the `x-deadline` header (so a server that already prefetched it
//!   skips it). A call that times out removes its waiter and returns
//!   `deadline_exceeded`.
//! - Requests are published `mandatory`: when no queue is bound for the method the
//!   broker returns the message (`basic.return`) and the call fails with `unavailable`
//!   as soon as it comes back, instead of waiting for its deadline. No publisher
//!   confirms: a request is transient and its reply is the acknowledgement; confirms
//!   cost ~100 µs per call (see docs/BENCHMARKS.md). A durable `<service>.rpc` queue
//!   outlives its consumers, so the client also watches each queue it calls (a passive
//!   declare on a connection of its own, every 250 ms, and again before refusing a
//!   call): a call to a queue nobody consumes fails with `unavailable` at once too.
//! - When the connection dies, every waiting call fails with `unavailable` at once, new
//!   calls fail fast until a supervisor task has reconnected.

use crate::amqp::{ChannelEvents, ChannelHandle, Returned};
use crate::config::{Backoff, BusConfig};
use crate::context::RequestContext;
use crate::envelope::{Reply, RpcError};
use crate::error::BusError;
use crate::rpc::observe::{CallObserver, Outcome};
use crate::rpc::probe::Prober;
use amqprs::BasicProperties;
use amqprs::channel::{BasicConsumeArguments, BasicPublishArguments, ConsumerMessage};
use amqprs::connection::Connection;
use dashmap::DashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
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
    channel: ChannelHandle,
    reply_to: String,
    generation: u64,
}

/// What [`establish`] opens: the session, its replies and its returned requests.
type Opened = (
    Arc<Session>,
    mpsc::UnboundedReceiver<ConsumerMessage>,
    mpsc::UnboundedReceiver<Returned>,
);

/// How often watched queues are checked for consumers.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// What the last probe of a queue found.
#[derive(Debug, Clone, Copy)]
struct QueueWatch {
    consumers: u32,
    checked: Instant,
}

/// Which queues have consumers: shared by a client and its siblings, kept fresh by
/// one background task.
struct ConsumerWatch {
    /// `<service>.rpc` queue name → consumers seen by the last probe.
    queues: DashMap<String, QueueWatch>,
    /// One on-demand queue check at a time (see `check_consumers`).
    probing: tokio::sync::Mutex<()>,
    prober: Prober,
}

struct Inner {
    bus: BusConfig,
    config: RpcClientConfig,
    rpc_exchange: String,
    session: RwLock<Option<Arc<Session>>>,
    waiters: DashMap<String, Waiter>,
    watch: Arc<ConsumerWatch>,
    generation: AtomicU64,
    connected: watch::Sender<bool>,
    /// Cancelled by `close` (a sibling's is a child of its origin's).
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

    /// Another client with a connection of its own, whose I/O runs on the runtime this
    /// is called from (it connects in the background, like [`RpcClient::start`]). It
    /// shares this client's settings and its watch of which queues have consumers, and
    /// closes with it. One per thread of a thread-per-core server (each actix-web
    /// worker) keeps every request's bus I/O on the thread that handles it: a reply
    /// then never has to wake another thread.
    pub fn sibling(&self, connection_name: impl Into<String>) -> RpcClient {
        let mut config = self.inner.config.clone();
        config.connection_name = connection_name.into();
        let client = RpcClient {
            inner: Arc::new(Inner::new(
                self.inner.bus.clone(),
                config,
                self.inner.watch.clone(),
                self.inner.shutdown.child_token(),
            )),
        };
        tokio::spawn(supervise(client.inner.clone(), None));
        client
    }

    fn new(bus: BusConfig, config: RpcClientConfig) -> Self {
        let watch = Arc::new(ConsumerWatch {
            queues: DashMap::new(),
            probing: tokio::sync::Mutex::new(()),
            prober: Prober::new(bus.clone(), format!("{} probe", config.connection_name)),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(keep_watching(watch.clone(), shutdown.clone()));
        RpcClient {
            inner: Arc::new(Inner::new(bus, config, watch, shutdown)),
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
        crate::amqp::check_name("the method", method).map_err(RpcError::invalid_argument)?;
        // The queue is probed by name: a method with no dot names a queue longer than
        // itself, which amqprs would panic on.
        let queue = self.inner.queue_of(method);
        crate::amqp::check_name("the method's queue name", &queue)
            .map_err(RpcError::invalid_argument)?;
        let not_connected =
            || RpcError::unavailable("not connected to the message broker; try again shortly");
        if self.inner.current_session().is_none() {
            return Err(not_connected());
        }
        // Bounded by the call's deadline like everything else: a stalled broker must not
        // hold a call past it.
        match tokio::time::timeout(remaining, self.inner.check_consumers(method, queue)).await {
            Ok(checked) => checked?,
            Err(_) => return Err(deadline_exceeded(method)),
        }
        // Taken after the check, which may have taken a while: a connection lost meanwhile
        // must not be the one this call publishes on.
        let session = self.inner.current_session().ok_or_else(not_connected)?;
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
        // The supervisor takes a lost session away before it fails the waiters of its
        // generation: a waiter inserted after that must notice here, or it would wait
        // for a reply that can't come until its deadline.
        if self
            .inner
            .current_session()
            .is_none_or(|current| current.generation != session.generation)
        {
            return Err(not_connected());
        }

        let mut ctx = ctx.clone();
        ctx.deadline = Some(deadline);
        let props = request_properties(method, &correlation_id, &session.reply_to, remaining, &ctx);
        let exchange = self.inner.rpc_exchange.as_str();

        let exchange_and_wait = async {
            session
                .channel
                .basic_publish(
                    props,
                    body,
                    BasicPublishArguments::new(exchange, method)
                        .mandatory(true)
                        .finish(),
                )
                .await
                .map_err(|e| RpcError::unavailable(format!("cannot publish the request: {e}")))?;
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
            crate::amqp::close(session.connection.clone()).await;
        }
        self.inner.watch.prober.close().await;
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
        .with_content_type("application/json")
        .with_delivery_mode(amqprs::DELIVERY_MODE_TRANSIENT)
        .with_correlation_id(correlation_id)
        .with_reply_to(reply_to)
        .with_message_id(&uuid::Uuid::new_v4().to_string())
        .with_expiration(&expiration_ms.to_string())
        .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
        .with_message_type(method)
        .with_headers(ctx.to_headers())
        .finish()
}

impl Inner {
    fn new(
        bus: BusConfig,
        config: RpcClientConfig,
        watch: Arc<ConsumerWatch>,
        shutdown: CancellationToken,
    ) -> Inner {
        let (connected, _) = watch::channel(false);
        Inner {
            rpc_exchange: bus.topology.rpc_exchange(),
            bus,
            config,
            session: RwLock::new(None),
            waiters: DashMap::new(),
            watch,
            generation: AtomicU64::new(0),
            connected,
            shutdown,
        }
    }

    /// `<service>.rpc` for `<service>.<method>`.
    fn queue_of(&self, method: &str) -> String {
        let service = method.split('.').next().unwrap_or(method);
        self.bus.topology.rpc_queue(service)
    }

    /// Fails at once when the method's queue has no consumer. A queue last seen with
    /// consumers costs nothing; otherwise (first call, or nobody last time) the queue is
    /// looked at now, one passive declare at a time: calls that arrive meanwhile share
    /// its answer, so a service that just came back is seen by the very next call.
    async fn check_consumers(&self, method: &str, queue: String) -> Result<(), RpcError> {
        let watched = &self.watch;
        if watched.queues.get(&queue).is_some_and(|w| w.consumers > 0) {
            return Ok(());
        }
        let asked = Instant::now();
        let _one_probe_at_a_time = watched.probing.lock().await;
        let watch = match watched.queues.get(&queue).map(|w| *w) {
            Some(watch) if watch.checked >= asked => watch,
            _ => {
                let watch = QueueWatch {
                    consumers: watched.prober.consumers(&queue).await.unwrap_or(u32::MAX),
                    checked: Instant::now(),
                };
                watched.queues.insert(queue.clone(), watch);
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

/// Opens a connection, the `rpc` exchange, the publishing channel and the reply consumer.
async fn establish(inner: &Inner) -> Result<Opened, BusError> {
    let connection = inner.bus.connect(&inner.config.connection_name).await?;
    let mut events = ChannelEvents::new();
    let returns = events.returns();
    let channel = events.open(&connection).await?;
    inner.bus.topology.declare_rpc_exchange(&channel).await?;
    let reply_to = match inner.config.reply_mode {
        ReplyMode::DirectReplyTo => DIRECT_REPLY_TO.to_owned(),
        ReplyMode::ExclusiveQueue => channel.declare_private_queue("the reply queue").await?,
    };
    // Direct reply-to must be consumed (no-ack) on the publishing channel before the
    // first publish; we do the same for the exclusive queue, it costs nothing.
    let (_, replies) = channel
        .basic_consume_rx(
            BasicConsumeArguments::new(&reply_to, "")
                .auto_ack(true)
                .finish(),
        )
        .await
        .map_err(|e| BusError::Amqp(channel.explain(e)))?;
    let generation = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
    Ok((
        Arc::new(Session {
            connection,
            channel,
            reply_to,
            generation,
        }),
        replies,
        returns,
    ))
}

/// Fails the caller of a request the broker returned as unroutable (`mandatory`).
fn fail_returned(inner: &Inner, returned: Returned) {
    let Some(id) = returned.properties.correlation_id() else {
        return;
    };
    if let Some((_, waiter)) = inner.waiters.remove(id.as_str()) {
        let method = returned.routing_key;
        let _ = waiter.tx.send(Err(RpcError::unavailable(format!(
            "no service is consuming {method:?} (nothing is bound to receive it)"
        ))));
    }
}

/// Re-checks every watched queue until `shutdown`.
async fn keep_watching(watch: Arc<ConsumerWatch>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
        let queues: Vec<String> = watch.queues.iter().map(|e| e.key().clone()).collect();
        for queue in queues {
            if let Some(consumers) = watch.prober.consumers(&queue).await {
                watch.queues.insert(
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

/// Keeps a session alive: routes replies and returned requests, and on loss fails
/// waiters and reconnects.
async fn supervise(inner: Arc<Inner>, first: Option<Opened>) {
    let mut backoff = Backoff::default();
    let mut next = first;
    loop {
        let (session, mut replies, mut returns) = match next.take() {
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

        loop {
            tokio::select! {
                reply = replies.recv() => match reply {
                    Some(message) => {
                        if let Some(id) = message
                            .basic_properties
                            .as_ref()
                            .and_then(|p| p.correlation_id())
                        {
                            inner.route_reply(id, message.content.unwrap_or_default());
                        }
                    }
                    None => {
                        tracing::warn!("rpc client lost its connection");
                        break;
                    }
                },
                Some(returned) = returns.recv() => fail_returned(&inner, returned),
                _ = inner.shutdown.cancelled() => {
                    inner.connected.send_replace(false);
                    inner.fail_waiters(u64::MAX);
                    if let Some(session) = inner.take_session() {
                        crate::amqp::close(session.connection.clone()).await;
                    }
                    return;
                }
            }
        }
        inner.connected.send_replace(false);
        if let Some(old) = inner.take_session() {
            crate::amqp::close(old.connection.clone()).await;
        }
        inner.fail_waiters(generation);
    }
}
