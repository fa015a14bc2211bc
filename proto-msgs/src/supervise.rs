//! A consumer that survives broker restarts: connect, declare, consume, and when the
//! connection or channel dies, reconnect with backoff and do it all again.
//!
//! We supervise ourselves rather than use lapin's auto-recovery so that what happens
//! on a broker restart is explicit: deliveries in flight on the dead channel are
//! simply redelivered by the broker, and topology is declared again from our own
//! definitions.

use crate::config::{Backoff, BusConfig};
use crate::error::BusError;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use std::future::Future;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Declares what the consumer needs and returns the queue to consume.
pub(crate) type Declare =
    Box<dyn Fn(Channel) -> BoxFuture<'static, Result<String, BusError>> + Send + Sync>;

/// How long a graceful stop waits for the broker to confirm the cancel.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct ConsumeSpec {
    pub bus: BusConfig,
    /// Connection name shown in the management UI.
    pub connection_name: String,
    pub prefetch: u16,
    pub declare: Declare,
    /// Tasks spawned by the handler; a graceful stop waits for them (so they can still
    /// reply and ack) before the connection is closed.
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
            return;
        }
        let opened = tokio::select! {
            opened = open(&spec) => opened,
            _ = shutdown.cancelled() => return,
        };
        let (connection, channel, mut consumer, queue) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(connection = %spec.connection_name, error = %err, retry_in_ms = delay.as_millis() as u64, "cannot start consuming; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        backoff = Backoff::default();
        tracing::info!(connection = %spec.connection_name, %queue, "consuming");
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }

        let stopped = pump(&channel, &mut consumer, &shutdown, &mut handle).await;
        if stopped {
            spec.in_flight.close();
            spec.in_flight.wait().await;
            let _ = connection.close(200, "shutdown".into()).await;
            tracing::info!(connection = %spec.connection_name, %queue, "stopped consuming");
            return;
        }
        tracing::warn!(connection = %spec.connection_name, %queue, "lost the broker connection; reconnecting");
        drop(consumer);
        let _ = connection.close(200, "reconnecting".into()).await;
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
                // Stop new deliveries, then finish what the broker already sent us.
                let tag = consumer.tag();
                let cancelled = tokio::time::timeout(
                    CANCEL_TIMEOUT,
                    channel.basic_cancel(tag, BasicCancelOptions::default()),
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
                    tracing::warn!(error = %err, "consumer error");
                    return false;
                }
                None => return false,
            }
        }
    }
}

async fn open(spec: &ConsumeSpec) -> Result<(Connection, Channel, Consumer, String), BusError> {
    let connection = spec.bus.connect(&spec.connection_name).await?;
    let channel = connection.create_channel().await?;
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
        .await?;
    Ok((connection, channel, consumer, queue))
}
