//! A consumer that survives broker restarts: open a channel on the [`Bus`], declare,
//! consume, and when the channel dies (with its connection, or closed by the broker),
//! open another and do it all again.
//!
//! Deliveries in flight on the dead channel are simply redelivered by the broker, and
//! the topology is declared again from our own definitions.

use crate::amqp::Delivery;
use crate::config::Backoff;
use crate::connection::Bus;
use crate::error::BusError;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use std::future::Future;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Declares what the consumer needs and returns the queue to consume.
pub(crate) type Declare =
    Box<dyn Fn(Channel) -> BoxFuture<'static, Result<String, BusError>> + Send + Sync>;

/// How long a graceful stop waits for the broker to confirm the cancel, and then for
/// each delivery it had already sent.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct ConsumeSpec {
    pub bus: Bus,
    /// Closed when the consumer stops (a connection of the consumer's own).
    pub owns_bus: bool,
    /// What consumes, for logs (e.g. `users rpc-server`).
    pub role: String,
    pub prefetch: u16,
    pub declare: Declare,
    /// Tasks spawned by the handler; a graceful stop waits for them (so they can still
    /// reply and ack) before the channel is closed.
    pub in_flight: TaskTracker,
}

/// Runs until `shutdown`. `handle` is awaited for each delivery, in order; a handler
/// that wants concurrency spawns and returns at once (the prefetch bounds it).
/// `ready` fires once the first consumer is registered.
pub(crate) async fn consume_supervised<H, F>(
    spec: ConsumeSpec,
    shutdown: CancellationToken,
    ready: Option<oneshot::Sender<()>>,
    mut handle: H,
) where
    H: FnMut(Delivery, Channel) -> F,
    F: Future<Output = ()>,
{
    let mut backoff = Backoff::default();
    let mut ready = ready;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let opened = tokio::select! {
            opened = open(&spec) => opened,
            _ = shutdown.cancelled() => break,
        };
        let (channel, mut consumer, queue) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(role = %spec.role, error = %err, retry_in_ms = delay.as_millis() as u64, "cannot start consuming; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        backoff = Backoff::default();
        tracing::info!(role = %spec.role, %queue, "consuming");
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }

        let stopped = pump(&channel, &mut consumer, &shutdown, &mut handle).await;
        if stopped {
            spec.in_flight.close();
            spec.in_flight.wait().await;
            crate::amqp::close_channel(&channel).await;
            tracing::info!(role = %spec.role, %queue, "stopped consuming");
            break;
        }
        tracing::warn!(role = %spec.role, %queue, "the consumer's channel closed; consuming again");
        spec.bus.connection_lost();
    }
    if spec.owns_bus {
        spec.bus.close().await;
    }
}

/// Feeds deliveries to `handle` until the consumer dies (false) or shutdown (true).
async fn pump<H, F>(
    channel: &Channel,
    consumer: &mut Consumer,
    shutdown: &CancellationToken,
    handle: &mut H,
) -> bool
where
    H: FnMut(Delivery, Channel) -> F,
    F: Future<Output = ()>,
{
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                // Stop new deliveries, then finish what the broker already sent us: after
                // cancel-ok nothing more arrives and the stream ends once drained.
                let cancelled = tokio::time::timeout(
                    CANCEL_TIMEOUT,
                    channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()),
                )
                .await;
                if matches!(cancelled, Ok(Ok(()))) {
                    while let Ok(Some(Ok(delivery))) =
                        tokio::time::timeout(CANCEL_TIMEOUT, consumer.next()).await
                    {
                        handle(delivery, channel.clone()).await;
                    }
                }
                return true;
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => handle(delivery, channel.clone()).await,
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "consumer failed");
                    return false;
                }
                None => return false,
            }
        }
    }
}

async fn open(spec: &ConsumeSpec) -> Result<(Channel, Consumer, String), BusError> {
    let channel = spec.bus.channel().await?;
    let queue = (spec.declare)(channel.clone()).await?;
    channel
        .basic_qos(spec.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| BusError::declare(&queue, e.to_string()))?;
    Ok((channel, consumer, queue))
}
