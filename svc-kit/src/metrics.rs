//! Prometheus metrics of a service, fed by the bus library's observer hooks and
//! rendered as text for `<service>.sys.metrics`.
//!
//! Every series carries a constant `service` label, so the gateway can serve all
//! processes' metrics on one page.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use proto_msgs::events::EventObserver;
use proto_msgs::rpc::{Outcome, ServerObserver};
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::outbox::RelayObserver;

/// Latency buckets (seconds) for bus work: 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics of one service process.
pub struct ServiceMetrics {
    registry: Registry,
    rpc_requests: IntCounterVec,
    rpc_untrusted: IntCounterVec,
    rpc_duration: HistogramVec,
    events_consumed: IntCounterVec,
    events_retried: IntCounterVec,
    events_published: IntCounterVec,
    relay_failures: IntCounter,
    outbox_backlog: IntGauge,
    db_pool: IntGaugeVec,
    db: OnceLock<DatabaseConnection>,
}

impl std::fmt::Debug for ServiceMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceMetrics").finish_non_exhaustive()
    }
}

impl ServiceMetrics {
    /// A registry labelled `service="<service>"`, with process metrics (memory, CPU).
    pub fn new(service: &str) -> Result<Arc<Self>, prometheus::Error> {
        let labels = HashMap::from([("service".to_owned(), service.to_owned())]);
        let registry = Registry::new_custom(None, Some(labels))?;
        let rpc_requests = IntCounterVec::new(
            Opts::new(
                "rpc_server_requests_total",
                "RPC requests handled, by method and outcome",
            ),
            &["method", "outcome"],
        )?;
        let rpc_untrusted = IntCounterVec::new(
            Opts::new(
                "rpc_server_untrusted_total",
                "Requests refused because they named an actor from a broker account not trusted to",
            ),
            &["method"],
        )?;
        let rpc_duration = HistogramVec::new(
            HistogramOpts::new(
                "rpc_server_duration_seconds",
                "Time to handle an RPC request",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method"],
        )?;
        let events_consumed = IntCounterVec::new(
            Opts::new(
                "events_consumed_total",
                "Events consumed, by type and outcome (handled, ignored, dead_lettered, requeued)",
            ),
            &["type", "outcome"],
        )?;
        let events_retried = IntCounterVec::new(
            Opts::new(
                "events_retried_total",
                "Failed event-handler attempts that were retried",
            ),
            &["type"],
        )?;
        let events_published = IntCounterVec::new(
            Opts::new(
                "events_published_total",
                "Events published from the outbox (confirmed)",
            ),
            &["type"],
        )?;
        let relay_failures = IntCounter::new(
            "outbox_relay_failures_total",
            "Outbox relay passes that failed (broker or database unreachable)",
        )?;
        let outbox_backlog = IntGauge::new("outbox_backlog", "Events waiting in the outbox")?;
        let db_pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        registry.register(Box::new(rpc_requests.clone()))?;
        registry.register(Box::new(rpc_untrusted.clone()))?;
        registry.register(Box::new(rpc_duration.clone()))?;
        registry.register(Box::new(events_consumed.clone()))?;
        registry.register(Box::new(events_retried.clone()))?;
        registry.register(Box::new(events_published.clone()))?;
        registry.register(Box::new(relay_failures.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        registry.register(Box::new(db_pool.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Arc::new(ServiceMetrics {
            registry,
            rpc_requests,
            rpc_untrusted,
            rpc_duration,
            events_consumed,
            events_retried,
            events_published,
            relay_failures,
            outbox_backlog,
            db_pool,
            db: OnceLock::new(),
        }))
    }

    /// Reports this pool's use at each render.
    pub fn watch_db(&self, db: &DatabaseConnection) {
        let _ = self.db.set(db.clone());
    }

    /// The registry, to add service-specific metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Some(db) = self.db.get() {
            let pool = db.get_postgres_connection_pool();
            let size = i64::from(pool.size());
            let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
            self.db_pool.with_label_values(&["idle"]).set(idle);
            self.db_pool
                .with_label_values(&["in_use"])
                .set((size - idle).max(0));
        }
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %err, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl ServerObserver for ServiceMetrics {
    fn request_handled(&self, method: &str, outcome: Outcome, elapsed: Duration) {
        self.rpc_requests
            .with_label_values(&[method, outcome.as_str()])
            .inc();
        self.rpc_duration
            .with_label_values(&[method])
            .observe(elapsed.as_secs_f64());
    }

    fn request_untrusted(&self, method: &str) {
        self.rpc_untrusted.with_label_values(&[method]).inc();
    }
}

impl EventObserver for ServiceMetrics {
    fn event_finished(&self, event_type: &str, outcome: &'static str, _elapsed: Duration) {
        self.events_consumed
            .with_label_values(&[event_type, outcome])
            .inc();
    }

    fn event_retried(&self, event_type: &str) {
        self.events_retried.with_label_values(&[event_type]).inc();
    }
}

impl RelayObserver for ServiceMetrics {
    fn published(&self, event_type: &str) {
        self.events_published.with_label_values(&[event_type]).inc();
    }

    fn backlog(&self, pending: i64) {
        self.outbox_backlog.set(pending);
    }

    fn failed(&self) {
        self.relay_failures.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_text() {
        let m = ServiceMetrics::new("users").unwrap();
        m.request_handled("users.get", Outcome::Ok, Duration::from_millis(3));
        m.event_finished("order.created", "handled", Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains(
                r#"rpc_server_requests_total{method="users.get",outcome="ok",service="users"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"events_consumed_total{outcome="handled",type="order.created",service="users"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("rpc_server_duration_seconds_bucket"));
    }
}
