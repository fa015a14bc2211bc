//! The gateway binary: logging, settings from the environment, run until SIGTERM.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = proto_msgs::telemetry::init("gateway");
    let config = gateway::Config::from_env()?;
    let shutdown = proto_msgs::shutdown::on_signal();
    gateway::run(config, shutdown).await?;
    Ok(())
}
