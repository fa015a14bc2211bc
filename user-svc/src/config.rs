//! Typed settings, read once from the environment (local defaults that work on a
//! developer machine), or built for tests with [`Config::for_tests`].

use crate::keys::{self, KeySource};
use proto_msgs::BusConfig;
use std::path::PathBuf;
use std::time::Duration;
use svc_kit::db::DbConfig;

/// Database of a local run.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/users";
/// Where development mode keeps its generated signing key.
pub const DEFAULT_DEV_KEY_FILE: &str = ".run/keys/user-svc-ed25519.pem";
pub const DEFAULT_BCRYPT_COST: u32 = 12;
pub const DEFAULT_JWT_TTL: Duration = Duration::from_secs(3600);
pub const DEFAULT_JWT_ISSUER: &str = "shop-user-svc";
pub const DEFAULT_JWT_AUDIENCE: &str = "shop";
pub const DEFAULT_ADMIN_NAME: &str = "Administrator";

/// `APP_ENV`: development relaxes secrets (a signing key is generated and kept on
/// disk); production refuses to start without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppEnv {
    #[default]
    Development,
    Production,
}

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("{0}")]
    Missing(String),
    #[error("broker settings: {0}")]
    Bus(#[from] proto_msgs::BusError),
}

/// Everything user-svc needs to run.
#[derive(Clone)]
pub struct Config {
    pub app_env: AppEnv,
    /// RPC server and event consumer (`AMQP_URL`, `BUS_PREFIX`, `BUS_EVENT_QUEUE_TYPE`).
    pub bus: BusConfig,
    /// Broker used by the outbox relay to publish events; `None` means `bus`. Tests
    /// point it through a proxy to make only the publisher lose the broker.
    pub events_bus: Option<BusConfig>,
    /// Requests worked on at once (`RPC_PREFETCH`, default 32).
    pub rpc_prefetch: u16,
    /// Outbox check interval when nothing signals the relay (`OUTBOX_POLL_MS`, 1000).
    pub outbox_poll: Duration,
    pub db: DbConfig,
    /// bcrypt work factor, 4..=31.
    pub bcrypt_cost: u32,
    /// bcrypt computations running at once; the rest wait their turn.
    pub bcrypt_concurrency: usize,
    /// Where the Ed25519 signing key comes from.
    pub jwt_key: KeySource,
    pub jwt_ttl: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// With `admin_password`: this account exists and is an admin after start-up.
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// Name given to the admin account when it has to be created.
    pub admin_name: String,
}

impl Config {
    /// Reads the environment (the variables are listed in the repository README).
    pub fn from_env() -> Result<Config, ConfigError> {
        let bus = BusConfig::from_env()?;
        Self::from_vars(bus, |name| std::env::var(name).ok())
    }

    /// Settings from `var` (the environment, or a map in tests).
    pub fn from_vars(
        bus: BusConfig,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let app_env = match var("APP_ENV").as_deref().map(str::trim) {
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
            // Never fall back to the local defaults (and their passwords) in production.
            for name in ["DATABASE_URL", "AMQP_URL"] {
                if var(name).is_none() {
                    return Err(ConfigError::Missing(format!(
                        "{name} must be set when APP_ENV=production"
                    )));
                }
            }
        }
        let mut db =
            DbConfig::new(var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()));
        if let Some(n) = parse::<u32>(&var, "DB_MAX_CONNECTIONS")? {
            db.max_connections = n.max(1);
        }
        if let Some(ms) = parse::<u64>(&var, "DB_ACQUIRE_TIMEOUT_MS")? {
            db.acquire_timeout = Duration::from_millis(ms);
        }
        let bcrypt_cost = parse::<u32>(&var, "BCRYPT_COST")?.unwrap_or(DEFAULT_BCRYPT_COST);
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError::Invalid {
                name: "BCRYPT_COST",
                message: format!("{bcrypt_cost} is outside bcrypt's range 4..=31"),
            });
        }
        let bcrypt_concurrency =
            parse::<usize>(&var, "BCRYPT_CONCURRENCY")?.unwrap_or_else(default_concurrency);

        let jwt_key = match (var("JWT_PRIVATE_KEY"), var("JWT_PRIVATE_KEY_FILE")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "JWT_PRIVATE_KEY",
                    message: "set either JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE, not both".into(),
                });
            }
            (Some(pem), None) => KeySource::Pem(pem.into()),
            (None, Some(path)) => KeySource::File(PathBuf::from(path)),
            (None, None) if app_env == AppEnv::Development => KeySource::DevFile(PathBuf::from(
                var("JWT_DEV_KEY_FILE").unwrap_or_else(|| DEFAULT_DEV_KEY_FILE.into()),
            )),
            (None, None) => {
                return Err(ConfigError::Missing(
                    "no token signing key: set JWT_PRIVATE_KEY (an Ed25519 private key, PEM PKCS#8) \
                     or JWT_PRIVATE_KEY_FILE (a path to one). Only APP_ENV=development generates a key by itself"
                        .into(),
                ));
            }
        };
        let ttl_secs = parse::<u64>(&var, "JWT_TTL_SECS")?.unwrap_or(DEFAULT_JWT_TTL.as_secs());
        if ttl_secs == 0 {
            return Err(ConfigError::Invalid {
                name: "JWT_TTL_SECS",
                message: "must be at least 1".into(),
            });
        }

        let admin_email = var("ADMIN_EMAIL");
        let admin_password = var("ADMIN_PASSWORD");
        if admin_email.is_some() != admin_password.is_some() {
            return Err(ConfigError::Missing(
                "ADMIN_EMAIL and ADMIN_PASSWORD must be set together (or neither)".into(),
            ));
        }

        let rpc_prefetch = parse::<u16>(&var, "RPC_PREFETCH")?.unwrap_or(32).max(1);
        let outbox_poll = Duration::from_millis(
            parse::<u64>(&var, "OUTBOX_POLL_MS")?
                .unwrap_or(1000)
                .max(10),
        );
        let events_bus =
            var("EVENTS_AMQP_URL").map(|url| BusConfig::new(url, bus.topology.clone()));
        Ok(Config {
            app_env,
            bus,
            events_bus,
            rpc_prefetch,
            outbox_poll,
            db,
            bcrypt_cost,
            bcrypt_concurrency,
            jwt_key,
            jwt_ttl: Duration::from_secs(ttl_secs),
            jwt_issuer: var("JWT_ISSUER").unwrap_or_else(|| DEFAULT_JWT_ISSUER.into()),
            jwt_audience: var("JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_JWT_AUDIENCE.into()),
            admin_email,
            admin_password,
            admin_name: var("ADMIN_NAME").unwrap_or_else(|| DEFAULT_ADMIN_NAME.into()),
        })
    }

    /// Settings for tests: this bus for everything, this database, bcrypt cost 4, a
    /// signing key generated in memory (no file), no admin.
    pub fn for_tests(bus: BusConfig, database_url: &str) -> Config {
        Config {
            app_env: AppEnv::Development,
            bus,
            events_bus: None,
            rpc_prefetch: 32,
            outbox_poll: Duration::from_millis(100),
            db: DbConfig::new(database_url),
            bcrypt_cost: 4,
            bcrypt_concurrency: default_concurrency(),
            jwt_key: KeySource::Pem(keys::generate_pem()),
            jwt_ttl: DEFAULT_JWT_TTL,
            jwt_issuer: DEFAULT_JWT_ISSUER.into(),
            jwt_audience: DEFAULT_JWT_AUDIENCE.into(),
            admin_email: None,
            admin_password: None,
            admin_name: DEFAULT_ADMIN_NAME.into(),
        }
    }

    /// The broker the outbox relay publishes to.
    pub fn events_bus(&self) -> BusConfig {
        self.events_bus.clone().unwrap_or_else(|| self.bus.clone())
    }
}

