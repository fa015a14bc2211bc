//! [`Prober`]: how many consumers a queue has, by a passive declare.
//!
//! A passive declare of a missing queue makes the broker close the channel (404), so
//! probes run on a channel of their own: the client's publishing channel never sees
//! them. lapin reuses the ids of closed channels, so a new one is simply opened.
//!
//! Each probe runs to its end in a task of its own, one at a time, whoever asked for it
//! and whether they still wait: a probe cut short would leave its channel mid-request
//! (a 404 on its way that the next probe would take for its own answer), and closing
//! that channel from our side while the broker closes it too makes lapin drop the whole
//! connection (it gets the broker's close-ok for a channel it already forgot).

use crate::amqp::NOT_FOUND;
use crate::connection::Bus;
use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for one passive declare (or for opening the probe channel).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks queues for consumers; one check at a time.
pub(crate) struct Prober {
    inner: Arc<Inner>,
}

struct Inner {
    bus: Bus,
    channel: tokio::sync::Mutex<Option<Channel>>,
}

impl Prober {
    pub(crate) fn new(bus: Bus) -> Self {
        Prober {
            inner: Arc::new(Inner {
                bus,
                channel: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Consumers of `queue`: `Some(0)` when the queue does not exist, `None` when the
    /// check itself failed (unknown: the caller goes ahead).
    pub(crate) async fn consumers(&self, queue: &str) -> Option<u32> {
        let inner = self.inner.clone();
        let queue = queue.to_owned();
        tokio::spawn(async move {
            let mut slot = inner.channel.lock().await;
            // A channel the broker closed under us (by an earlier probe's 404 that
            // reached it late) is replaced once.
            match inner.check(&mut slot, &queue).await {
                Checked::ChannelGone => match inner.check(&mut slot, &queue).await {
                    Checked::Consumers(n) => Some(n),
                    _ => None,
                },
                Checked::Consumers(n) => Some(n),
                Checked::Unknown => None,
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Closes the probe channel.
    pub(crate) async fn close(&self) {
        if let Some(channel) = self.inner.channel.lock().await.take() {
            crate::amqp::close_channel(&channel).await;
        }
    }
}

enum Checked {
    Consumers(u32),
    /// The channel failed for some other reason than this queue: try a new one.
    ChannelGone,
    Unknown,
}

impl Inner {
    async fn check(&self, slot: &mut Option<Channel>, queue: &str) -> Checked {
        let channel = match slot.as_ref().filter(|c| c.status().connected()) {
            Some(channel) => channel.clone(),
            None => {
                let opened = tokio::time::timeout(PROBE_TIMEOUT, self.bus.try_channel()).await;
                match opened {
                    Ok(Ok(channel)) => slot.insert(channel).clone(),
                    Ok(Err(err)) => {
                        tracing::warn!(%queue, error = %err, "cannot check the queue for consumers; calls to it go ahead");
                        return Checked::Unknown;
                    }
                    Err(_) => {
                        tracing::warn!(%queue, "opening a channel to check the queue timed out; calls to it go ahead");
                        return Checked::Unknown;
                    }
                }
            }
        };
        let declared = tokio::time::timeout(
            PROBE_TIMEOUT,
            channel.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ),
        )
        .await;
        match declared {
            Ok(Ok(q)) => Checked::Consumers(q.consumer_count()),
            Ok(Err(err)) => {
                // The broker closes the channel after a failed passive declare.
                *slot = None;
                if crate::amqp::reply_code(&err) == Some(NOT_FOUND) {
                    Checked::Consumers(0)
                } else {
                    tracing::debug!(%queue, error = %err, "the probe channel failed");
                    Checked::ChannelGone
                }
            }
            Err(_) => {
                tracing::warn!(%queue, "checking the queue for consumers timed out; calls to it go ahead");
                // The broker is stalled or the connection half-dead: a new channel next
                // time (this one goes when its last handle does).
                *slot = None;
                Checked::Unknown
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestBus;
    use lapin::options::BasicConsumeOptions;

    /// Probes cut short at every point (the caller's deadline) must not leave an answer
    /// in flight that the next probe takes for its own.
    #[tokio::test]
    async fn a_probe_given_up_midway_does_not_confuse_the_next_one() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let test = TestBus::new();
        let config = test.config();
        let queue = format!("{}.probe-watched", config.topology.prefix());
        let missing = format!("{}.probe-missing", config.topology.prefix());

        // A queue with one consumer; auto-delete, so it goes with the connection.
        let owner = config.connect("probe test owner").await.expect("connects");
        let channel = owner.create_channel().await.expect("channel");
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declared");
        let _consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consuming");

        let bus = Bus::connect(config.clone(), "probe test")
            .await
            .expect("bus");
        let prober = Prober::new(bus.clone());
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
        bus.close().await;
        crate::amqp::close(&owner).await;
    }
}
