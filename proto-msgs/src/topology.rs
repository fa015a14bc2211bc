//! Names of exchanges and queues, and their idempotent declaration.
//!
//! Every name goes through [`Topology`], whose optional prefix lets tests and parallel
//! runs use their own exchanges and queues on one broker (`BUS_PREFIX`).

use crate::amqp::put_str;
use crate::connection::Bus;
use crate::error::BusError;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};

/// AMQP reply code "access refused" (a permission the account does not have).
pub const ACCESS_REFUSED: u16 = 403;

/// The RPC exchange (topic): routing key = method, `<service>.<method>`.
pub const RPC_EXCHANGE: &str = "rpc";
/// The domain-events exchange (topic): routing key = event type.
pub const EVENTS_EXCHANGE: &str = "events";

/// Method namespaces answered by a service other than the one they are named after:
/// `catalog.*` goes to order-svc's queue (`orders.rpc`) and is answered by its account.
pub const NAMESPACES: &[(&str, &str)] = &[(crate::catalog::NAMESPACE, crate::orders::SERVICE)];

/// The service that answers the methods `<namespace>.*`.
pub fn service_of(namespace: &str) -> &str {
    NAMESPACES
        .iter()
        .find(|(ns, _)| *ns == namespace)
        .map_or(namespace, |(_, service)| service)
}

/// The extra namespaces `service` answers (see [`NAMESPACES`]).
pub fn namespaces_of(service: &str) -> impl Iterator<Item = &'static str> + '_ {
    NAMESPACES
        .iter()
        .filter(move |(_, s)| *s == service)
        .map(|(ns, _)| *ns)
}

/// Which kind of queue to declare for event queues. RPC queues stay classic: publisher
/// confirms on quorum queues cost milliseconds, which the synchronous path can't afford.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueKind {
    #[default]
    Classic,
    /// Replicated Raft queues, for a RabbitMQ cluster
    /// (<https://www.rabbitmq.com/docs/quorum-queues>).
    Quorum,
}

impl std::str::FromStr for QueueKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "classic" => Ok(QueueKind::Classic),
            "quorum" => Ok(QueueKind::Quorum),
            other => Err(format!(
                "unknown queue type {other:?} (expected \"classic\" or \"quorum\")"
            )),
        }
    }
}

/// The names this process uses on the broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    event_queue_kind: QueueKind,
}

impl Topology {
    /// A topology whose names all start with `prefix.` (none when `prefix` is empty).
    pub fn new(prefix: impl Into<String>) -> Self {
        Topology {
            prefix: prefix.into(),
            event_queue_kind: QueueKind::Classic,
        }
    }

    pub fn with_event_queue_kind(mut self, kind: QueueKind) -> Self {
        self.event_queue_kind = kind;
        self
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn name(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_owned()
        } else {
            format!("{}.{base}", self.prefix)
        }
    }

    pub fn rpc_exchange(&self) -> String {
        self.name(RPC_EXCHANGE)
    }

    pub fn events_exchange(&self) -> String {
        self.name(EVENTS_EXCHANGE)
    }

    /// `<service>.rpc`, shared by every instance of the service (competing consumers).
    pub fn rpc_queue(&self, service: &str) -> String {
        self.name(&format!("{service}.rpc"))
    }

    /// `<service>.events`: the service's durable inbox of domain events.
    pub fn events_queue(&self, service: &str) -> String {
        self.name(&format!("{service}.events"))
    }

    /// `<service>.events.dlq`: where poison events wait for a human.
    pub fn events_dlq(&self, service: &str) -> String {
        self.name(&format!("{service}.events.dlq"))
    }

    /// Makes sure both exchanges exist (see [`Topology::ensure_exchange`]).
    pub async fn ensure_exchanges(&self, bus: &Bus) -> Result<(), BusError> {
        self.ensure_exchange(bus, &self.rpc_exchange()).await?;
        self.ensure_exchange(bus, &self.events_exchange()).await
    }

    /// Makes sure the `rpc` exchange exists: all an RPC client needs.
    pub async fn ensure_rpc_exchange(&self, bus: &Bus) -> Result<(), BusError> {
        self.ensure_exchange(bus, &self.rpc_exchange()).await
    }

    /// Makes sure the shared exchange `name` exists. It is looked for first (a passive
    /// declare, which needs no permission), and declared (durable topic) only when it
    /// is missing. With least-privilege broker accounts nothing but the broker's
    /// definitions (or a deploy step) creates, changes or deletes the shared exchanges:
    /// a service's account is refused that, and a missing exchange is then an error
    /// that says where the topology comes from. With the development account it is
    /// created. Each check runs on a channel of its own: a 404 closes the channel.
    pub async fn ensure_exchange(&self, bus: &Bus, name: &str) -> Result<(), BusError> {
        let checked = bus.channel().await?;
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let found = checked
            .exchange_declare(
                name.into(),
                ExchangeKind::Topic,
                passive,
                FieldTable::default(),
            )
            .await;
        match found {
            Ok(()) => {
                crate::amqp::close_channel(&checked).await;
                return Ok(());
            }
            Err(err) if crate::amqp::reply_code(&err) == Some(crate::amqp::NOT_FOUND) => {}
            Err(err) => return Err(BusError::declare(name, err.to_string())),
        }
        let channel = bus.channel().await?;
        let declared = channel
            .exchange_declare(
                name.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(()) => {
                tracing::info!(exchange = %name, "declared the missing exchange");
                crate::amqp::close_channel(&channel).await;
                Ok(())
            }
            Err(err) if crate::amqp::reply_code(&err) == Some(ACCESS_REFUSED) => {
                Err(BusError::declare(
                    name,
                    format!(
                        "it does not exist and this broker account may not create it: load the \
                         broker definitions (deploy/rabbitmq/definitions.json) or run the deploy \
                         step that declares the topology ({err})"
                    ),
                ))
            }
            Err(err) => Err(BusError::declare(name, err.to_string())),
        }
    }

