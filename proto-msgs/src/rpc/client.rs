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
//!   cost ~100 µs per call (see docs/BENCHMARKS.md). lapin keeps a returned message of a
//!   channel without confirms until it is drained: the client drains them every 50 ms
//!   and fails their callers. A durable `<service>.rpc` queue outlives its consumers, so
//!   the client also watches each queue it calls (a passive declare on a channel of its
//!   own, every 250 ms, and again before refusing a call): a call to a queue nobody
//!   consumes fails with `unavailable` at once too.
//! - Requests are published without waiting for lapin to write them (each wait would be
//!   a hand-off back from lapin's I/O thread); the reply is what is waited for.
//! - When the channel or its connection dies, every waiting call fails with `unavailable`
//!   at once, new calls fail fast until the client has a channel again.

use crate::config::Backoff;
use crate::connection::{Bus, UseBus};
use crate::context::RequestContext;
use crate::envelope::{Reply, RpcError};
use crate::error::BusError;
use crate::rpc::observe::{CallObserver, Outcome};
use crate::rpc::probe::Prober;
use dashmap::DashMap;
use futures::{FutureExt, StreamExt};
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Consumer};
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

/// Which broker account answers for each service, for a client that only takes a reply
/// from the service the method belongs to (`users=user-svc,orders=order-svc`). Reply
/// queues take writes from anyone allowed to publish to the default exchange; the AMQP
/// `user_id` of a reply is checked by the broker, so it tells who really answered.
/// Empty: every service shares one account (a developer machine), nothing is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repliers(std::collections::HashMap<String, String>);

