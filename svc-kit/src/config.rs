//! The settings every service has, read once with one rule per variable.

use crate::db::DbConfig;
use proc_kit::{AppEnv, ConfigError, Vars};
use proto_msgs::BusConfig;
use proto_msgs::rpc::Trust;
use std::time::Duration;

/// What both services read from the environment (each adds its own on top).
#[derive(Clone)]
pub struct ServiceConfig {
    pub app_env: AppEnv,
    /// RPC server, event consumer and relay (`AMQP_URL`, `BUS_PREFIX`,
    /// `BUS_EVENT_QUEUE_TYPE`).
    pub bus: BusConfig,
    /// Broker the outbox relay publishes to, when it differs from `bus`
    /// (`EVENTS_AMQP_URL`; same names). Tests point it through a proxy to cut only the
    /// publisher off.
    pub events_bus: Option<BusConfig>,
    /// RPC requests held and worked on at once (`RPC_PREFETCH`, 1..=1000, default 32).
    pub rpc_prefetch: u16,
    /// How often the relay checks the outbox when no commit signals it
    /// (`OUTBOX_POLL_MS`, 10..=600000, default 1000).
    pub outbox_poll: Duration,
    /// `DATABASE_URL`, `DB_MAX_CONNECTIONS` (1..=1000, default 10),
    /// `DB_ACQUIRE_TIMEOUT_MS` (1..=600000, default 3000).
    pub db: DbConfig,
    /// Broker accounts whose requests may name an actor (`TRUSTED_CALLERS`,
    /// comma-separated: the gateway's). Unset: anyone's (one shared account), which
    /// production refuses.
    pub trusted_callers: Trust,
    /// How long stored replies (and handled-event records, and a service's own
    /// bookkeeping of finished things) are kept: a retry or redelivery later than this
    /// runs again (`IDEMPOTENCY_WINDOW_S`, 60..=2592000, default 86400).
    pub idempotency_window: Duration,
    /// How often rows older than the window are deleted (a tenth of it, 1 s to 1 h).
    pub prune_interval: Duration,
    /// Replies the RPC server loses on purpose (tests of exactly-once effects).
    #[cfg(feature = "testing")]
    pub reply_faults: Vec<proto_msgs::rpc::ReplyFault>,
}

impl ServiceConfig {
    /// Reads the shared settings; `default_database` is the service's local database
    /// (used outside production only).
    pub fn from_vars(vars: &Vars, default_database: &str) -> Result<Self, ConfigError> {
        let app_env = vars.app_env()?;
        vars.require_in_production(app_env, "DATABASE_URL", "it holds the database password")?;
        vars.require_in_production(app_env, "AMQP_URL", "it holds the broker password")?;
        vars.require_in_production(
            app_env,
            "TRUSTED_CALLERS",
            "the broker accounts whose requests may act for a user: the gateway's",
        )?;
        let bus = BusConfig::from_vars(vars)?;
        vars.refuse_development_secret(app_env, "AMQP_URL", &bus.url)?;
        let events_bus = vars
            .get("EVENTS_AMQP_URL")
            .map(|url| BusConfig::new(url, bus.topology.clone()));
        if let Some(events) = &events_bus {
            vars.refuse_development_secret(app_env, "EVENTS_AMQP_URL", &events.url)?;
        }
        let mut db = DbConfig::new(vars.text("DATABASE_URL", default_database));
        vars.refuse_development_secret(app_env, "DATABASE_URL", &db.url)?;
        db.max_connections = vars.number("DB_MAX_CONNECTIONS", 1..=1000, db.max_connections)?;
        db.acquire_timeout = vars.millis(
            "DB_ACQUIRE_TIMEOUT_MS",
            1..=600_000,
            db.acquire_timeout.as_millis() as u64,
        )?;
        let idempotency_window = vars.secs("IDEMPOTENCY_WINDOW_S", 60..=2_592_000, 86_400)?;
        Ok(ServiceConfig {
            app_env,
            bus,
            events_bus,
            rpc_prefetch: vars.number("RPC_PREFETCH", 1..=1000, 32)?,
            outbox_poll: vars.millis("OUTBOX_POLL_MS", 10..=600_000, 1000)?,
            db,
            trusted_callers: Trust::from_list(&vars.text("TRUSTED_CALLERS", "")),
            idempotency_window,
            prune_interval: (idempotency_window / 10)
                .clamp(Duration::from_secs(1), Duration::from_secs(3600)),
            #[cfg(feature = "testing")]
            reply_faults: Vec::new(),
        })
    }

