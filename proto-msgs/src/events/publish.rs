//! [`EventPublisher`]: persistent messages on the `events` exchange with publisher
//! confirms, published `mandatory`. A message is only reported published once the
//! broker confirmed it **and routed it to at least one queue**: an event nobody is
//! bound to yet (the consumer has not declared its queue on a fresh broker) comes back
//! as [`BusError::Unroutable`] instead of vanishing, and the outbox relay keeps the row
//! and retries. A negative confirm or a broken connection is an error too.

use crate::amqp::put_str;
use crate::connection::{Bus, UseBus};
use crate::error::BusError;
use crate::events::cloudevent::{CLOUDEVENTS_CONTENT_TYPE, CloudEvent};
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::Mutex;

/// Longest wait for the broker to confirm a batch: past it the batch is in doubt and
/// the channel is replaced (the outbox keeps the rows and tries again).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for a channel when the publisher has none.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// AMQP delivery mode of a message the broker writes to disk.
const PERSISTENT: u8 = 2;

/// Publishes events on a confirm-mode channel of its own; opens a new one on the next
/// publish after a failure.
pub struct EventPublisher {
    bus: Bus,
    owns_bus: bool,
    /// Our broker account: the `user_id` of every event.
    account: String,
    exchange: String,
    channel: Mutex<Option<Channel>>,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("bus", &self.bus)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// Does not open its channel yet: the first publish does. `bus` is a shared
    /// [`Bus`], or a `BusConfig` for a connection of its own named `connection_name`.
    pub fn new(bus: impl Into<UseBus>, connection_name: impl Into<String>) -> Self {
        let (bus, owns_bus) = bus.into().resolve(&connection_name.into());
        EventPublisher {
            exchange: bus.topology().events_exchange(),
            account: bus.config().account(),
            bus,
            owns_bus,
            channel: Mutex::new(None),
        }
    }

    /// Publishes one event and waits for the broker's confirm.
    /// An event no queue is bound to is [`BusError::Unroutable`].
    pub async fn publish<T: Serialize>(&self, event: &CloudEvent<T>) -> Result<(), BusError> {
        let body = serde_json::to_vec(event)?;
        match self
            .publish_encoded(&[EncodedEvent::new(event, body)])
            .await?[..]
        {
            [Published::Unroutable] => Err(BusError::Unroutable(event.event_type.clone())),
            _ => Ok(()),
        }
    }

    /// Publishes a batch and waits for all confirms. `Ok` holds what became of each
    /// event, in order (routed to at least one queue, or returned because none is bound
    /// yet); `Err` means the whole batch is in doubt (nack, broken channel). The whole
    /// batch is handed to lapin before any confirm is waited for, so the broker confirms
    /// it in one go instead of one round trip per event.
    pub async fn publish_encoded(
        &self,
        events: &[EncodedEvent],
    ) -> Result<Vec<Published>, BusError> {
        let mut slot = self.channel.lock().await;
        let channel = match slot.take() {
            Some(channel) if channel.status().connected() => channel,
            stale => {
                if let Some(stale) = stale {
                    crate::amqp::close_channel(&stale).await;
                }
                self.open().await?
            }
        };
        let result = publish_all(&channel, &self.exchange, &self.account, events).await;
        match result {
            Ok(published) => {
                *slot = Some(channel);
                Ok(published)
            }
            Err(err) => {
                // Start afresh next time rather than reuse a channel in an unknown state.
                crate::amqp::close_channel(&channel).await;
                self.bus.connection_lost();
                Err(err)
            }
        }
    }

    async fn open(&self) -> Result<Channel, BusError> {
        // A bus that is (re)connecting gets a moment; one that is down fails the publish,
        // and the caller (the outbox relay) tries again later.
        let channel = tokio::time::timeout(OPEN_TIMEOUT, self.bus.channel())
            .await
            .map_err(|_| BusError::NotConnected)??;
        let ready = async {
            self.bus.topology().ensure_exchanges(&self.bus).await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(BusError::amqp)
        };
        match ready.await {
            Ok(()) => Ok(channel),
            Err(err) => {
                crate::amqp::close_channel(&channel).await;
                Err(err)
            }
        }
    }

    /// Closes the channel (and the connection, when it is the publisher's own).
    pub async fn close(&self) {
        if let Some(channel) = self.channel.lock().await.take() {
            crate::amqp::close_channel(&channel).await;
        }
        if self.owns_bus {
            self.bus.close().await;
        }
    }
}

/// What became of one published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Confirmed and delivered to at least one queue.
    Routed,
    /// Confirmed, but returned: no queue is bound for its type (yet).
    Unroutable,
}

/// An event already serialised, with what the AMQP properties need.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    pub id: String,
    pub event_type: String,
    pub source: String,
    pub timestamp: i64,
    pub traceparent: Option<String>,
    pub body: Vec<u8>,
}

impl EncodedEvent {
    pub fn new<T>(event: &CloudEvent<T>, body: Vec<u8>) -> Self {
        EncodedEvent {
            id: event.id.to_string(),
            event_type: event.event_type.clone(),
            source: event.source.clone(),
            timestamp: event.time.timestamp(),
            traceparent: event.traceparent.clone(),
            body,
        }
    }
}

/// Publishes every event, then waits until the broker has confirmed them all. The
/// broker sends `basic.return` for an unroutable message before its `basic.ack`
/// (<https://www.rabbitmq.com/docs/confirms#when-publishes-are-confirmed>), and lapin
/// hands the returned message to that publish's confirm.
async fn publish_all(
    channel: &Channel,
    exchange: &str,
    account: &str,
    events: &[EncodedEvent],
) -> Result<Vec<Published>, BusError> {
    for event in events {
        crate::amqp::check_name("the event type", &event.event_type).map_err(BusError::Config)?;
    }
    // Polled together: each publish queues its frames on its first poll, in order.
    let publishes = events.iter().map(|event| {
        let mut headers = FieldTable::default();
        if let Some(tp) = &event.traceparent {
            put_str(&mut headers, crate::context::headers::TRACEPARENT, tp);
        }
        let props = BasicProperties::default()
            .with_content_type(CLOUDEVENTS_CONTENT_TYPE.into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(event.id.as_str().into())
            .with_type(event.event_type.as_str().into())
            .with_app_id(event.source.as_str().into())
            .with_user_id(account.into())
            .with_timestamp(event.timestamp.max(0) as u64)
            .with_headers(headers);
        channel.basic_publish(
            exchange.into(),
            event.event_type.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            &event.body,
            props,
        )
    });
    let confirm_all = async {
        let mut confirms = Vec::with_capacity(events.len());
        for published in futures::future::join_all(publishes).await {
            confirms.push(published?);
        }
        let mut outcomes = Vec::with_capacity(confirms.len());
        for confirmation in futures::future::join_all(confirms).await {
            outcomes.push(match confirmation? {
                Confirmation::Ack(None) | Confirmation::NotRequested => Published::Routed,
                Confirmation::Ack(Some(_returned)) => Published::Unroutable,
                Confirmation::Nack(_) => return Err(BusError::Nacked),
            });
        }
        Ok(outcomes)
    };
    match tokio::time::timeout(CONFIRM_TIMEOUT, confirm_all).await {
        Ok(result) => result,
        Err(_) => Err(BusError::Amqp(format!(
            "the broker confirmed nothing within {} s",
            CONFIRM_TIMEOUT.as_secs()
        ))),
    }
}
