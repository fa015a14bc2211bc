//! [`EventPublisher`]: persistent messages on the `events` exchange with publisher
//! confirms, published `mandatory`. A message is only reported published once the
//! broker confirmed it **and routed it to at least one queue**: an event nobody is
//! bound to yet (the consumer has not declared its queue on a fresh broker) comes back
//! as [`BusError::Unroutable`] instead of vanishing, and the outbox relay keeps the row
//! and retries. A negative confirm or a broken connection is an error too.

use crate::amqp::{ChannelEvents, ChannelHandle, Confirm, Returned, put_str};
use crate::config::BusConfig;
use crate::error::BusError;
use crate::events::cloudevent::{CLOUDEVENTS_CONTENT_TYPE, CloudEvent};
use amqprs::channel::{BasicPublishArguments, ConfirmSelectArguments};
use amqprs::connection::Connection;
use amqprs::{BasicProperties, FieldTable};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};

/// Longest wait for the broker to confirm a batch: past it the batch is in doubt and
/// the connection is replaced (the outbox keeps the rows and tries again).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// One open publishing channel in confirm mode, with the next delivery tag it will use
/// and the receivers of its confirms and returned messages.
struct Session {
    connection: Connection,
    channel: ChannelHandle,
    next_tag: u64,
    confirms: mpsc::UnboundedReceiver<Confirm>,
    returns: mpsc::UnboundedReceiver<Returned>,
}

/// Publishes events; reconnects lazily on the next publish after a failure.
pub struct EventPublisher {
    bus: BusConfig,
    connection_name: String,
    exchange: String,
    state: Mutex<Option<Session>>,
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
        let session = match state.take() {
            Some(session) if session.connection.is_open() && session.channel.is_open() => session,
            _ => self.open().await?,
        };
        let session = state.insert(session);
        let result = publish_all(session, &self.exchange, events).await;
        if result.is_err() {
            // Start afresh next time rather than reuse a channel in an unknown state.
            if let Some(session) = state.take() {
                crate::amqp::close(session.connection).await;
            }
        }
        result
    }

    async fn open(&self) -> Result<Session, BusError> {
        let connection = self.bus.connect(&self.connection_name).await?;
        let mut events = ChannelEvents::new();
        let confirms = events.confirms();
        let returns = events.returns();
        let channel = events.open(&connection).await?;
        self.bus.topology.declare_exchanges(&channel).await?;
        channel
            .confirm_select(ConfirmSelectArguments::default())
            .await
            .map_err(|e| BusError::Amqp(channel.explain(e)))?;
        Ok(Session {
            connection,
            channel,
            next_tag: 1,
            confirms,
            returns,
        })
    }

    /// Closes the connection, if open.
    pub async fn close(&self) {
        if let Some(session) = self.state.lock().await.take() {
            crate::amqp::close(session.connection).await;
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
/// (<https://www.rabbitmq.com/docs/confirms#when-publishes-are-confirmed>), so every
/// return of the batch has arrived by the time its last ack has.
async fn publish_all(
    session: &mut Session,
    exchange: &str,
    events: &[EncodedEvent],
) -> Result<Vec<Published>, BusError> {
    // Confirms and returns left over from an earlier batch that failed midway.
    while session.confirms.try_recv().is_ok() {}
    while session.returns.try_recv().is_ok() {}
    let first = session.next_tag;
    for event in events {
        crate::amqp::check_name("the event type", &event.event_type).map_err(BusError::Config)?;
        let mut headers = FieldTable::new();
        if let Some(tp) = &event.traceparent {
            put_str(&mut headers, crate::context::headers::TRACEPARENT, tp);
        }
        let mut props = BasicProperties::default();
        props
            .with_content_type(CLOUDEVENTS_CONTENT_TYPE)
            .with_delivery_mode(amqprs::DELIVERY_MODE_PERSISTENT)
            .with_message_id(&event.id)
            .with_message_type(&event.event_type)
            .with_app_id(&event.source)
            .with_timestamp(event.timestamp.max(0) as u64)
            .with_headers(headers);
        session
            .channel
            .basic_publish(
                props,
                event.body.clone(),
                BasicPublishArguments::new(exchange, &event.event_type)
                    .mandatory(true)
                    .finish(),
            )
            .await
            .map_err(|e| BusError::Amqp(session.channel.explain(e)))?;
        session.next_tag += 1;
    }
    // Tags first..next_tag are ours; wait until the broker has settled every one.
    let mut pending: BTreeSet<u64> = (first..session.next_tag).collect();
    let wait = async {
        while !pending.is_empty() {
            match session.confirms.recv().await {
                Some(Confirm::Ack {
                    tag,
                    multiple: true,
                }) => {
                    pending = pending.split_off(&(tag + 1));
                }
                Some(Confirm::Ack {
                    tag,
                    multiple: false,
                }) => {
                    pending.remove(&tag);
                }
                Some(Confirm::Nack { tag, multiple }) => {
                    if multiple || pending.contains(&tag) {
                        return Err(BusError::Nacked);
                    }
                }
                None => {
                    return Err(BusError::Amqp(session.channel.closed.explain_or(|| {
                        "the connection was lost before the broker confirmed".to_owned()
                    })));
                }
            }
        }
        Ok(())
    };
    match tokio::time::timeout(CONFIRM_TIMEOUT, wait).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(BusError::Amqp(format!(
                "the broker confirmed nothing within {} s",
                CONFIRM_TIMEOUT.as_secs()
            )));
        }
    }
    let mut returned = HashSet::new();
    while let Ok(message) = session.returns.try_recv() {
        if let Some(id) = message.properties.message_id() {
            returned.insert(id.clone());
        }
    }
    Ok(events
        .iter()
        .map(|event| {
            if returned.contains(&event.id) {
                Published::Unroutable
            } else {
                Published::Routed
            }
        })
        .collect())
}
