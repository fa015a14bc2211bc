//! The gateway binary: settings from the environment, then [`gateway::run`] until SIGTERM.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    proc_kit::main("gateway", gateway::Config::from_vars, gateway::run).await
}
