//! The one `main` of every binary.

use crate::env::{ConfigError, Vars};
use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Sets up logging for `name`, reads the settings with `config`, runs `run` with a
/// token cancelled on SIGTERM / Ctrl-C, and turns the outcome into the exit code: a
/// bad setting or a failed start is one error line (`<name> could not start`) and
/// exit code 1, the same for every binary.
pub async fn main<C, F, Fut, E>(
    name: &'static str,
    config: impl FnOnce(&Vars) -> Result<C, ConfigError>,
    run: F,
) -> ExitCode
where
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    // Held to the end: dropping it flushes the log writer and exported spans.
    let _telemetry = crate::telemetry::init(name);
    let config = match config(&Vars::from_env()) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "{name} could not start: bad setting");
            return ExitCode::FAILURE;
        }
    };
    match run(config, crate::shutdown::on_signal()).await {
        Ok(()) => {
            tracing::info!("{name} stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "{name} could not start");
            ExitCode::FAILURE
        }
    }
}
