//! [`Prober`]: how many consumers a queue has, by a passive declare.
//!
//! A passive declare of a missing queue makes the broker close the channel (404), so
//! probes run on a connection of their own: the client's publishing channel never sees
//! them. amqprs never frees the id of a channel the broker closed, so that connection
//! is replaced after [`RECYCLE_AFTER`] such closes, long before its ids run out.

use crate::amqp::{ChannelHandle, NOT_FOUND};
use crate::config::BusConfig;
use amqprs::channel::QueueDeclareArguments;
use amqprs::connection::Connection;
use std::time::Duration;

/// Longest wait for one passive declare (or for opening the probe connection).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Server-closed channels after which the probe connection is replaced.
const RECYCLE_AFTER: u32 = 256;

/// Checks queues for consumers; one check at a time.
pub(crate) struct Prober {
    bus: BusConfig,
    connection_name: String,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    connection: Option<Connection>,
    channel: Option<ChannelHandle>,
    closed_channels: u32,
}

impl Prober {
    pub(crate) fn new(bus: BusConfig, connection_name: String) -> Self {
        Prober {
            bus,
            connection_name,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Consumers of `queue`: `Some(0)` when the queue does not exist, `None` when the
    /// check itself failed (unknown: the caller goes ahead).
    pub(crate) async fn consumers(&self, queue: &str) -> Option<u32> {
        let mut state = self.state.lock().await;
        let channel = match self.channel(&mut state).await {
            Ok(channel) => channel,
            Err(reason) => {
                tracing::warn!(%queue, %reason, "cannot check the queue for consumers; calls to it go ahead");
                return None;
            }
        };
        let declared = tokio::time::timeout(
            PROBE_TIMEOUT,
            channel.queue_declare(QueueDeclareArguments::new(queue).passive(true).finish()),
        )
        .await;
        match declared {
            Ok(Ok(Some((_, _, consumers)))) => Some(consumers),
            Ok(Ok(None)) => None,
            Ok(Err(err)) => {
                state.channel = None;
                state.closed_channels += 1;
                match channel.closed.get() {
                    Some(closed) if closed.code == NOT_FOUND => Some(0),
                    _ => {
                        tracing::warn!(%queue, error = %channel.explain(err), "cannot check the queue for consumers; calls to it go ahead");
                        None
                    }
                }
            }
            Err(_) => {
                tracing::warn!(%queue, "checking the queue for consumers timed out; calls to it go ahead");
                // The broker is stalled or the connection half-dead: start afresh.
                Self::reset(&mut state);
                None
            }
        }
    }

    /// The probe channel, opening the connection and channel as needed.
    async fn channel(&self, state: &mut State) -> Result<ChannelHandle, String> {
        if state.closed_channels >= RECYCLE_AFTER
            || !state.connection.as_ref().is_some_and(|c| c.is_open())
        {
            Self::reset(state);
            let connect = self.bus.connect(&self.connection_name);
            let connection = tokio::time::timeout(PROBE_TIMEOUT, connect)
                .await
                .map_err(|_| "connecting timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            state.connection = Some(connection);
        }
        if let Some(channel) = state.channel.as_ref().filter(|c| c.is_open()) {
            return Ok(channel.clone());
        }
        let Some(connection) = state.connection.as_ref() else {
            return Err("not connected".to_owned());
        };
        let opened = tokio::time::timeout(PROBE_TIMEOUT, ChannelHandle::open(connection))
            .await
            .map_err(|_| "opening a channel timed out".to_owned())?
            .map_err(|e| e.to_string());
        match opened {
            Ok(channel) => {
                state.channel = Some(channel.clone());
                Ok(channel)
            }
            Err(reason) => {
                Self::reset(state);
                Err(reason)
            }
        }
    }

    fn reset(state: &mut State) {
        state.channel = None;
        state.closed_channels = 0;
        if let Some(old) = state.connection.take() {
            tokio::spawn(async move {
                let _ = old.close().await;
            });
        }
    }

    /// Closes the probe connection.
    pub(crate) async fn close(&self) {
        let mut state = self.state.lock().await;
        state.channel = None;
        if let Some(old) = state.connection.take() {
            let _ = tokio::time::timeout(PROBE_TIMEOUT, old.close()).await;
        }
    }
}