    /// Checks the exchanges, declares `<service>.rpc` and binds it to `rpc` with
    /// `<service>.*` (and `<service>.sys.*` for the built-in system methods, and
    /// `<namespace>.*` for each of its [`NAMESPACES`]): the queue and bindings the
    /// service owns, healed on every (re)connect.
    pub async fn declare_rpc(
        &self,
        bus: &Bus,
        channel: &Channel,
        service: &str,
    ) -> Result<String, BusError> {
        self.ensure_exchanges(bus).await?;
        let queue = self.rpc_queue(service);
        declare_queue(channel, &queue, FieldTable::default()).await?;
        let extra = namespaces_of(service).map(|ns| format!("{ns}.*"));
        for key in [format!("{service}.*"), format!("{service}.sys.*")]
            .into_iter()
            .chain(extra)
        {
            bind(channel, &queue, &self.rpc_exchange(), &key).await?;
        }
        Ok(queue)
    }

    /// Checks the exchanges, declares `<service>.events` bound to each of `keys`, and its
    /// DLQ. Rejected messages go to the DLQ through the default exchange, so no extra
    /// exchange is needed (<https://www.rabbitmq.com/docs/dlx>).
    pub async fn declare_events(
        &self,
        bus: &Bus,
        channel: &Channel,
        service: &str,
        keys: &[&str],
    ) -> Result<String, BusError> {
        self.ensure_exchanges(bus).await?;
        let dlq = self.events_dlq(service);
        declare_queue(channel, &dlq, self.queue_kind_args()).await?;
        let queue = self.events_queue(service);
        let mut args = self.queue_kind_args();
        put_str(&mut args, "x-dead-letter-exchange", "");
        put_str(&mut args, "x-dead-letter-routing-key", &dlq);
        declare_queue(channel, &queue, args).await?;
        for key in keys {
            bind(channel, &queue, &self.events_exchange(), key).await?;
        }
        Ok(queue)
    }

    /// Checks the `events` exchange, declares a server-named (`amq.gen-*`), exclusive,
    /// auto-deleted queue bound to each of `keys`, and returns its name: a listener
    /// that wants the events from now on while it runs, none kept for it while it is
    /// away (it catches up another way). Gone with its connection, so nothing is left
    /// behind; a reconnect declares a new one.
    pub async fn declare_listener(
        &self,
        bus: &Bus,
        channel: &Channel,
        keys: &[&str],
    ) -> Result<String, BusError> {
        let exchange = self.events_exchange();
        self.ensure_exchange(bus, &exchange).await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| BusError::declare("listener queue", e.to_string()))?;
        let queue = queue.name().to_string();
        for key in keys {
            bind(channel, &queue, &exchange, key).await?;
        }
        Ok(queue)
    }

    fn queue_kind_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if self.event_queue_kind == QueueKind::Quorum {
            put_str(&mut args, "x-queue-type", "quorum");
        }
        args
    }

    /// Deletes every exchange and queue this topology could have declared for the given
    /// services. For tests: each one uses its own prefix and leaves nothing behind.
    #[cfg(feature = "testing")]
    pub async fn delete_all(&self, channel: &Channel, services: &[&str]) -> Result<(), BusError> {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        for service in services {
            for queue in [
                self.rpc_queue(service),
                self.events_queue(service),
                self.events_dlq(service),
            ] {
                channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .map_err(|e| BusError::declare(&queue, e.to_string()))?;
            }
        }
        for exchange in [self.rpc_exchange(), self.events_exchange()] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .map_err(|e| BusError::declare(&exchange, e.to_string()))?;
        }
        Ok(())
    }
}

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> Result<(), BusError> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .map_err(|e| BusError::declare(name, e.to_string()))?;
    Ok(())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), BusError> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| BusError::declare(queue, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_design() {
        let t = Topology::default();
        assert_eq!(t.rpc_exchange(), "rpc");
        assert_eq!(t.events_exchange(), "events");
        assert_eq!(t.rpc_queue("users"), "users.rpc");
        assert_eq!(t.events_queue("orders"), "orders.events");
        assert_eq!(t.events_dlq("orders"), "orders.events.dlq");
        let p = Topology::new("t42");
        assert_eq!(p.rpc_queue("users"), "t42.users.rpc");
        assert_eq!(p.events_exchange(), "t42.events");
        assert_eq!(service_of("catalog"), "orders");
        assert_eq!(service_of("users"), "users");
        assert_eq!(namespaces_of("orders").collect::<Vec<_>>(), ["catalog"]);
    }
}