    /// This bus for everything, this database, a fast outbox poll, a small pool.
    pub fn for_tests(bus: BusConfig, database_url: &str) -> Self {
        let mut db = DbConfig::new(database_url);
        db.max_connections = 5;
        ServiceConfig {
            app_env: AppEnv::Development,
            bus,
            events_bus: None,
            rpc_prefetch: 32,
            outbox_poll: Duration::from_millis(100),
            db,
            trusted_callers: Trust::Anyone,
            idempotency_window: Duration::from_secs(86_400),
            prune_interval: Duration::from_millis(200),
            #[cfg(feature = "testing")]
            reply_faults: Vec::new(),
        }
    }
}

// URLs carry passwords: never shown.
impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use proto_msgs::config::redact;
        f.debug_struct("ServiceConfig")
            .field("app_env", &self.app_env)
            .field("bus", &self.bus)
            .field("events_bus", &self.events_bus)
            .field("rpc_prefetch", &self.rpc_prefetch)
            .field("outbox_poll", &self.outbox_poll)
            .field("database_url", &redact(&self.db.url))
            .field("db_max_connections", &self.db.max_connections)
            .field("db_acquire_timeout", &self.db.acquire_timeout)
            .field("trusted_callers", &self.trusted_callers)
            .field("idempotency_window", &self.idempotency_window)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<ServiceConfig, ConfigError> {
        ServiceConfig::from_vars(
            &Vars::from_pairs(pairs),
            "postgres://postgres@127.0.0.1:5432/things",
        )
    }

    #[test]
    fn defaults_work_locally() {
        let c = read(&[]).unwrap();
        assert_eq!(c.app_env, AppEnv::Development);
        assert_eq!(c.db.url, "postgres://postgres@127.0.0.1:5432/things");
        assert_eq!(c.db.max_connections, 10);
        assert_eq!(c.rpc_prefetch, 32);
        assert_eq!(c.outbox_poll, Duration::from_secs(1));
        assert!(c.events_bus.is_none());
        assert_eq!(c.idempotency_window, Duration::from_secs(86_400));
        assert_eq!(c.prune_interval, Duration::from_secs(3600));
    }

    #[test]
    fn production_needs_the_urls_with_passwords() {
        let err = read(&[("APP_ENV", "production")]).unwrap_err().to_string();
        assert!(err.starts_with("DATABASE_URL"), "{err}");
        let err = read(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://u:p@db/x"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("AMQP_URL"), "{err}");
    }

    #[test]
    fn one_rule_per_variable_and_no_clamping() {
        for (name, bad) in [
            ("DB_MAX_CONNECTIONS", "0"),
            ("DB_MAX_CONNECTIONS", "1001"),
            ("DB_ACQUIRE_TIMEOUT_MS", "0"),
            ("RPC_PREFETCH", "0"),
            ("OUTBOX_POLL_MS", "5"),
            ("IDEMPOTENCY_WINDOW_S", "59"),
            ("IDEMPOTENCY_WINDOW_S", "2592001"),
            ("APP_ENV", "prod"),
        ] {
            let err = read(&[(name, bad)]).unwrap_err().to_string();
            assert!(err.starts_with(name), "{name}={bad}: {err}");
        }
        let c = read(&[("EVENTS_AMQP_URL", "amqp://other")]).unwrap();
        assert_eq!(c.events_bus.map(|b| b.url), Some("amqp://other".to_owned()));
    }

    #[test]
    fn debug_hides_passwords() {
        let c = read(&[
            ("DATABASE_URL", "postgres://u:secret1@db/x"),
            ("AMQP_URL", "amqp://u:secret2@mq/%2f"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("secret1") && !shown.contains("secret2"),
            "{shown}"
        );
    }
}
