//! Broker settings read from the environment, the connection helper and a backoff.

use crate::error::BusError;
use crate::topology::{QueueKind, Topology};
use lapin::Connection;
use proc_kit::{ConfigError, Vars};
use std::time::Duration;

/// Longest `BUS_PREFIX`: queue names add up to ~20 bytes to it (`.orders.events.dlq`),
/// and AMQP names are at most 255 bytes.
const MAX_PREFIX: usize = 200;

/// `Err` when `BUS_PREFIX` would make some queue name too long for AMQP.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX {
        return Err(format!(
            "is {} bytes; at most {MAX_PREFIX}, so every queue name built on it fits AMQP's 255",
            prefix.len()
        ));
    }
    Ok(())
}

/// Default broker URL: a local RabbitMQ with its default account.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How to reach the broker and which names to use on it.
#[derive(Clone)]
pub struct BusConfig {
    /// `AMQP_URL`, e.g. `amqp://user:pass@host:5672/%2f?heartbeat=10`.
    pub url: String,
    /// Names of exchanges and queues (`BUS_PREFIX`, `BUS_EVENT_QUEUE_TYPE`).
    pub topology: Topology,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: DEFAULT_AMQP_URL.to_owned(),
            topology: Topology::default(),
        }
    }
}

impl BusConfig {
    pub fn new(url: impl Into<String>, topology: Topology) -> Self {
        BusConfig {
            url: url.into(),
            topology,
        }
    }

    /// Reads `AMQP_URL`, `BUS_PREFIX` and `BUS_EVENT_QUEUE_TYPE`, with local defaults.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let url = vars.text("AMQP_URL", DEFAULT_AMQP_URL);
        crate::amqp::AmqpUrl::parse(&url).map_err(|message| ConfigError::InvalidSecret {
            name: "AMQP_URL",
            message: format!("{message} ({})", redact(&url)),
        })?;
        let prefix = vars.text("BUS_PREFIX", "");
        check_prefix(&prefix).map_err(|message| ConfigError::Invalid {
            name: "BUS_PREFIX",
            value: prefix.clone(),
            message,
        })?;
        let kind: QueueKind = vars.parsed("BUS_EVENT_QUEUE_TYPE")?.unwrap_or_default();
        Ok(BusConfig {
            url,
            topology: Topology::new(prefix).with_event_queue_kind(kind),
        })
    }

    /// Opens one unsupervised connection (tools and tests; processes use a
    /// [`crate::Bus`]), named so it can be recognised in the management UI (the topology
    /// prefix, if any, comes first).
    pub async fn connect(&self, name: &str) -> Result<Connection, BusError> {
        let name = self.connection_name(name);
        crate::amqp::connect(&self.url, &name).await
    }

    /// The broker account this process connects as (the URL's user, `guest` without
    /// one). Every message it publishes carries it as `user_id`, which the broker checks.
    pub fn account(&self) -> String {
        crate::amqp::AmqpUrl::parse(&self.url)
            .map(|u| u.username)
            .unwrap_or_else(|_| "guest".to_owned())
    }

    /// The connection name as the management UI shows it for `name`.
    pub fn connection_name(&self, name: &str) -> String {
        match self.topology.prefix() {
            "" => name.to_owned(),
            prefix => format!("{prefix} {name}"),
        }
    }
}

// The URL carries the password: never shown.
impl std::fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusConfig")
            .field("url", &redact(&self.url))
            .field("topology", &self.topology)
            .finish()
    }
}

/// The URL without its password, for error messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Exponential backoff between reconnect attempts: 100 ms doubling up to a cap.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { next: initial, max }
    }

    /// The delay to wait now; the following one is twice as long (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_leaves_room_for_every_queue_name() {
        assert!(check_prefix(&"p".repeat(MAX_PREFIX)).is_ok());
        assert!(check_prefix(&"p".repeat(MAX_PREFIX + 1)).is_err());
        let longest = Topology::new("p".repeat(MAX_PREFIX)).events_dlq("orders");
        assert!(
            longest.len() <= crate::amqp::MAX_SHORT_STR,
            "{}",
            longest.len()
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact("amqp://host"), "amqp://host");
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let d: Vec<_> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![100, 200, 350, 350]);
    }
}
