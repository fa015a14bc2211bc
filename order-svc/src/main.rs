//! order-svc: settings from the environment, then [`order_svc::run`] until SIGTERM.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    proc_kit::main("order-svc", order_svc::config::from_vars, order_svc::run).await
}
