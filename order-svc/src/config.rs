//! Settings of the service, read once from the environment (or made for tests).

use proto_msgs::BusConfig;
use std::time::Duration;
use svc_kit::db::DbConfig;

/// Database of a developer machine: the local server, database `orders`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/orders";

/// `development` (local defaults allowed) or `production` (credentials must be given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker for RPC and the event consumer (`AMQP_URL`, `BUS_PREFIX`, `BUS_EVENT_QUEUE_TYPE`).
    pub bus: BusConfig,
    /// Broker the outbox relay publishes to, when it differs from `bus`
    /// (`EVENTS_AMQP_URL`; same topology). Tests use it to cut only the publisher off.
    pub events_bus: Option<BusConfig>,
    /// `DATABASE_URL`, `DB_MAX_CONNECTIONS`, `DB_ACQUIRE_TIMEOUT_MS`.
    pub db: DbConfig,
    pub app_env: AppEnv,
    /// RPC requests held and worked on at once (`RPC_PREFETCH`, default 32).
    pub rpc_prefetch: u16,
    /// How often the relay checks the outbox when nothing signals it (`OUTBOX_POLL_MS`,
    /// default 1000). Commits signal the relay, so this only matters after a failure.
    pub outbox_poll: Duration,
}

/// A setting that can't be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("{0} must be set when APP_ENV=production (it carries credentials)")]
    MissingInProduction(&'static str),
    #[error("broker settings: {0}")]
    Bus(#[from] proto_msgs::BusError),
}

impl Config {
    /// Reads the environment; every setting has a default that works on a developer
    /// machine, except that production needs `DATABASE_URL` and `AMQP_URL` explicitly.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let app_env = match get("APP_ENV").as_deref() {
            None | Some("development") => AppEnv::Development,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "APP_ENV",
                    message: format!("{other:?} is neither \"development\" nor \"production\""),
                });
            }
        };
        if app_env == AppEnv::Production {
            for name in ["DATABASE_URL", "AMQP_URL"] {
                if get(name).is_none() {
                    return Err(ConfigError::MissingInProduction(name));
                }
            }
        }
        let bus = BusConfig::from_env()?;
        let events_bus =
            get("EVENTS_AMQP_URL").map(|url| BusConfig::new(url, bus.topology.clone()));
        let mut db =
            DbConfig::new(get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()));
        if let Some(n) = parse(&get, "DB_MAX_CONNECTIONS", 1..=1000)? {
            db.max_connections = n;
        }
        if let Some(ms) = parse(&get, "DB_ACQUIRE_TIMEOUT_MS", 1..=600_000)? {
            db.acquire_timeout = Duration::from_millis(ms);
        }
        Ok(Config {
            bus,
            events_bus,
            db,
            app_env,
            rpc_prefetch: parse(&get, "RPC_PREFETCH", 1..=u16::MAX)?.unwrap_or(32),
            outbox_poll: Duration::from_millis(
                parse(&get, "OUTBOX_POLL_MS", 10..=600_000)?.unwrap_or(1000),
            ),
        })
    }

    /// This bus for everything, this database, a fast outbox poll; no other set-up.
    pub fn for_tests(bus: BusConfig, database_url: &str) -> Config {
        let mut db = DbConfig::new(database_url);
        db.max_connections = 5;
        Config {
            bus,
            events_bus: None,
            db,
            app_env: AppEnv::Development,
            rpc_prefetch: 32,
            outbox_poll: Duration::from_millis(100),
        }
    }

    /// The bus the outbox relay publishes to.
    pub fn relay_bus(&self) -> BusConfig {
        self.events_bus.clone().unwrap_or_else(|| self.bus.clone())
    }
}

fn parse<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let Some(text) = get(name) else {
        return Ok(None);
    };
    match text.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(Some(v)),
        _ => Err(ConfigError::Invalid {
            name,
            message: format!(
                "{text:?} is not a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_work_locally() {
        let c = Config::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.db.url, DEFAULT_DATABASE_URL);
        assert_eq!(c.app_env, AppEnv::Development);
        assert_eq!(c.rpc_prefetch, 32);
        assert!(c.events_bus.is_none());
    }

    #[test]
    fn production_needs_credentials() {
        let err = Config::from_lookup(lookup(&[("APP_ENV", "production")])).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        let err = Config::from_lookup(lookup(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://x@db/orders"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("AMQP_URL"), "{err}");
    }

    #[test]
    fn bad_numbers_are_refused() {
        let err = Config::from_lookup(lookup(&[("DB_MAX_CONNECTIONS", "0")])).unwrap_err();
        assert!(err.to_string().starts_with("DB_MAX_CONNECTIONS"), "{err}");
        assert!(Config::from_lookup(lookup(&[("APP_ENV", "prod")])).is_err());
        let c = Config::from_lookup(lookup(&[("EVENTS_AMQP_URL", "amqp://other")])).unwrap();
        assert_eq!(c.relay_bus().url, "amqp://other");
    }
}