// Secrets never reach a log line through Debug.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("app_env", &self.app_env)
            .field("bus", &proto_msgs::config::redact(&self.bus.url))
            .field(
                "events_bus",
                &self
                    .events_bus
                    .as_ref()
                    .map(|b| proto_msgs::config::redact(&b.url)),
            )
            .field("database_url", &proto_msgs::config::redact(&self.db.url))
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("bcrypt_concurrency", &self.bcrypt_concurrency)
            .field("jwt_key", &self.jwt_key)
            .field("jwt_ttl", &self.jwt_ttl)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("admin_email", &self.admin_email)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "***"),
            )
            .field("admin_name", &self.admin_name)
            .finish()
    }
}

fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn parse<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    var(name)
        .map(|v| {
            v.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                name,
                message: format!("{v:?}: {e}"),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(BusConfig::default(), |n| map.get(n).cloned())
    }

    #[test]
    fn defaults_work_locally() {
        let c = from(&[]).unwrap();
        assert_eq!(c.app_env, AppEnv::Development);
        assert_eq!(c.db.url, DEFAULT_DATABASE_URL);
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.jwt_ttl, Duration::from_secs(3600));
        assert_eq!(c.jwt_issuer, "shop-user-svc");
        assert_eq!(c.jwt_audience, "shop");
        assert!(
            matches!(c.jwt_key, KeySource::DevFile(ref p) if p.ends_with("user-svc-ed25519.pem"))
        );
        assert!(c.admin_email.is_none());
    }

    #[test]
    fn production_needs_a_key_and_explicit_urls() {
        let urls = [
            ("DATABASE_URL", "postgres://u:p@db/users"),
            ("AMQP_URL", "amqp://u:p@mq/%2f"),
        ];
        let err = from(&[("APP_ENV", "production")]).unwrap_err().to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
        let err = from(&[("APP_ENV", "production"), urls[0]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("AMQP_URL"), "{err}");
        let err = from(&[("APP_ENV", "production"), urls[0], urls[1]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("JWT_PRIVATE_KEY"), "{err}");
        let c = from(&[
            ("APP_ENV", "production"),
            urls[0],
            urls[1],
            ("JWT_PRIVATE_KEY_FILE", "/k.pem"),
        ])
        .unwrap();
        assert!(matches!(c.jwt_key, KeySource::File(_)));
    }

    #[test]
    fn refuses_bad_values() {
        assert!(from(&[("APP_ENV", "staging")]).is_err());
        assert!(from(&[("BCRYPT_COST", "3")]).is_err());
        assert!(from(&[("BCRYPT_COST", "twelve")]).is_err());
        assert!(from(&[("JWT_TTL_SECS", "0")]).is_err());
        assert!(from(&[("ADMIN_EMAIL", "a@b.co")]).is_err());
        let c = from(&[("ADMIN_EMAIL", "a@b.co"), ("ADMIN_PASSWORD", "password1")]).unwrap();
        assert_eq!(c.admin_email.as_deref(), Some("a@b.co"));
    }
}
