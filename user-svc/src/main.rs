//! user-svc: settings from the environment, then [`user_svc::run`] until SIGTERM.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    proc_kit::main("user-svc", user_svc::config, user_svc::run).await
}
