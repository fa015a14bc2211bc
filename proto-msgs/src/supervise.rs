//! A consumer that survives broker restarts: connect, declare, consume, and when the
//! connection or channel dies, reconnect with backoff and do it all again.
//!
//! amqprs has no recovery of its own, and we would not use one: what happens on a
//! broker restart stays explicit. Deliveries in flight on the dead channel are simply
//! redelivered by the broker, and topology is declared again from our own definitions.

use crate::amqp::{ChannelHandle, Delivery};
use crate::config::{Backoff, BusConfig};
use crate::error::BusError;
use amqprs::channel::{
    BasicCancelArguments, BasicConsumeArguments, BasicQosArguments, Channel, ConsumerMessage,
};
use amqprs::connection::Connection;
use futures::future::BoxFuture;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Declares what the consumer needs and returns the queue to consume.
pub(crate) type Declare =
    Box<dyn Fn(ChannelHandle) -> BoxFuture<'static, Result<String, BusError>> + Send + Sync>;

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
        let (connection, channel, tag, mut consumer, queue) = match opened {
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

        let stopped = pump(&channel, &tag, &mut consumer, &shutdown, &mut handle).await;
        if stopped {
            spec.in_flight.close();
            spec.in_flight.wait().await;
            crate::amqp::close(connection).await;
            tracing::info!(connection = %spec.connection_name, %queue, "stopped consuming");
            return;
        }
        tracing::warn!(connection = %spec.connection_name, %queue, "lost the broker connection; reconnecting");
        drop(consumer);
        crate::amqp::close(connection).await;
    }
}

/// Feeds deliveries to `handle` until the consumer dies (false) or shutdown (true).
async fn pump<H, F>(
    channel: &Channel,
    tag: &str,
    consumer: &mut mpsc::UnboundedReceiver<ConsumerMessage>,
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
                // cancel-ok nothing more arrives and the receiver ends once drained.
                let cancelled = tokio::time::timeout(
                    CANCEL_TIMEOUT,
                    channel.basic_cancel(BasicCancelArguments::new(tag)),
                )
                .await;
                if matches!(cancelled, Ok(Ok(_))) {
                    while let Ok(Some(message)) =
                        tokio::time::timeout(CANCEL_TIMEOUT, consumer.recv()).await
                    {
                        if let Some(delivery) = Delivery::from_message(message) {
                            handle(delivery, channel.clone()).await;
                        }
                    }
                }
                return true;
            }
            next = consumer.recv() => match next {
                Some(message) => {
                    if let Some(delivery) = Delivery::from_message(message) {
                        handle(delivery, channel.clone()).await;
                    }
                }
                None => return false,
            }
        }
    }
}

type Opened = (
    Connection,
    Channel,
    String,
    mpsc::UnboundedReceiver<ConsumerMessage>,
    String,
);

async fn open(spec: &ConsumeSpec) -> Result<Opened, BusError> {
    let connection = spec.bus.connect(&spec.connection_name).await?;
    let channel = ChannelHandle::open(&connection).await?;
    let queue = (spec.declare)(channel.clone()).await?;
    channel
        .basic_qos(BasicQosArguments::new(0, spec.prefetch, false))
        .await
        .map_err(|e| BusError::Amqp(channel.explain(e)))?;
    let (tag, consumer) = channel
        .basic_consume_rx(
            BasicConsumeArguments::new(&queue, "")
                .manual_ack(true)
                .finish(),
        )
        .await
        .map_err(|e| BusError::declare(&queue, channel.explain(e)))?;
    Ok((connection, channel.channel.clone(), tag, consumer, queue))
}
