//! order-svc: reads its configuration from the environment and runs until SIGTERM.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Held to the end: dropping it flushes exported spans.
    let _telemetry = proto_msgs::telemetry::init("order-svc");
    let result = match order_svc::Config::from_env() {
        Ok(config) => order_svc::run(config, proto_msgs::shutdown::on_signal())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "order-svc could not start");
            ExitCode::FAILURE
        }
    }
}
