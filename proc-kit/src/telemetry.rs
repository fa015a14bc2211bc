//! Logging and tracing set-up shared by every binary.
//!
//! - `LOG_FORMAT=json` gives one JSON object per line with the fields of every open span
//!   (request id, trace id); anything else is human-readable. Levels from `RUST_LOG`.
//! - When `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are also exported over OTLP/HTTP
//!   (e.g. to Jaeger on `http://jaeger:4318`); `OTEL_TRACES_FILTER` picks the exported
//!   spans (default: info), independent of the log level. Spans crossing the bus are
//!   tied together by `proto_msgs::telemetry`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Default filter: our crates at info, noisy dependencies quieter.
/// lapin is off: it logs a channel the broker closed (our probes of a stopped service's
/// queue, four times a second) as an error, and a returned message with its body (which
/// may hold a password) as a warning; what matters of its errors reaches our own logs.
pub const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,lapin=off,opentelemetry=warn";

/// Keeps the log writer and the span exporter alive; dropping it flushes both.
#[must_use = "dropping the guard stops logging and span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    _flush: Option<crate::log_writer::FlushGuard>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {err}");
        }
    }
}

/// Installs the global subscriber for `service`. Safe to call twice (the second call
/// installs nothing). A bad OTLP configuration is reported and export stays off: the
/// service runs without it rather than not at all.
pub fn init(service: &str) -> TelemetryGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let provider = otlp_provider(service);
    // Each output has its own filter: turning the logs down (RUST_LOG=warn) must not
    // silently turn span export off.
    let otel_layer = provider.as_ref().map(|p| {
        let spans = std::env::var("OTEL_TRACES_FILTER")
            .ok()
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service.to_owned()))
            .with_filter(spans)
    });
    // Lines go to stdout in batches, off the request path (see `log_writer`).
    let (writer, flush) = crate::log_writer::BatchedStdout::start();
    // Colours only for a terminal: log files stay plain text (and cheaper to write).
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .with_filter(filter)
            .boxed()
    };
    let result = tracing_subscriber::registry()
        .with(otel_layer)
        .with(fmt_layer)
        .try_init();
    if result.is_ok() {
        tracing::info!(service, otlp = provider.is_some(), "telemetry initialised");
    }
    TelemetryGuard {
        provider,
        _flush: result.is_ok().then_some(flush),
    }
}

fn otlp_provider(service: &str) -> Option<SdkTracerProvider> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|err| eprintln!("telemetry: OTLP export to {endpoint} disabled: {err}"))
        .ok()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned()),
        )
        .build();
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}
