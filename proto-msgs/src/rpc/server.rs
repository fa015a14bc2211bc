//! [`RpcServer`]: consumes `<service>.rpc`, routes by method to typed async handlers,
//! replies on `reply_to` with the same `correlation_id`, then acks.
//!
//! Nothing is ever requeued: a malformed request, an unknown method, a handler error or
//! even a handler panic becomes an error reply, and the request is acked.

use crate::amqp::{Delivery, put_str};
use crate::connection::UseBus;
use crate::context::RequestContext;
use crate::envelope::{ErrorCode, RpcError, encode_reply};
use crate::error::BusError;
use crate::rpc::observe::{Outcome, ServerObserver};
use crate::supervise::{ConsumeSpec, consume_supervised};
use crate::telemetry;
use crate::trace::TraceParent;
use futures::FutureExt;
use futures::future::BoxFuture;
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// What a handler gives back: the encoded reply body and how it ended.
type HandlerFuture = BoxFuture<'static, (Vec<u8>, Outcome)>;
type Handler = Arc<dyn Fn(RequestContext, Vec<u8>) -> HandlerFuture + Send + Sync>;
type HealthCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), RpcError>> + Send + Sync>;

/// Default number of unacked requests one instance holds (and works on) at once.
pub const DEFAULT_PREFETCH: u16 = 32;
/// Default largest request body accepted, in bytes.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reply of `<service>.sys.metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MetricsText {
    pub content_type: String,
    pub text: String,
}

/// Builder and runner of one service's RPC endpoint.
pub struct RpcServer {
    service: String,
    bus: UseBus,
    prefetch: u16,
    max_body: usize,
    handlers: HashMap<String, Handler>,
    health: Option<HealthCheck>,
    observer: Option<Arc<dyn ServerObserver>>,
    trust: Trust,
    #[cfg(feature = "testing")]
    faults: Vec<ReplyFault>,
}

/// A fault for tests: the reply to the next `count` requests of one method is lost
/// after the handler ran (and committed), the way a broker connection that drops at
/// that moment loses it.
#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
pub struct ReplyFault(Arc<FaultState>);

#[cfg(feature = "testing")]
#[derive(Debug)]
struct FaultState {
    method: String,
    remaining: std::sync::atomic::AtomicU32,
    redeliver: bool,
}

#[cfg(feature = "testing")]
impl ReplyFault {
    /// No reply, and the request goes back to the queue (nack with requeue): what the
    /// broker does with an unacked request when the connection drops. The caller's
    /// waiting call is answered by the redelivery.
    pub fn redeliver(method: &str, count: u32) -> Self {
        Self::new(method, count, true)
    }

    /// No reply, and the request is acked: the caller times out and must retry.
    pub fn lose(method: &str, count: u32) -> Self {
        Self::new(method, count, false)
    }

    fn new(method: &str, count: u32, redeliver: bool) -> Self {
        ReplyFault(Arc::new(FaultState {
            method: method.to_owned(),
            remaining: std::sync::atomic::AtomicU32::new(count),
            redeliver,
        }))
    }

    /// Loses the next `count` replies (a fault made with 0 waits until armed).
    pub fn arm(&self, count: u32) {
        self.0
            .remaining
            .store(count, std::sync::atomic::Ordering::SeqCst);
    }

    /// Replies still to be lost.
    pub fn remaining(&self) -> u32 {
        self.0.remaining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `Some(redeliver)` when this reply is to be lost.
    fn take(&self, method: &str) -> Option<bool> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.0.method != method {
            return None;
        }
        self.0
            .remaining
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| self.0.redeliver)
    }
}

/// Whose `x-actor-*` headers a server acts on.
///
/// Headers prove nothing: anyone allowed to publish to the queue can write them. The
/// AMQP `user_id` can: the broker refuses a message whose `user_id` is not its
/// publisher's account. So a request naming an actor is served only when its `user_id`
/// is one of the accounts trusted to vouch for users (the gateway's), and answered
/// `permission_denied` otherwise. Requests without an actor (register, login, health)
/// are served from anyone allowed to reach the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// Every caller shares one broker account (a developer machine): nothing to tell
    /// callers apart by, so the check is off, and the server says so when it starts.
    #[default]
    Anyone,
    /// Only these accounts may name an actor.
    Accounts(Vec<String>),
}

