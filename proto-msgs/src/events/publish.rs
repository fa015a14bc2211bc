//! [`EventPublisher`]: persistent messages on the `events` exchange with publisher
//! confirms, published `mandatory`. A message is only reported published once the
//! broker confirmed it **and routed it to at least one queue**: an event nobody is
//! bound to yet (the consumer has not declared its queue on a fresh broker) comes back
//! as [`BusError::Unroutable`] instead of vanishing, and the outbox relay keeps the row
//! and retries. A negative confirm or a broken connection is an error too.

use crate::config::BusConfig;
use crate::error::BusError;
use crate::events::cloudevent::{CLOUDEVENTS_CONTENT_TYPE, CloudEvent};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection};
use serde::Serialize;
use tokio::sync::Mutex;

/// Publishes events; reconnects lazily on the next publish after a failure.
pub struct EventPublisher {
    bus: BusConfig,
    connection_name: String,
    exchange: String,
    state: Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("connection_name", &self.connection_name)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// Does not connect yet: the first publish does.
    pub fn new(bus: BusConfig, connection_name: impl Into<String>) -> Self {
        EventPublisher {
            exchange: bus.topology.events_exchange(),
            bus,
            connection_name: connection_name.into(),
            state: Mutex::new(None),
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
    /// yet); `Err` means the whole batch is in doubt (nack, broken connection).
    /// Publishing the batch before waiting keeps the broker busy instead of paying one
    /// round trip per event.
    pub async fn publish_encoded(
        &self,
        events: &[EncodedEvent],
    ) -> Result<Vec<Published>, BusError> {
        let mut state = self.state.lock().await;
        let channel = match state.as_ref() {
            Some((conn, ch)) if conn.status().connected() && ch.status().connected() => ch.clone(),
            _ => {
                let (conn, ch) = self.open().await?;
                *state = Some((conn, ch.clone()));
                ch
            }
        };
        let result = publish_all(&channel, &self.exchange, events).await;
        if result.is_err() {
            // Start afresh next time rather than reuse a channel in an unknown state.
            if let Some((conn, _)) = state.take() {
                let _ = conn.close(200, "publish failed".into()).await;
            }
        }
        result
    }

    async fn open(&self) -> Result<(Connection, Channel), BusError> {
        let conn = self.bus.connect(&self.connection_name).await?;
        let channel = conn.create_channel().await?;
        self.bus.topology.declare_exchanges(&channel).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok((conn, channel))
    }

    /// Closes the connection, if open.
    pub async fn close(&self) {
        if let Some((conn, _)) = self.state.lock().await.take() {
            let _ = conn.close(200, "publisher closed".into()).await;
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

async fn publish_all(
    channel: &Channel,
    exchange: &str,
    events: &[EncodedEvent],
) -> Result<Vec<Published>, BusError> {
    let mut confirms = Vec::with_capacity(events.len());
    for event in events {
        let mut headers = FieldTable::default();
        if let Some(tp) = &event.traceparent {
            headers.insert(
                crate::context::headers::TRACEPARENT.into(),
                AMQPValue::LongString(LongString::from(tp.as_str())),
            );
        }
        let props = BasicProperties::default()
            .with_content_type(CLOUDEVENTS_CONTENT_TYPE.into())
            .with_delivery_mode(2) // persistent
            .with_message_id(event.id.as_str().into())
            .with_type(event.event_type.as_str().into())
            .with_app_id(event.source.as_str().into())
            .with_timestamp(event.timestamp.max(0) as u64)
            .with_headers(headers);
        let confirm = channel
            .basic_publish(
                exchange.into(),
                event.event_type.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &event.body,
                props,
            )
            .await?;
        confirms.push(confirm);
    }
    let mut outcomes = Vec::with_capacity(confirms.len());
    for confirm in confirms {
        let confirmation = confirm.await?;
        if !confirmation.is_ack() {
            return Err(BusError::Nacked);
        }
        outcomes.push(match confirmation.take_message() {
            Some(_) => Published::Unroutable,
            None => Published::Routed,
        });
    }
    Ok(outcomes)
}