impl Repliers {
    /// From `service=account` pairs separated by commas.
    pub fn parse(list: &str) -> Result<Repliers, String> {
        let mut map = std::collections::HashMap::new();
        for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((service, account)) = pair.split_once('=') else {
                return Err(format!(
                    "{pair:?} is not service=account (e.g. users=user-svc)"
                ));
            };
            let (service, account) = (service.trim(), account.trim());
            if service.is_empty() || account.is_empty() {
                return Err(format!("{pair:?} names no service or no account"));
            }
            map.insert(service.to_owned(), account.to_owned());
        }
        Ok(Repliers(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The account that must have sent a reply to `method`, if one is configured.
    fn of(&self, method: &str) -> Option<Arc<str>> {
        let service = crate::topology::service_of(method.split('.').next().unwrap_or(method));
        self.0.get(service).map(|a| Arc::from(a.as_str()))
    }
}

/// Settings of an [`RpcClient`].
#[derive(Clone)]
pub struct RpcClientConfig {
    /// Deadline of a call whose context carries none.
    pub default_timeout: Duration,
    pub reply_mode: ReplyMode,
    /// Whose replies to take, per service (default: anyone's).
    pub repliers: Repliers,
    /// Name of the client's connection in the management UI, when it has one of its own.
    pub connection_name: String,
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl Default for RpcClientConfig {
    fn default() -> Self {
        RpcClientConfig {
            default_timeout: Duration::from_secs(5),
            reply_mode: ReplyMode::default(),
            repliers: Repliers::default(),
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

type ReplyResult = Result<RawReply, RpcError>;

/// A reply as it arrived: the body (`{"data": …}` or `{"error": …}`) and whether the
/// service answered with the stored reply of an earlier delivery of the same request
/// (header `x-idempotent-replayed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    pub body: Vec<u8>,
    pub replayed: bool,
}

struct Waiter {
    tx: oneshot::Sender<ReplyResult>,
    generation: u64,
    /// The method, for logs and metrics when a reply is refused.
    method: Arc<str>,
    /// The account whose reply is taken; `None`: anyone's.
    replier: Option<Arc<str>>,
}

/// One live channel with its reply queue.
struct Session {
    channel: Channel,
    reply_to: String,
    generation: u64,
}

/// What [`establish`] opens: the session and its replies.
type Opened = (Arc<Session>, Consumer);

/// How often returned (unroutable) requests are collected and their callers failed.
const RETURNS_INTERVAL: Duration = Duration::from_millis(50);

/// Longest wait for the first session of [`RpcClient::connect`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often watched queues are checked for consumers.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// What the last probe of a queue found.
#[derive(Debug, Clone, Copy)]
struct QueueWatch {
    consumers: u32,
    checked: Instant,
}

/// Which queues have consumers, kept fresh by one background task.
struct ConsumerWatch {
    /// `<service>.rpc` queue name → consumers seen by the last probe.
    queues: DashMap<String, QueueWatch>,
    /// One on-demand queue check at a time (see `check_consumers`).
    probing: tokio::sync::Mutex<()>,
    prober: Prober,
}

struct Inner {
    bus: Bus,
    /// Our broker account: the `user_id` of every request.
    account: String,
    /// Closed with the client (a connection of the client's own).
    owns_bus: bool,
    config: RpcClientConfig,
    rpc_exchange: String,
    session: RwLock<Option<Arc<Session>>>,
    waiters: DashMap<String, Waiter>,
    watch: ConsumerWatch,
    generation: AtomicU64,
    connected: watch::Sender<bool>,
    /// Cancelled by `close`.
    shutdown: CancellationToken,
    /// Cancelled once the supervisor has let go of its session.
    stopped: CancellationToken,
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
    /// Connects now (an unreachable broker is an error), then keeps its channel alive
    /// in the background. `bus` is a shared [`Bus`], or a `BusConfig` for a connection
    /// of the client's own.
    pub async fn connect(
        bus: impl Into<UseBus>,
        config: RpcClientConfig,
    ) -> Result<Self, BusError> {
        let (bus, owns_bus) = match bus.into() {
            UseBus::Shared(bus) => (bus, false),
            UseBus::Own(cfg) => (Bus::connect(cfg, &config.connection_name).await?, true),
        };
        let client = Self::new(bus, owns_bus, config);
        let first = match tokio::time::timeout(CONNECT_TIMEOUT, establish(&client.inner)).await {
            Ok(Ok(first)) => first,
            Ok(Err(err)) => {
                client.close().await;
                return Err(err);
            }
            Err(_) => {
                client.close().await;
                return Err(BusError::NotConnected);
            }
        };
        // Installed before returning, so the first call can't race the supervisor.
        client.inner.install(first.0.clone());
        tokio::spawn(supervise(client.inner.clone(), Some(first)));
        Ok(client)
    }

    /// Returns at once and connects in the background, retrying until it succeeds;
    /// calls fail with `unavailable` until then (a gateway that starts before the
    /// broker).
    pub fn start(bus: impl Into<UseBus>, config: RpcClientConfig) -> Self {
        let (bus, owns_bus) = bus.into().resolve(&config.connection_name);
        let client = Self::new(bus, owns_bus, config);
        tokio::spawn(supervise(client.inner.clone(), None));
        client
    }

    fn new(bus: Bus, owns_bus: bool, config: RpcClientConfig) -> Self {
        let (connected, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            rpc_exchange: bus.topology().rpc_exchange(),
            account: bus.config().account(),
            watch: ConsumerWatch {
                queues: DashMap::new(),
                probing: tokio::sync::Mutex::new(()),
                prober: Prober::new(bus.clone()),
            },
            bus,
            owns_bus,
            config,
            session: RwLock::new(None),
            waiters: DashMap::new(),
            generation: AtomicU64::new(0),
            connected,
            shutdown: CancellationToken::new(),
            stopped: CancellationToken::new(),
        });
        tokio::spawn(keep_watching(inner.clone()));
        RpcClient { inner }
    }

    /// The bus the client calls over.
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
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
        self.call_reply(method, body, ctx).await.map(|r| r.body)
    }

    /// [`RpcClient::call_raw`], also telling whether the reply was a replayed one.
    pub async fn call_reply(
        &self,
        method: &str,
        body: Vec<u8>,
        ctx: &RequestContext,
    ) -> Result<RawReply, RpcError> {
        let started = Instant::now();
        let result = self.call_inner(method, body, ctx).await;
        if let Some(observer) = &self.inner.config.observer {
            let outcome = match &result {
                Ok(reply) => reply_outcome(&reply.body),
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
    ) -> Result<RawReply, RpcError> {
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
        // itself, which the wire can't carry.
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
                method: Arc::from(method),
                replier: self.inner.config.repliers.of(method),
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
        let props = request_properties(method, &correlation_id, &session.reply_to, remaining, &ctx)
            .with_user_id(self.inner.account.as_str().into());
        let exchange = self.inner.rpc_exchange.as_str();

        let exchange_and_wait = async {
            // Queued for lapin's I/O thread, not waited for: the reply is.
            let published = session
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
                .now_or_never();
            if let Some(Err(e)) = published {
                self.inner.bus.connection_lost();
                return Err(RpcError::unavailable(format!(
                    "cannot publish the request: {e}"
                )));
            }
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

    /// Stops the background supervisor and closes the client's channels (and its
    /// connection, when it has one of its own).
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.inner.stopped.cancelled()).await;
        self.inner.watch.prober.close().await;
        if self.inner.owns_bus {
            self.inner.bus.close().await;
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

/// AMQP delivery mode of a message the broker keeps in memory only.
const TRANSIENT: u8 = 1;

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
        .with_delivery_mode(TRANSIENT)
        .with_correlation_id(correlation_id.into())
        .with_reply_to(reply_to.into())
        .with_message_id(uuid::Uuid::new_v4().to_string().into())
        .with_expiration(expiration_ms.to_string().into())
        .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
        .with_type(method.into())
        .with_headers(ctx.to_headers())
}

impl Inner {
    /// `<service>.rpc` for `<service>.<method>` (or a namespace the service answers).
    fn queue_of(&self, method: &str) -> String {
        let service = crate::topology::service_of(method.split('.').next().unwrap_or(method));
        self.bus.topology().rpc_queue(service)
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

    /// Hands a reply to its caller, if it came from the account that owns the method.
    /// One that did not is dropped (the caller keeps waiting for the real one).
    fn route_reply(&self, correlation_id: &str, from: Option<&str>, reply: RawReply) {
        let rejected = self.waiters.get(correlation_id).and_then(|w| {
            let expected = w.replier.as_deref()?;
            (from != Some(expected)).then(|| (w.method.clone(), expected.to_owned()))
        });
        if let Some((method, expected)) = rejected {
            let from = from.unwrap_or("(none)");
            tracing::warn!(%method, %from, %expected, "a reply from an account that does not answer for this method: dropped");
            if let Some(observer) = &self.config.observer {
                observer.reply_rejected(&method);
            }
            return;
        }
        match self.waiters.remove(correlation_id) {
            Some((_, waiter)) => {
                let _ = waiter.tx.send(Ok(reply));
            }
            None => {
                tracing::debug!(correlation_id, "reply for a call that is no longer waiting")
            }
        }
    }
}

/// Opens the publishing channel, the `rpc` exchange and the reply consumer.
async fn establish(inner: &Inner) -> Result<Opened, BusError> {
    let channel = inner.bus.channel().await?;
    let opened = open_session(inner, &channel).await;
    if opened.is_err() {
        crate::amqp::close_channel(&channel).await;
    }
    opened
}

async fn open_session(inner: &Inner, channel: &Channel) -> Result<Opened, BusError> {
    inner.bus.topology().ensure_rpc_exchange(&inner.bus).await?;
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
            .await
            .map_err(|e| BusError::declare("the reply queue", e.to_string()))?
            .name()
            .as_str()
            .to_owned(),
    };
    // Direct reply-to must be consumed (no-ack) on the publishing channel before the
    // first publish; we do the same for the exclusive queue, it costs nothing.
    let replies = channel
        .basic_consume(
            reply_to.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| BusError::declare(&reply_to, e.to_string()))?;
    let generation = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
    Ok((
        Arc::new(Session {
            channel: channel.clone(),
            reply_to,
            generation,
        }),
        replies,
    ))
}

/// Fails the callers of requests the broker returned as unroutable (`mandatory`).
/// lapin keeps returned messages of a channel without confirms until they are drained,
/// so draining also keeps memory bounded.
async fn fail_returned(inner: &Inner, session: &Session) {
    let Ok(returned) = session.channel.wait_for_confirms().await else {
        return;
    };
    for message in returned {
        let props = &message.delivery.properties;
        let Some(id) = props.correlation_id() else {
            continue;
        };
        if let Some((_, waiter)) = inner.waiters.remove(id.as_str()) {
            let method = message.delivery.routing_key.as_str();
            let _ = waiter.tx.send(Err(RpcError::unavailable(format!(
                "no service is consuming {method:?} (nothing is bound to receive it)"
            ))));
        }
    }
}

/// Re-checks every watched queue until the client closes.
async fn keep_watching(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
            _ = inner.shutdown.cancelled() => return,
        }
        let watch = &inner.watch;
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
/// waiters and opens a new one.
async fn supervise(inner: Arc<Inner>, first: Option<Opened>) {
    let mut backoff = Backoff::default();
    let mut next = first;
    loop {
        let (session, mut replies) = match next.take() {
            Some(opened) => opened,
            None => {
                let attempt = tokio::select! {
                    r = establish(&inner) => r,
                    _ = inner.shutdown.cancelled() => break,
                };
                match attempt {
                    Ok(opened) => {
                        tracing::info!(connection = %inner.bus.name(), "rpc client ready");
                        opened
                    }
                    Err(err) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "rpc client cannot open its channel; will retry");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => continue,
                            _ = inner.shutdown.cancelled() => break,
                        }
                    }
                }
            }
        };
        backoff = Backoff::default();
        let generation = session.generation;
        inner.install(session.clone());
        let mut returns = tokio::time::interval(RETURNS_INTERVAL);
        returns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let closing = loop {
            tokio::select! {
                reply = replies.next() => match reply {
                    Some(Ok(delivery)) => {
                        let props = &delivery.properties;
                        if let Some(id) = props.correlation_id() {
                            let from = props.user_id().as_ref().map(|u| u.as_str());
                            let replayed = props.headers().as_ref().is_some_and(|h| {
                                crate::context::header_str(h, crate::context::headers::REPLAYED)
                                    .is_some_and(|v| v == "true")
                            });
                            inner.route_reply(
                                id.as_str(),
                                from,
                                RawReply {
                                    body: delivery.data,
                                    replayed,
                                },
                            );
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "rpc client lost its channel");
                        break false;
                    }
                    None => {
                        tracing::warn!("rpc client's reply consumer ended");
                        break false;
                    }
                },
                _ = returns.tick() => fail_returned(&inner, &session).await,
                _ = inner.shutdown.cancelled() => break true,
            }
        };
        inner.connected.send_replace(false);
        inner.take_session();
        if closing {
            inner.fail_waiters(u64::MAX);
            crate::amqp::close_channel(&session.channel).await;
            break;
        }
        inner.fail_waiters(generation);
        inner.bus.connection_lost();
        crate::amqp::close_channel(&session.channel).await;
    }
    inner.stopped.cancel();
}
