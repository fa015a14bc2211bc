//! [`EventConsumer`]: consumes `<service>.events` with manual acks.
//!
//! - An event that can't be decoded (bad JSON, not a CloudEvent, `data` of the wrong
//!   shape, wrong content type) goes straight to `<service>.events.dlq`.
//! - A handler that fails is retried in process a bounded number of times with backoff,
//!   then the event is rejected to the DLQ, where it is visible in the management UI.
//! - A handler that reports a [`HandlerError::Transient`] failure (its database is
//!   down) is retried until it succeeds: the event waits, it is not lost, and the
//!   events behind it wait in the queue.
//!
//! Events are handled one at a time, in queue order. That is publication order only
//! while one outbox relay publishes; with several service instances their relays
//! publish concurrently, so handlers must not rely on `order.created` arriving before
//! the `order.updated` that follows it (ours don't: see user-svc's `known_orders`).

use crate::amqp::Delivery;
use crate::connection::UseBus;
use crate::error::BusError;
use crate::events::cloudevent::CloudEvent;
use crate::supervise::{ConsumeSpec, consume_supervised};
use futures::FutureExt;
use futures::future::BoxFuture;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Why a handler did not apply an event.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying for as long as it takes (e.g. the database is unreachable).
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Retried a bounded number of times, then dead-lettered.
    #[error("{0}")]
    Failed(String),
    /// Can never succeed: dead-lettered at once.
    #[error("undecodable event: {0}")]
    Undecodable(String),
}

/// How often and how fast failed handlers are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts for a [`HandlerError::Failed`] event before it is dead-lettered.
    pub max_attempts: u32,
    pub initial_delay: Duration,
    /// Cap of the delay between attempts (transient failures retry forever at this pace).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Told what became of each event (for metrics).
pub trait EventObserver: Send + Sync + 'static {
    /// `outcome` is one of `handled`, `ignored`, `dead_lettered`, `requeued`.
    fn event_finished(&self, event_type: &str, outcome: &'static str, elapsed: Duration);
    /// A handler attempt failed and will be retried.
    fn event_retried(&self, event_type: &str) {
        let _ = event_type;
    }
}

type EventHandler = Arc<
    dyn Fn(CloudEvent<serde_json::Value>) -> BoxFuture<'static, Result<(), HandlerError>>
        + Send
        + Sync,
>;

/// Called each time the consumer has (re)declared its queue, before it consumes.
type Subscribed = Arc<dyn Fn() + Send + Sync>;

/// Builder and runner of one service's event inbox.
pub struct EventConsumer {
    bus: UseBus,
    service: String,
    handlers: HashMap<String, EventHandler>,
    prefetch: u16,
    retry: RetryPolicy,
    observer: Option<Arc<dyn EventObserver>>,
    /// A listener: a server-named exclusive queue instead of `<service>.events`.
    listener: bool,
    on_subscribed: Option<Subscribed>,
}

impl EventConsumer {
    /// A consumer of `<service>.events` on a channel of `bus` (a shared [`crate::Bus`],
    /// or a `BusConfig` for a connection of its own); its bindings are the event types
    /// given to `on`.
    pub fn new(bus: impl Into<UseBus>, service: impl Into<String>) -> Self {
        EventConsumer {
            bus: bus.into(),
            service: service.into(),
            handlers: HashMap::new(),
            prefetch: 16,
            retry: RetryPolicy::default(),
            observer: None,
            listener: false,
            on_subscribed: None,
        }
    }

    /// A listener (`role` names it in logs): its own server-named, exclusive,
    /// auto-deleted queue ([`crate::Topology::declare_listener`]) instead of the
    /// service's durable inbox. It sees events only while connected, so pair it with
    /// [`on_subscribed`](Self::on_subscribed) to catch up on what it missed; an event
    /// its handler cannot take is dropped (there is no DLQ for a private queue).
    pub fn listener(bus: impl Into<UseBus>, role: impl Into<String>) -> Self {
        EventConsumer {
            listener: true,
            ..Self::new(bus, role)
        }
    }

