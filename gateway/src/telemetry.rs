//! The outermost middleware: request id, trace context, a span per request, metrics,
//! the access log line, and the final rendering of every error body.
//!
//! - `X-Request-Id` is taken from the client when it looks sane (1–128 characters of
//!   `A-Za-z0-9` and `-_.:+/=@`), otherwise a UUID is made; it is returned in the
//!   response header, sent in the message headers and written in error bodies.
//! - A valid `traceparent` from the client is continued (the gateway's span is its
//!   child), otherwise a new trace starts; RPCs carry the gateway's span as their
//!   parent (with OTLP export on, the exported span's id: see proto-msgs telemetry).
//! - Any 4xx/5xx response that is not already in the error shape (router 404, 405,
//!   errors of extractors) is rewritten into it, so clients see one shape only.

use crate::error::{ApiError, Rendered};
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use proto_msgs::context::headers;
use proto_msgs::{Actor, RequestContext, TraceParent};
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;

/// `X-Request-Id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route pattern the request matched (`None`: no route), found once by telemetry.
#[derive(Debug, Clone)]
pub struct RoutePattern(pub Option<String>);

/// What the gateway knows about a request before any handler runs; stored in the
/// request's extensions.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    /// The gateway's own span in the trace: what RPCs name as their parent.
    pub trace: TraceParent,
    pub tracestate: Option<String>,
}

impl RequestMeta {
    /// Reads the client's ids and makes `span` the gateway's hop of the trace: a child
    /// of the client's `traceparent`, or of a new trace when it sent none (valid).
    fn from_request(req: &ServiceRequest) -> (String, TraceParent, Option<String>) {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let request_id = header(headers::REQUEST_ID)
            .filter(|id| sane_request_id(id))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let parent = header(headers::TRACEPARENT).and_then(|v| v.parse::<TraceParent>().ok());
        // tracestate only means something next to the traceparent it came with.
        let tracestate = parent
            .as_ref()
            .and(header(headers::TRACESTATE))
            .filter(|s| s.len() <= 512)
            .map(str::to_owned);
        (
            request_id,
            parent.unwrap_or_else(TraceParent::new_root),
            tracestate,
        )
    }

    /// The context of one RPC made for this request: same request id, a child span,
    /// the actor when there is one, and the deadline.
    pub fn rpc_context(&self, actor: Option<Actor>, timeout: Duration) -> RequestContext {
        RequestContext {
            request_id: Some(self.request_id.clone()),
            traceparent: Some(self.trace.clone()),
            tracestate: self.tracestate.clone(),
            actor,
            idempotency_key: None,
            deadline: Some(SystemTime::now() + timeout),
            ..Default::default()
        }
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn enter(gauge: &prometheus::IntGauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The HTTP method as a metric and log label: the standard ones, else `OTHER`.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Accepts client request ids that are safe in headers, logs and message properties.
pub fn sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

/// The middleware function (wrap with `actix_web::middleware::from_fn`).
pub async fn telemetry(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    // Only the gateway vouches for actors (from a verified token); whatever a client
    // sends as x-actor-* is dropped before anything else sees the request.
    req.headers_mut().remove(headers::ACTOR_ID);
    req.headers_mut().remove(headers::ACTOR_ROLE);
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let (request_id, incoming, tracestate) = RequestMeta::from_request(&req);
    // Matching the route pattern walks the routing table, so it is done once here and
    // the guard reads it from the request's extensions.
    let pattern = req.match_pattern();
    let route = pattern.clone().unwrap_or_else(|| "unmatched".to_owned());
    req.extensions_mut().insert(RoutePattern(pattern));
    // A fixed set: a client inventing methods must not invent metric series.
    let method = method_label(req.method()).to_owned();
    let path = req.path().to_owned();
    let span = tracing::info_span!(
        "http",
        request_id = %request_id,
        trace_id = %incoming.trace_id(),
    );
    proto_msgs::telemetry::link(&span, &incoming);
    let meta = RequestMeta {
        request_id,
        trace: proto_msgs::telemetry::outgoing(&span, &incoming),
        tracestate,
    };
    req.extensions_mut().insert(meta.clone());
    // A guard, not inc/dec around the await: actix drops the future when the client
    // goes away or shutdown times out, and the gauge must still come down.
    let in_flight = metrics.as_ref().map(|m| InFlight::enter(&m.in_flight));
    let result = next.call(req).instrument(span.clone()).await;
    drop(in_flight);
    let mut res = match result {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => {
            // Rare (the layers below answer errors as responses); actix renders this
            // one itself, so the error carries the request id in its body.
            let status = err.as_response_error().status_code();
            let api = err.as_error::<ApiError>().cloned().unwrap_or_else(|| {
                let _enter = span.enter();
                ApiError::from_status(status, &method, &path)
            });
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            if let Some(m) = &metrics {
                m.http_request(&route, &method, status.as_u16(), started.elapsed());
            }
            let _enter = span.enter();
            tracing::info!(%method, %route, status = status.as_u16(), latency_ms, "http request");
            return Err(api.with_request_id(&meta.request_id).into());
        }
    };

    let status = res.status();
    if (status.is_client_error() || status.is_server_error())
        && res.response().extensions().get::<Rendered>().is_none()
    {
        let err = res
            .response()
            .error()
            .and_then(|e| e.as_error::<ApiError>())
            .cloned()
            .unwrap_or_else(|| {
                let _enter = span.enter();
                ApiError::from_status(status, &method, &path)
            });
        let body = err.body(Some(&meta.request_id));
        res = res.map_body(|head, _| {
            head.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            BoxBody::new(body)
        });
    }
    if let Ok(id) = HeaderValue::from_str(&meta.request_id) {
        res.headers_mut().insert(X_REQUEST_ID, id);
    }

    let elapsed = started.elapsed();
    if let Some(m) = &metrics {
        m.http_request(&route, &method, status.as_u16(), elapsed);
    }
    let actor_id = res
        .request()
        .extensions()
        .get::<Actor>()
        .map(|a| a.id.to_string())
        .unwrap_or_default();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let _enter = span.enter();
    let status = status.as_u16();
    if status >= 500 {
        tracing::warn!(%method, %route, status, latency_ms, actor_id, "http request");
    } else {
        tracing::info!(%method, %route, status, latency_ms, actor_id, "http request");
    }
    drop(_enter);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sanity_checked() {
        assert!(sane_request_id("abc-123"));
        assert!(sane_request_id("4f0e2c8e-1a2b-4c3d-9e8f-001122334455"));
        assert!(sane_request_id("dGVzdA=="));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id(&"a".repeat(129)));
        assert!(!sane_request_id("has space"));
        assert!(!sane_request_id("new\nline"));
        assert!(!sane_request_id("<script>"));
    }

    #[test]
    fn rpc_context_continues_the_trace() {
        let incoming = TraceParent::new_root();
        let span = tracing::info_span!("http");
        let meta = RequestMeta {
            request_id: "r1".into(),
            trace: proto_msgs::telemetry::outgoing(&span, &incoming),
            tracestate: None,
        };
        let ctx = meta.rpc_context(None, Duration::from_secs(5));
        assert_eq!(ctx.request_id.as_deref(), Some("r1"));
        let tp = ctx.traceparent.unwrap();
        assert_eq!(tp.trace_id(), incoming.trace_id());
        assert_ne!(tp.span_id(), incoming.span_id());
        assert!(ctx.deadline.is_some());
    }
}
