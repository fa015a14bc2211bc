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
        // The caller may give up mid-probe (its deadline, an HTTP client gone). amqprs
        // matches answers by method, so a declare-ok (or a 404 close) left in flight
        // would be taken by the next probe on this channel for its own queue: a probe
        // that does not finish discards the probe connection instead.
        let mut unfinished = ResetUnlessFinished {
            state: &mut state,
            finished: false,
        };
        let consumers = self.check(unfinished.state, queue).await;
        unfinished.finished = true;
        consumers
    }

    async fn check(&self, state: &mut State, queue: &str) -> Option<u32> {
        let channel = match self.channel(state).await {
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
                Self::reset(state);
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
        let opened =
            match tokio::time::timeout(PROBE_TIMEOUT, ChannelHandle::open(connection)).await {
                Ok(opened) => opened.map_err(|e| e.to_string()),
                Err(_) => Err("opening a channel timed out".to_owned()),
            };
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
            // Also called from a drop, which may happen outside a runtime (at exit);
            // the connection then ends with the process.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(crate::amqp::close(old));
            }
        }
    }

    /// Closes the probe connection.
    pub(crate) async fn close(&self) {
        let mut state = self.state.lock().await;
        state.channel = None;
        if let Some(old) = state.connection.take() {
            crate::amqp::close(old).await;
        }
    }
}

/// Resets the probe state when dropped before `finished` is set.
struct ResetUnlessFinished<'a> {
    state: &'a mut State,
    finished: bool,
}

impl Drop for ResetUnlessFinished<'_> {
    fn drop(&mut self) {
        if !self.finished {
            Prober::reset(self.state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestBus;
    use amqprs::channel::BasicConsumeArguments;

    /// Probes cut short at every point (the caller's deadline) must not leave an answer
    /// in flight that the next probe takes for its own.
    #[tokio::test]
    async fn a_probe_given_up_midway_does_not_confuse_the_next_one() {
        let bus = TestBus::new();
        let config = bus.config();
        let queue = format!("{}.probe-watched", config.topology.prefix());
        let missing = format!("{}.probe-missing", config.topology.prefix());

        // A queue with one consumer; auto-delete, so it goes with the connection.
        let owner = config.connect("probe test owner").await.expect("connects");
        let channel = ChannelHandle::open(&owner).await.expect("channel");
        channel
            .queue_declare(
                QueueDeclareArguments::new(&queue)
                    .auto_delete(true)
                    .finish(),
            )
            .await
            .expect("declared");
        let (_tag, _deliveries) = channel
            .basic_consume_rx(BasicConsumeArguments::new(&queue, "").finish())
            .await
            .expect("consuming");

        let prober = Prober::new(config.clone(), "probe test".to_owned());
        for i in 0..150u64 {
            // Given up after 0 to ~1.5 ms: before, during or after the declare.
            let target = if i % 2 == 0 { &queue } else { &missing };
            let _ = tokio::time::timeout(
                Duration::from_micros((i * 97) % 1500),
                prober.consumers(target),
            )
            .await;
            assert_eq!(prober.consumers(&queue).await, Some(1), "round {i}");
            assert_eq!(prober.consumers(&missing).await, Some(0), "round {i}");
        }
        prober.close().await;
        crate::amqp::close(owner).await;
    }
}