impl Trust {
    /// From a comma-separated list of accounts; empty is [`Trust::Anyone`].
    pub fn from_list(list: &str) -> Trust {
        let accounts: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if accounts.is_empty() {
            Trust::Anyone
        } else {
            Trust::Accounts(accounts)
        }
    }

    fn allows(&self, origin: Option<&str>) -> bool {
        match self {
            Trust::Anyone => true,
            Trust::Accounts(accounts) => origin.is_some_and(|o| accounts.iter().any(|a| a == o)),
        }
    }
}

impl RpcServer {
    /// A server for `service` (e.g. `"users"`): it consumes `<service>.rpc` on a channel
    /// of `bus` (a shared [`crate::Bus`], or a `BusConfig` for a connection of its own)
    /// and answers `<service>.sys.health` by itself.
    pub fn new(bus: impl Into<UseBus>, service: impl Into<String>) -> Self {
        RpcServer {
            service: service.into(),
            bus: bus.into(),
            prefetch: DEFAULT_PREFETCH,
            max_body: DEFAULT_MAX_BODY,
            handlers: HashMap::new(),
            health: None,
            observer: None,
            trust: Trust::default(),
            #[cfg(feature = "testing")]
            faults: Vec::new(),
        }
    }

    /// Loses replies as `fault` says (tests only).
    #[cfg(feature = "testing")]
    pub fn fault(mut self, fault: ReplyFault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Whose actor headers to act on (default: anyone's, with a warning at start).
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// How many requests this instance holds unacked, and so works on, at once.
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Requests with a larger body get `invalid_argument` without being decoded.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Registers a typed handler for `method` (`"<service>.<name>"`). The body is decoded
    /// into `Req` (unknown fields are ignored; an empty body counts as `{}`), and the
    /// handler's `Ok` becomes `{"data": …}`, its `Err` `{"error": …}`.
    pub fn method<Req, Resp, F, Fut>(mut self, method: &str, handler: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(RequestContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcError>> + Send + 'static,
    {
        self.handlers.insert(method.to_owned(), erase(handler));
        self
    }

    /// A check run by `<service>.sys.health` (e.g. a database ping); an error makes the
    /// health method answer that error instead of `ok`.
    pub fn health_check<F, Fut>(mut self, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), RpcError>> + Send + 'static,
    {
        self.health = Some(Arc::new(move || check().boxed()));
        self
    }

    /// Answers `<service>.sys.metrics` with `{"content_type": …, "text": …}`: the
    /// Prometheus text that `render` produces. Services have no port, so the gateway
    /// fetches this over the bus and exposes it.
    pub fn metrics<F>(mut self, render: F) -> Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        let method = format!("{}.sys.metrics", self.service);
        let render = Arc::new(render);
        self.handlers.insert(
            method,
            erase(move |_ctx, _req: serde_json::Value| {
                let render = render.clone();
                async move {
                    Ok(MetricsText {
                        content_type: PROMETHEUS_TEXT.to_owned(),
                        text: render(),
                    })
                }
            }),
        );
        self
    }

    /// Receives one report per handled request (for metrics).
    pub fn observer(mut self, observer: Arc<dyn ServerObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Connects (retrying with backoff while the broker is unreachable), declares the
    /// topology, and returns once requests are being consumed. The server then runs
    /// until `shutdown`: it stops taking new requests, answers and acks those it holds,
    /// and closes its connection.
    pub async fn start(mut self, shutdown: CancellationToken) -> Result<RunningServer, BusError> {
        // Its own methods, and those of the namespaces it answers (`catalog.*`).
        let owned = |m: &str| {
            let namespace = m.split('.').next().unwrap_or(m);
            m.contains('.') && crate::topology::service_of(namespace) == self.service
        };
        if let Some(bad) = self.handlers.keys().find(|m| !owned(m)) {
            return Err(BusError::Config(format!(
                "method {bad:?} does not belong to service {:?}",
                self.service
            )));
        }
        self.install_health();
        let role = format!("{} rpc-server", self.service);
        let (bus, owns_bus) = self.bus.resolve(&role);

        match &self.trust {
            Trust::Anyone => tracing::warn!(
                service = %self.service,
                "origin check off: actor headers are acted on from any broker account \
                 (set the trusted callers when each process has an account of its own)"
            ),
            Trust::Accounts(accounts) => tracing::info!(
                service = %self.service,
                trusted = %accounts.join(","),
                "origin check on: actor headers are acted on only from these broker accounts"
            ),
        }
        let state = Arc::new(ServerState {
            service: self.service.clone(),
            rpc_exchange: bus.topology().rpc_exchange(),
            account: bus.config().account(),
            max_body: self.max_body,
            handlers: self.handlers,
            observer: self.observer,
            trust: self.trust,
            #[cfg(feature = "testing")]
            faults: self.faults,
        });
        let topology = bus.topology().clone();
        let service = self.service.clone();
        let declaring = bus.clone();
        let in_flight = TaskTracker::new();
        let spec = ConsumeSpec {
            bus,
            owns_bus,
            role,
            prefetch: self.prefetch,
            declare: Box::new(move |channel| {
                let topology = topology.clone();
                let service = service.clone();
                let bus = declaring.clone();
                async move { topology.declare_rpc(&bus, &channel, &service).await }.boxed()
            }),
            in_flight: in_flight.clone(),
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let join = tokio::spawn(consume_supervised(
            spec,
            shutdown,
            Some(ready_tx),
            move |delivery, channel| {
                let state = state.clone();
                in_flight.spawn(async move { state.process(delivery, channel).await });
                std::future::ready(())
            },
        ));
        // Err means shutdown came before the first connection: not an error for the caller.
        let _ = ready_rx.await;
        Ok(RunningServer { join })
    }

    fn install_health(&mut self) {
        let service = self.service.clone();
        let started = Instant::now();
        let instance = uuid::Uuid::new_v4().to_string();
        let check = self.health.clone();
        let method = format!("{}.sys.health", self.service);
        let health = erase(move |_ctx, _req: serde_json::Value| {
            let service = service.clone();
            let instance = instance.clone();
            let check = check.clone();
            async move {
                if let Some(check) = check {
                    check().await?;
                }
                Ok(serde_json::json!({
                    "status": "ok",
                    "service": service,
                    "instance": instance,
                    "uptime_s": started.elapsed().as_secs(),
                }))
            }
        });
        self.handlers.insert(method, health);
    }
}

/// A server that is consuming; await [`RunningServer::stopped`] after cancelling its
/// shutdown token to know every held request was answered.
pub struct RunningServer {
    join: JoinHandle<()>,
}

impl RunningServer {
    pub async fn stopped(self) {
        let _ = self.join.await;
    }
}

struct ServerState {
    service: String,
    rpc_exchange: String,
    /// Our broker account: the `user_id` of every reply.
    account: String,
    max_body: usize,
    handlers: HashMap<String, Handler>,
    observer: Option<Arc<dyn ServerObserver>>,
    trust: Trust,
    #[cfg(feature = "testing")]
    faults: Vec<ReplyFault>,
}

impl ServerState {
    async fn process(&self, mut delivery: Delivery, channel: Channel) {
        let started = Instant::now();
        let props = &delivery.properties;
        let method = self.method_of(&delivery);
        let reply_to = props.reply_to().as_ref().map(|r| r.as_str().to_owned());
        let correlation_id = props
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str().to_owned());
        let ctx = RequestContext::from_headers(props.headers().as_ref()).map(|mut ctx| {
            ctx.message_id = props.message_id().as_ref().map(|m| m.as_str().to_owned());
            ctx.origin = props.user_id().as_ref().map(|u| u.as_str().to_owned());
            // A request without trace context starts a trace here, so its log lines and
            // the events it causes still share one trace id.
            ctx.traceparent.get_or_insert_with(TraceParent::new_root);
            ctx
        });
        let (request_id, incoming_trace) = match &ctx {
            Ok(ctx) => (
                ctx.request_id.clone().unwrap_or_default(),
                ctx.traceparent.clone(),
            ),
            Err(_) => (String::new(), None),
        };
        let span = tracing::info_span!(
            "rpc",
            service = %self.service,
            %method,
            request_id = %request_id,
            trace_id = %incoming_trace.as_ref().map(|t| t.trace_id()).unwrap_or_default(),
        );
        if let Some(parent) = &incoming_trace {
            telemetry::link(&span, parent);
        }
        // Work done by the handler (events it publishes) continues from this span.
        let ctx = ctx.map(|mut ctx| {
            ctx.traceparent = incoming_trace
                .as_ref()
                .map(|t| telemetry::outgoing(&span, t));
            ctx
        });
        let replayed = ctx.as_ref().map(|c| c.replayed.clone()).unwrap_or_default();

        async {
            let Some(reply_to) = reply_to else {
                tracing::warn!("request without reply_to: acked and dropped");
                ack(&channel, &delivery);
                return;
            };
            let (body, outcome) = self.answer(&method, ctx, &mut delivery).await;
            let elapsed = started.elapsed();
            #[cfg(feature = "testing")]
            if let Some(redeliver) = self.faults.iter().find_map(|f| f.take(&method)) {
                tracing::warn!(redeliver, "test fault: the reply is lost");
                if redeliver {
                    let _ = channel
                        .basic_nack(
                            delivery.delivery_tag,
                            lapin::options::BasicNackOptions {
                                requeue: true,
                                ..Default::default()
                            },
                        )
                        .await;
                } else {
                    ack(&channel, &delivery);
                }
                return;
            }
            let reply_props = reply_properties(
                &method,
                correlation_id.as_deref(),
                &request_id,
                replayed.is_set(),
            )
            .with_user_id(self.account.as_str().into());
            // Reply, then ack. lapin sends an ack (a method frame) ahead of publishes still
            // queued, so the reply's write is waited for first: an ack must never reach
            // the broker for a reply that did not leave (the request would be lost instead
            // of redelivered). The ack itself is not waited for; if the channel is gone
            // before it leaves, the broker redelivers the request on reconnect.
            let published = channel
                .basic_publish(
                    "".into(),
                    reply_to.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    reply_props,
                )
                .await;
            if let Err(err) = published {
                tracing::warn!(error = %err, "could not publish the reply");
                return;
            }
            ack(&channel, &delivery);
            if let Some(observer) = &self.observer {
                observer.request_handled(self.metric_label(&method), outcome, elapsed);
            }
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            match outcome {
                Outcome::Ok => {
                    tracing::info!(outcome = outcome.as_str(), latency_ms, "rpc handled")
                }
                Outcome::Error(ErrorCode::Internal) => {
                    tracing::error!(outcome = outcome.as_str(), latency_ms, "rpc handled")
                }
                Outcome::Error(_) => {
                    tracing::info!(outcome = outcome.as_str(), latency_ms, "rpc handled")
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Only methods we serve become metric labels; any routing key a client makes up
    /// would otherwise create a series of its own.
    fn metric_label<'a>(&self, method: &'a str) -> &'a str {
        if self.handlers.contains_key(method) {
            method
        } else {
            "unknown"
        }
    }

    /// The method: the routing key when the request came through the `rpc` exchange,
    /// otherwise (published straight to the queue) the AMQP `type` property.
    fn method_of(&self, delivery: &Delivery) -> String {
        if delivery.exchange.as_str() == self.rpc_exchange {
            return delivery.routing_key.as_str().to_owned();
        }
        delivery
            .properties
            .kind()
            .as_ref()
            .map_or(delivery.routing_key.as_str(), |t| t.as_str())
            .to_owned()
    }

    async fn answer(
        &self,
        method: &str,
        ctx: Result<RequestContext, RpcError>,
        delivery: &mut Delivery,
    ) -> (Vec<u8>, Outcome) {
        let fail = |err: RpcError| {
            let code = err.code;
            (encode_reply::<()>(&Err(err)), Outcome::Error(code))
        };
        let ctx = match ctx {
            Ok(ctx) => ctx,
            Err(err) => return fail(err),
        };
        if ctx.actor.is_some() && !self.trust.allows(ctx.origin.as_deref()) {
            let origin = ctx.origin.as_deref().unwrap_or("(none)");
            tracing::warn!(%origin, "a request naming an actor from an account not trusted to vouch for users: refused");
            if let Some(observer) = &self.observer {
                observer.request_untrusted(self.metric_label(method));
            }
            return fail(RpcError::permission_denied(format!(
                "the broker account {origin:?} may not act for a user (only trusted callers may send x-actor headers)"
            )));
        }
        let malformed = delivery.properties.headers().as_ref().is_some_and(|h| {
            crate::amqp::header(h, crate::amqp::sanitize::MALFORMED_HEADERS).is_some()
        });
        if malformed {
            return fail(RpcError::invalid_argument(
                "the request's headers could not be read (a value of an unknown AMQP type)",
            ));
        }
        if ctx.deadline_passed() {
            // The caller gave up already; doing the work now could only surprise them
            // (an order whose create timed out must not appear later).
            tracing::warn!("deadline passed before the request was handled: not executed");
            return fail(RpcError::deadline_exceeded(
                "the request's deadline passed before it was handled; it was not executed",
            ));
        }
        if let Some(ct) = delivery
            .properties
            .content_type()
            .as_ref()
            .map(|c| c.as_str())
            && !ct.starts_with("application/json")
            && !ct.is_empty()
        {
            return fail(RpcError::invalid_argument(format!(
                "content_type {ct:?} is not supported; send application/json"
            )));
        }
        if delivery.data.len() > self.max_body {
            return fail(RpcError::invalid_argument(format!(
                "request body is {} bytes; the limit is {}",
                delivery.data.len(),
                self.max_body
            )));
        }
        let Some(handler) = self.handlers.get(method) else {
            return fail(RpcError::unimplemented(format!(
                "unknown method {method:?} for service {:?}",
                self.service
            )));
        };
        let fut = handler(ctx, std::mem::take(&mut delivery.data));
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(answer) => answer,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "handler panicked");
                fail(RpcError::internal(
                    "the service failed while handling the request",
                ))
            }
        }
    }
}

/// Turns a typed handler into one that takes and returns bytes.
fn erase<Req, Resp, F, Fut>(handler: F) -> Handler
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(RequestContext, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, RpcError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    Arc::new(move |ctx, body| {
        let handler = handler.clone();
        async move {
            let result = match decode_body::<Req>(&body) {
                Ok(req) => handler(ctx, req).await,
                Err(err) => Err(err),
            };
            let outcome = match &result {
                Ok(_) => Outcome::Ok,
                Err(e) => Outcome::Error(e.code),
            };
            (encode_reply(&result), outcome)
        }
        .boxed()
    })
}

/// Decodes a request body; an error names the field it is about (`items[2].price`),
/// in the message and as `details.field`.
fn decode_body<Req: DeserializeOwned>(body: &[u8]) -> Result<Req, RpcError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let req = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A bad value is named by its path; where in the text it was adds nothing.
        let position = format!(" at line {} column {}", inner.line(), inner.column());
        let text = inner.to_string();
        let inner = match inner.classify() {
            serde_json::error::Category::Data => text.strip_suffix(&position).unwrap_or(&text),
            _ => &text,
        };
        if path == "." {
            RpcError::invalid_argument(format!("invalid request body: {inner}"))
        } else {
            RpcError::invalid_argument(format!("invalid request body: {path}: {inner}"))
                .with_details(serde_json::json!({ "field": path }))
        }
    })?;
    // Trailing characters after the value are an error too, as with `from_slice`.
    de.end()
        .map_err(|e| RpcError::invalid_argument(format!("invalid request body: {e}")))?;
    Ok(req)
}

fn reply_properties(
    method: &str,
    correlation_id: Option<&str>,
    request_id: &str,
    replayed: bool,
) -> BasicProperties {
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_type(method.into())
        .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64);
    if let Some(id) = correlation_id {
        props = props.with_correlation_id(id.into());
    }
    let mut headers = FieldTable::default();
    if !request_id.is_empty() {
        put_str(
            &mut headers,
            crate::context::headers::REQUEST_ID,
            request_id,
        );
    }
    if replayed {
        put_str(&mut headers, crate::context::headers::REPLAYED, "true");
    }
    if !headers.inner().is_empty() {
        props = props.with_headers(headers);
    }
    props
}

/// Acks without waiting for the write (see the reply above).
fn ack(channel: &Channel, delivery: &Delivery) {
    let acked = channel
        .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
        .now_or_never();
    if let Some(Err(err)) = acked {
        tracing::warn!(error = %err, "could not ack (the broker will redeliver)");
    }
}
