//! # proc-kit: what every process of the shop needs, written once
//!
//! The gateway and both services are three binaries of the same shape; what they share
//! that is not about the bus lives here (the bus is proto-msgs', the service skeleton
//! svc-kit's).
//!
//! - [`env`]: settings from environment variables, one reader and one rule per
//!   variable ([`env::Vars`]), [`env::AppEnv`], and [`env::Secret`] for values that
//!   must never reach a log line.
//! - [`telemetry`]: the tracing subscriber (text or JSON lines) and the optional OTLP
//!   span exporter.
//! - [`log_writer`]: log lines written to stdout in batches, off the request path.
//! - [`shutdown`]: SIGTERM / Ctrl-C as the cancellation token every component takes.
//! - [`main`]: the one `main` body of every binary: telemetry, settings, run, exit code.

pub mod env;
pub mod log_writer;
mod run;
pub mod shutdown;
pub mod telemetry;

pub use env::{AppEnv, ConfigError, Secret, Vars};
pub use run::main;

/// Re-exported so every process shares one cancellation type for graceful shutdown.
pub use tokio_util::sync::CancellationToken;
