//! Logging set-up shared by every binary: `LOG_FORMAT=json|pretty`, `RUST_LOG` levels.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Default filter: our crates at info, noisy dependencies quieter.
pub const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm_migration=warn,lapin=warn,amq_protocol=warn";

/// Installs the global subscriber. `LOG_FORMAT=json` gives one JSON object per line
/// with the current span's fields (request id, trace id); anything else is
/// human-readable. Safe to call twice (the second call does nothing).
pub fn init(service: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let result = if json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_span_events(FmtSpan::NONE)
            .try_init()
    };
    if result.is_ok() {
        tracing::debug!(service, "logging initialised");
    }
}
