//! [`RpcServer`]: consumes `<service>.rpc`, routes by method to typed async handlers,
//! replies on `reply_to` with the same `correlation_id`, then acks.
//!
//! Nothing is ever requeued: a malformed request, an unknown method, a handler error or
//! even a handler panic becomes an error reply, and the request is acked.

use crate::amqp::{Delivery, put_str};
use crate::config::BusConfig;
use crate::context::RequestContext;
use crate::envelope::{ErrorCode, RpcError, encode_reply};
use crate::error::BusError;
use crate::rpc::observe::{Outcome, ServerObserver};
use crate::supervise::{ConsumeSpec, consume_supervised};
use crate::telemetry;
use crate::trace::TraceParent;
use amqprs::channel::{BasicAckArguments, BasicPublishArguments, Channel};
use amqprs::{BasicProperties, FieldTable};
use futures::FutureExt;
use futures::future::BoxFuture;
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
    bus: BusConfig,
    prefetch: u16,
    max_body: usize,
    handlers: HashMap<String, Handler>,
    health: Option<HealthCheck>,
    observer: Option<Arc<dyn ServerObserver>>,
}

impl RpcServer {
    /// A server for `service` (e.g. `"users"`): it consumes `<service>.rpc` and answers
    /// `<service>.sys.health` by itself.
    pub fn new(bus: BusConfig, service: impl Into<String>) -> Self {
        RpcServer {
            service: service.into(),
            bus,
            prefetch: DEFAULT_PREFETCH,
            max_body: DEFAULT_MAX_BODY,
            handlers: HashMap::new(),
            health: None,
            observer: None,
        }
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
        let prefix = format!("{}.", self.service);
        if let Some(bad) = self.handlers.keys().find(|m| !m.starts_with(&prefix)) {
            return Err(BusError::Config(format!(
                "method {bad:?} does not belong to service {:?}",
                self.service
            )));
        }
        self.install_health();

        let state = Arc::new(ServerState {
            service: self.service.clone(),
            rpc_exchange: self.bus.topology.rpc_exchange(),
            max_body: self.max_body,
            handlers: self.handlers,
            observer: self.observer,
        });
        let topology = self.bus.topology.clone();
        let service = self.service.clone();
        let in_flight = TaskTracker::new();
        let spec = ConsumeSpec {
            bus: self.bus,
            connection_name: format!("{} rpc-server", self.service),
            prefetch: self.prefetch,
            declare: Box::new(move |channel| {
                let topology = topology.clone();
                let service = service.clone();
                async move { topology.declare_rpc(&channel, &service).await }.boxed()
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
    max_body: usize,
    handlers: HashMap<String, Handler>,
    observer: Option<Arc<dyn ServerObserver>>,
}

impl ServerState {
    async fn process(&self, mut delivery: Delivery, channel: Channel) {
        let started = Instant::now();
        let props = &delivery.properties;
        let method = self.method_of(&delivery);
        let reply_to = props.reply_to().cloned();
        let correlation_id = props.correlation_id().cloned();
        let ctx = RequestContext::from_headers(props.headers()).map(|mut ctx| {
            ctx.message_id = props.message_id().cloned();
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

        async {
            let Some(reply_to) = reply_to else {
                tracing::warn!("request without reply_to: acked and dropped");
                ack(&channel, &delivery).await;
                return;
            };
            let (body, outcome) = self.answer(&method, ctx, &mut delivery).await;
            let elapsed = started.elapsed();
            let reply_props = reply_properties(&method, correlation_id.as_deref(), &request_id);
            // Reply, then ack, on the same channel: the writer task sends them in this
            // order. If the channel is gone both fail, and the broker redelivers the
            // request on reconnect.
            let published = channel
                .basic_publish(reply_props, body, BasicPublishArguments::new("", &reply_to))
                .await;
            if let Err(err) = published {
                tracing::warn!(error = %err, "could not publish the reply");
                return;
            }
            ack(&channel, &delivery).await;
            if let Some(observer) = &self.observer {
                // Only methods we serve become metric labels; any routing key a client
                // makes up would otherwise create a series of its own.
                let label = if self.handlers.contains_key(&method) {
                    method.as_str()
                } else {
                    "unknown"
                };
                observer.request_handled(label, outcome, elapsed);
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

    /// The method: the routing key when the request came through the `rpc` exchange,
    /// otherwise (published straight to the queue) the AMQP `type` property.
    fn method_of(&self, delivery: &Delivery) -> String {
        if delivery.exchange == self.rpc_exchange {
            return delivery.routing_key.clone();
        }
        delivery
            .properties
            .message_type()
            .cloned()
            .unwrap_or_else(|| delivery.routing_key.clone())
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
        if ctx.deadline_passed() {
            // The caller gave up already; doing the work now could only surprise them
            // (an order whose create timed out must not appear later).
            tracing::warn!("deadline passed before the request was handled: not executed");
            return fail(RpcError::deadline_exceeded(
                "the request's deadline passed before it was handled; it was not executed",
            ));
        }
        if let Some(ct) = delivery.properties.content_type()
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
) -> BasicProperties {
    let mut props = BasicProperties::default();
    props
        .with_content_type("application/json")
        .with_message_type(method)
        .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64);
    if let Some(id) = correlation_id {
        props.with_correlation_id(id);
    }
    if !request_id.is_empty() {
        let mut headers = FieldTable::new();
        put_str(
            &mut headers,
            crate::context::headers::REQUEST_ID,
            request_id,
        );
        props.with_headers(headers);
    }
    props
}

async fn ack(channel: &Channel, delivery: &Delivery) {
    let acked = channel
        .basic_ack(BasicAckArguments::new(delivery.delivery_tag, false))
        .await;
    if let Err(err) = acked {
        tracing::warn!(error = %err, "could not ack (the broker will redeliver)");
    }
}
