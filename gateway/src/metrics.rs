//! The gateway's own Prometheus metrics (constant label `service="gateway"`).
//!
//! HTTP series are labelled with the route pattern (`/orders/{id}`), never the raw
//! path, so the number of series stays bounded.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use proto_msgs::rpc::{CallObserver, Outcome};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Latency buckets (seconds): 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric of one gateway process.
pub struct GatewayMetrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    rpc_duration: HistogramVec,
    rpc_rejected: IntCounterVec,
    rate_limited: IntCounterVec,
    auth_refused: IntCounterVec,
    pub in_flight: IntGauge,
}

impl std::fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayMetrics").finish_non_exhaustive()
    }
}

impl GatewayMetrics {
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        let labels = HashMap::from([("service".to_owned(), "gateway".to_owned())]);
        let registry = Registry::new_custom(None, Some(labels))?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request to response",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let rpc_duration = HistogramVec::new(
            HistogramOpts::new(
                "rpc_client_duration_seconds",
                "Time of RPC calls on the bus, by method and outcome (ok or an error code)",
            )
            .buckets(BUCKETS.to_vec()),
            &["method", "outcome"],
        )?;
        let rpc_rejected = IntCounterVec::new(
            Opts::new(
                "rpc_client_replies_rejected_total",
                "Replies dropped because they came from a broker account that does not answer for the method",
            ),
            &["method"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused with 429, by policy"),
            &["policy"],
        )?;
        let auth_refused = IntCounterVec::new(
            Opts::new(
                "auth_refused_total",
                "Requests to protected routes refused before any call, by reason (missing, invalid, revoked, keys_unavailable)",
            ),
            &["reason"],
        )?;
        let in_flight = IntGauge::new("http_requests_in_flight", "HTTP requests being handled")?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(rpc_duration.clone()))?;
        registry.register(Box::new(rpc_rejected.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(auth_refused.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Arc::new(GatewayMetrics {
            registry,
            http_requests,
            http_duration,
            rpc_duration,
            rpc_rejected,
            rate_limited,
            auth_refused,
            in_flight,
        }))
    }

    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    pub fn rate_limited(&self, policy: &str) {
        self.rate_limited.with_label_values(&[policy]).inc();
    }

    /// A protected route refused for its token (`reason`: [`AuthError::reason`]).
    ///
    /// [`AuthError::reason`]: crate::auth::AuthError::reason
    pub fn auth_refused(&self, reason: &str) {
        self.auth_refused.with_label_values(&[reason]).inc();
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %err, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl CallObserver for GatewayMetrics {
    fn call_finished(&self, method: &str, outcome: Outcome, elapsed: Duration) {
        self.rpc_duration
            .with_label_values(&[method, outcome.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    fn reply_rejected(&self, method: &str) {
        self.rpc_rejected.with_label_values(&[method]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_series() {
        let m = GatewayMetrics::new().unwrap();
        m.http_request("/orders/{id}", "GET", 404, Duration::from_millis(2));
        m.call_finished("orders.get", Outcome::Ok, Duration::from_millis(1));
        m.rate_limited("auth");
        let text = m.render();
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="/orders/{id}",status="404",service="gateway"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"rpc_client_duration_seconds_count{method="orders.get",outcome="ok",service="gateway"} 1"#), "{text}");
        assert!(text.contains(r#"rate_limited_total{policy="auth",service="gateway"} 1"#));
        assert!(text.contains("http_requests_in_flight"));
    }
}
