//! user-svc: configuration from the environment, then [`user_svc::run`] until SIGTERM.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = proto_msgs::telemetry::init("user-svc");
    let config = user_svc::Config::from_env()?;
    user_svc::run(config, proto_msgs::shutdown::on_signal()).await?;
    Ok(())
}