    /// Calls `f` each time the queue has been (re)declared and bound, before
    /// consuming starts: events from then on are kept, so a snapshot taken by `f`
    /// leaves no gap. `f` must not block (spawn what takes time).
    pub fn on_subscribed(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_subscribed = Some(Arc::new(f));
        self
    }

    /// Handles events of `event_type`, with `data` decoded into `T`.
    pub fn on<T, F, Fut>(mut self, event_type: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(CloudEvent<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: EventHandler = Arc::new(move |event: CloudEvent<serde_json::Value>| {
            let handler = handler.clone();
            async move {
                let data = serde_json::from_value::<T>(event.data.clone())
                    .map_err(|e| HandlerError::Undecodable(format!("data: {e}")))?;
                handler(event.map_data(data)).await
            }
            .boxed()
        });
        self.handlers.insert(event_type.to_owned(), erased);
        self
    }

    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Messages the broker sends ahead; they are still handled one at a time.
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    pub fn observer(mut self, observer: Arc<dyn EventObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Declares `<service>.events` (bound to every handled type) and its DLQ, and
    /// returns once consuming. Runs until `shutdown`, finishing the current event.
    pub async fn start(self, shutdown: CancellationToken) -> Result<RunningConsumer, BusError> {
        let keys: Vec<String> = self.handlers.keys().cloned().collect();
        let role = format!("{} event-consumer", self.service);
        let (bus, owns_bus) = self.bus.resolve(&role);
        let topology = bus.topology().clone();
        let declaring = bus.clone();
        let service = self.service.clone();
        let listener = self.listener;
        let on_subscribed = self.on_subscribed.clone();
        let state = Arc::new(ConsumerState {
            service: self.service.clone(),
            handlers: self.handlers,
            retry: self.retry,
            observer: self.observer,
            shutdown: shutdown.clone(),
        });
        let spec = ConsumeSpec {
            bus,
            owns_bus,
            role,
            prefetch: self.prefetch,
            declare: Box::new(move |channel| {
                let topology = topology.clone();
                let service = service.clone();
                let keys = keys.clone();
                let bus = declaring.clone();
                let on_subscribed = on_subscribed.clone();
                async move {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let queue = if listener {
                        topology.declare_listener(&bus, &channel, &keys).await?
                    } else {
                        topology
                            .declare_events(&bus, &channel, &service, &keys)
                            .await?
                    };
                    if let Some(f) = &on_subscribed {
                        f();
                    }
                    Ok(queue)
                }
                .boxed()
            }),
            in_flight: TaskTracker::new(),
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let join = tokio::spawn(consume_supervised(
            spec,
            shutdown,
            Some(ready_tx),
            move |delivery, channel| {
                let state = state.clone();
                async move { state.process(delivery, channel).await }
            },
        ));
        let _ = ready_rx.await;
        Ok(RunningConsumer { join })
    }
}

/// A consumer that is running; await [`RunningConsumer::stopped`] after shutdown.
pub struct RunningConsumer {
    join: JoinHandle<()>,
}

impl RunningConsumer {
    pub async fn stopped(self) {
        let _ = self.join.await;
    }
}

struct ConsumerState {
    service: String,
    handlers: HashMap<String, EventHandler>,
    retry: RetryPolicy,
    observer: Option<Arc<dyn EventObserver>>,
    shutdown: CancellationToken,
}

enum Verdict {
    Handled,
    Ignored,
    DeadLetter,
    Requeue,
}

impl ConsumerState {
    async fn process(&self, delivery: Delivery, channel: Channel) {
        let started = Instant::now();
        let event = match decode(&delivery) {
            Ok(event) => event,
            Err(why) => {
                tracing::warn!(routing_key = %delivery.routing_key, reason = %why, "undecodable event: dead-lettered");
                self.finish(
                    &channel,
                    &delivery,
                    delivery.routing_key.as_str(),
                    Verdict::DeadLetter,
                    started,
                )
                .await;
                return;
            }
        };
        let event_type = event.event_type.clone();
        let trace = event.trace();
        let span = tracing::info_span!(
            "event",
            service = %self.service,
            event_type = %event_type,
            event_id = %event.id,
            trace_id = %trace.as_ref().map(|t| t.trace_id()).unwrap_or_default(),
        );
        if let Some(parent) = &trace {
            crate::telemetry::link(&span, parent);
        }
        let verdict = self.apply(event).instrument(span.clone()).await;
        self.finish(&channel, &delivery, &event_type, verdict, started)
            .instrument(span)
            .await;
    }

    async fn apply(&self, event: CloudEvent<serde_json::Value>) -> Verdict {
        let Some(handler) = self.handlers.get(&event.event_type) else {
            tracing::debug!("no handler for this event type: acked and ignored");
            return Verdict::Ignored;
        };
        let mut attempts = 0u32;
        let mut delay = self.retry.initial_delay;
        loop {
            attempts += 1;
            let result = match AssertUnwindSafe(handler(event.clone()))
                .catch_unwind()
                .await
            {
                Ok(result) => result,
                Err(_) => Err(HandlerError::Failed("the handler panicked".to_owned())),
            };
            let err = match result {
                Ok(()) => return Verdict::Handled,
                Err(err) => err,
            };
            match &err {
                HandlerError::Undecodable(_) => {
                    tracing::warn!(error = %err, "event dead-lettered");
                    return Verdict::DeadLetter;
                }
                HandlerError::Failed(_) if attempts >= self.retry.max_attempts => {
                    tracing::error!(error = %err, attempts, "event handler kept failing: dead-lettered");
                    return Verdict::DeadLetter;
                }
                _ => {
                    tracing::warn!(error = %err, attempts, retry_in_ms = delay.as_millis() as u64, "event handler failed; retrying")
                }
            }
            if let Some(observer) = &self.observer {
                observer.event_retried(&event.event_type);
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => return Verdict::Requeue,
            }
            delay = (delay * 2).min(self.retry.max_delay);
        }
    }

    async fn finish(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        event_type: &str,
        verdict: Verdict,
        started: Instant,
    ) {
        let tag = delivery.delivery_tag;
        let (result, outcome) = match verdict {
            Verdict::Handled => (
                channel.basic_ack(tag, BasicAckOptions::default()).await,
                "handled",
            ),
            Verdict::Ignored => (
                channel.basic_ack(tag, BasicAckOptions::default()).await,
                "ignored",
            ),
            Verdict::DeadLetter => (
                channel
                    .basic_reject(tag, BasicRejectOptions { requeue: false })
                    .await,
                "dead_lettered",
            ),
            Verdict::Requeue => (
                channel
                    .basic_nack(
                        tag,
                        BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        },
                    )
                    .await,
                "requeued",
            ),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not settle the event (the broker will redeliver it)");
            return;
        }
        let elapsed = started.elapsed();
        if let Some(observer) = &self.observer {
            observer.event_finished(event_type, outcome, elapsed);
        }
        tracing::info!(
            outcome,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "event finished"
        );
    }
}

fn decode(delivery: &Delivery) -> Result<CloudEvent<serde_json::Value>, String> {
    if let Some(ct) = delivery
        .properties
        .content_type()
        .as_ref()
        .map(|c| c.as_str())
        && !(ct.is_empty()
            || ct.starts_with("application/json")
            || ct.starts_with(crate::events::cloudevent::CLOUDEVENTS_CONTENT_TYPE))
    {
        return Err(format!("content_type {ct:?} is not JSON"));
    }
    let event: CloudEvent<serde_json::Value> =
        serde_json::from_slice(&delivery.data).map_err(|e| format!("not a CloudEvent: {e}"))?;
    if event.specversion != "1.0" {
        return Err(format!("unsupported specversion {:?}", event.specversion));
    }
    Ok(event)
}
