//! Typed settings, read once from the environment (local defaults that work on a
//! developer machine) on top of what every service reads, or built for tests with
//! [`Config::for_tests`].

pub use crate::hashing::LaneSize;
use crate::keys::{self, KeySource};
pub use crate::throttle::Policy;
use proc_kit::{Secret, Vars};
use proto_msgs::BusConfig;
use std::path::PathBuf;
use std::time::Duration;
use svc_kit::config::ServiceConfig;

/// Database of a local run.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/users";
/// Where development mode keeps its generated signing key.
pub const DEFAULT_DEV_KEY_FILE: &str = ".run/keys/user-svc-ed25519.pem";
pub const DEFAULT_BCRYPT_COST: u32 = 12;
/// The least bcrypt cost production accepts.
pub const MIN_PRODUCTION_BCRYPT_COST: u32 = 10;
/// Access tokens are short: a stolen one is useful for minutes, and the refresh token
/// keeps a session going.
pub const DEFAULT_JWT_TTL: Duration = Duration::from_secs(900);
/// How long a refresh token stays usable (each refresh gives a new one).
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(14 * 86_400);
use proto_msgs::users::{DEFAULT_TOKEN_AUDIENCE, DEFAULT_TOKEN_ISSUER};
pub const DEFAULT_ADMIN_NAME: &str = "Administrator";
/// Per-account throttle: failed password attempts in a row before any delay, the
/// first delay (doubled after each further failure) and the longest.
pub const DEFAULT_THROTTLE: Policy = Policy {
    free_failures: 5,
    base: Duration::from_secs(1),
    max: Duration::from_secs(15 * 60),
};

pub use proc_kit::{AppEnv, ConfigError};

/// Everything user-svc needs to run.
#[derive(Clone)]
pub struct Config {
    /// What every service has: broker, database, prefetch, outbox poll, `APP_ENV`.
    pub service: ServiceConfig,
    /// bcrypt work factor (`BCRYPT_COST`, 4..=31, default 12).
    pub bcrypt_cost: u32,
    /// bcrypt computations running at once (`BCRYPT_CONCURRENCY`, 1..=256, default the
    /// CPU count, at most a quarter of `RPC_PREFETCH`) and requests that may wait for
    /// one (`BCRYPT_QUEUE`, 0..=1000, default four per computation, at most what keeps
    /// the lane within half of `RPC_PREFETCH`); more are refused at once. See
    /// [`check_bcrypt_lane`].
    pub bcrypt_lane: LaneSize,
    /// Per-account throttle of failed password checks (`THROTTLE_FREE_FAILURES`,
    /// 1..=100, default 5; `THROTTLE_BASE_SECS`, 1..=3600, default 1;
    /// `THROTTLE_MAX_SECS`, 1..=86400, default 900).
    pub throttle: Policy,
    /// Where the Ed25519 signing key comes from.
    pub jwt_key: KeySource,
    /// Access-token lifetime (`JWT_TTL_SECS`, 60..=86400, default 900).
    pub jwt_ttl: Duration,
    /// Refresh-token lifetime (`REFRESH_TTL_SECS`, at least the access lifetime, at
    /// most 90 days, default 14 days).
    pub refresh_ttl: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// With `admin_password`: this account exists and is an admin after start-up.
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    /// Name given to the admin account when it has to be created.
    pub admin_name: String,
}

impl Config {
    /// Reads the environment (the variables are listed in the repository README).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        let service = ServiceConfig::from_vars(vars, DEFAULT_DATABASE_URL)?;
        let bcrypt_cost = vars.number("BCRYPT_COST", 4..=31, DEFAULT_BCRYPT_COST)?;
        if service.app_env == AppEnv::Production && bcrypt_cost < MIN_PRODUCTION_BCRYPT_COST {
            return Err(ConfigError::Invalid {
                name: "BCRYPT_COST",
                value: bcrypt_cost.to_string(),
                message: format!(
                    "must be at least {MIN_PRODUCTION_BCRYPT_COST} when APP_ENV=production \
                     (lower costs are for tests: a stolen hash falls in minutes)"
                ),
            });
        }
        let prefetch = usize::from(service.rpc_prefetch);
        let concurrency =
            vars.number("BCRYPT_CONCURRENCY", 1..=256, default_concurrency(prefetch))?;
        let bcrypt_lane = LaneSize {
            concurrency,
            queue: vars.number(
                "BCRYPT_QUEUE",
                0..=1000,
                default_queue(prefetch, concurrency),
            )?,
        };
        check_bcrypt_lane(service.rpc_prefetch, bcrypt_lane)?;
        let throttle = Policy {
            free_failures: vars.number(
                "THROTTLE_FREE_FAILURES",
                1..=100,
                DEFAULT_THROTTLE.free_failures,
            )?,
            base: vars.secs(
                "THROTTLE_BASE_SECS",
                1..=3600,
                DEFAULT_THROTTLE.base.as_secs(),
            )?,
            max: vars.secs(
                "THROTTLE_MAX_SECS",
                1..=86_400,
                DEFAULT_THROTTLE.max.as_secs(),
            )?,
        };
        if throttle.max < throttle.base {
            return Err(ConfigError::Rule(
                "THROTTLE_MAX_SECS must not be below THROTTLE_BASE_SECS".into(),
            ));
        }
        let jwt_key = match (
            vars.secret("JWT_PRIVATE_KEY"),
            vars.get("JWT_PRIVATE_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Rule(
                    "JWT_PRIVATE_KEY and JWT_PRIVATE_KEY_FILE: set one or the other, not both"
                        .into(),
                ));
            }
            (Some(pem), None) => KeySource::Pem(pem.expose().to_owned().into()),
            (None, Some(path)) => KeySource::File(PathBuf::from(path)),
            (None, None) if service.app_env == AppEnv::Development => KeySource::DevFile(
                PathBuf::from(vars.text("JWT_DEV_KEY_FILE", DEFAULT_DEV_KEY_FILE)),
            ),
            (None, None) => {
                return Err(ConfigError::MissingInProduction {
                    name: "JWT_PRIVATE_KEY",
                    why: "an Ed25519 private key, PEM PKCS#8, or JWT_PRIVATE_KEY_FILE, a path to \
                          one; only APP_ENV=development generates a key by itself",
                });
            }
        };
        let jwt_ttl = vars.secs(
            "JWT_TTL_SECS",
            60..=proto_msgs::users::MAX_ACCESS_TTL_SECS,
            DEFAULT_JWT_TTL.as_secs(),
        )?;
        let refresh_ttl = vars.secs(
            "REFRESH_TTL_SECS",
            jwt_ttl.as_secs()..=90 * 86_400,
            DEFAULT_REFRESH_TTL.as_secs().max(jwt_ttl.as_secs()),
        )?;
        let admin_email = vars.get("ADMIN_EMAIL");
        let admin_password = vars.secret("ADMIN_PASSWORD");
        if let Some(password) = &admin_password {
            vars.refuse_development_secret(service.app_env, "ADMIN_PASSWORD", password.expose())?;
        }
        if admin_email.is_some() != admin_password.is_some() {
            return Err(ConfigError::Rule(
                "ADMIN_EMAIL and ADMIN_PASSWORD must be set together (or neither)".into(),
            ));
        }
        Ok(Config {
            service,
            bcrypt_cost,
            bcrypt_lane,
            throttle,
            jwt_key,
            jwt_ttl,
            refresh_ttl,
            jwt_issuer: vars.text("JWT_ISSUER", DEFAULT_TOKEN_ISSUER),
            jwt_audience: vars.text("JWT_AUDIENCE", DEFAULT_TOKEN_AUDIENCE),
            admin_email,
            admin_password,
            admin_name: vars.text("ADMIN_NAME", DEFAULT_ADMIN_NAME),
        })
    }

    /// Settings for tests: this bus for everything, this database, bcrypt cost 4, a
    /// signing key generated in memory (no file), no admin.
    pub fn for_tests(bus: BusConfig, database_url: &str) -> Config {
        Config {
            service: ServiceConfig::for_tests(bus, database_url),
            bcrypt_cost: 4,
            bcrypt_lane: LaneSize {
                concurrency: default_concurrency(32),
                queue: default_queue(32, default_concurrency(32)),
            },
            throttle: DEFAULT_THROTTLE,
            jwt_key: KeySource::Pem(keys::generate_pem()),
            jwt_ttl: DEFAULT_JWT_TTL,
            refresh_ttl: DEFAULT_REFRESH_TTL,
            jwt_issuer: DEFAULT_TOKEN_ISSUER.into(),
            jwt_audience: DEFAULT_TOKEN_AUDIENCE.into(),
            admin_email: None,
            admin_password: None,
            admin_name: DEFAULT_ADMIN_NAME.into(),
        }
    }
}

// Secrets never reach a log line through Debug.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("service", &self.service)
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("bcrypt_lane", &self.bcrypt_lane)
            .field("throttle", &self.throttle)
            .field("jwt_key", &self.jwt_key)
            .field("jwt_ttl", &self.jwt_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("admin_email", &self.admin_email)
            .field("admin_password", &self.admin_password)
            .field("admin_name", &self.admin_name)
            .finish()
    }
}

/// The bcrypt lane (running + waiting) must be smaller than the prefetch: the RPC
/// server works on every prefetched request at once, so the slots the lane cannot take
/// are the ones `users.me`, `users.get`, `users.jwks` and health always find free.
pub fn check_bcrypt_lane(prefetch: u16, lane: LaneSize) -> Result<(), ConfigError> {
    let held = lane.concurrency + lane.queue;
    if held >= usize::from(prefetch) {
        return Err(ConfigError::Rule(format!(
            "BCRYPT_CONCURRENCY + BCRYPT_QUEUE ({held}) must be below RPC_PREFETCH \
             ({prefetch}), or requests waiting for bcrypt could hold every delivery and \
             cheap methods would queue behind them"
        )));
    }
    Ok(())
}

fn default_concurrency(prefetch: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.min(prefetch / 4).max(1)
}

fn default_queue(prefetch: usize, concurrency: usize) -> usize {
    (4 * concurrency).min((prefetch / 2).saturating_sub(concurrency))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_pairs(vars))
    }

    #[test]
    fn defaults_work_locally() {
        let c = from(&[]).unwrap();
        assert_eq!(c.service.app_env, AppEnv::Development);
        assert_eq!(c.service.db.url, DEFAULT_DATABASE_URL);
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.jwt_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_ttl, Duration::from_secs(14 * 86_400));
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
            ("TRUSTED_CALLERS", "gateway"),
        ];
        let err = from(&[("APP_ENV", "production")]).unwrap_err().to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
        let err = from(&[("APP_ENV", "production"), urls[0]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("AMQP_URL"), "{err}");
        let err = from(&[("APP_ENV", "production"), urls[0], urls[1], urls[2]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("JWT_PRIVATE_KEY"), "{err}");
        let c = from(&[
            ("APP_ENV", "production"),
            urls[0],
            urls[1],
            urls[2],
            ("JWT_PRIVATE_KEY_FILE", "/k.pem"),
        ])
        .unwrap();
        assert!(matches!(c.jwt_key, KeySource::File(_)));
        let prod = |extra: (&'static str, &'static str)| {
            from(&[
                ("APP_ENV", "production"),
                urls[0],
                urls[1],
                urls[2],
                ("JWT_PRIVATE_KEY_FILE", "/k.pem"),
                extra,
            ])
        };
        let err = prod(("BCRYPT_COST", "4")).unwrap_err().to_string();
        assert!(err.starts_with("BCRYPT_COST"), "{err}");
        let err = prod(("ADMIN_PASSWORD", "admin-password"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ADMIN_PASSWORD"), "{err}");
    }

    #[test]
    fn the_bcrypt_lane_leaves_prefetch_slots_free() {
        for prefetch in ["4", "32", "1000"] {
            let c = from(&[("RPC_PREFETCH", prefetch)]).unwrap();
            let lane = c.bcrypt_lane.concurrency + c.bcrypt_lane.queue;
            assert!(
                lane < usize::from(c.service.rpc_prefetch),
                "{prefetch}: {lane}"
            );
            assert!(c.bcrypt_lane.concurrency >= 1);
        }
        let err = from(&[("BCRYPT_CONCURRENCY", "8"), ("BCRYPT_QUEUE", "24")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("RPC_PREFETCH"), "{err}");
        let c = from(&[("BCRYPT_CONCURRENCY", "2"), ("BCRYPT_QUEUE", "0")]).unwrap();
        assert_eq!(c.bcrypt_lane.queue, 0);
        assert_eq!(c.throttle, DEFAULT_THROTTLE);
    }

    #[test]
    fn refuses_bad_values() {
        assert!(from(&[("APP_ENV", "staging")]).is_err());
        assert!(from(&[("BCRYPT_COST", "3")]).is_err());
        assert!(from(&[("BCRYPT_COST", "twelve")]).is_err());
        assert!(from(&[("BCRYPT_CONCURRENCY", "0")]).is_err());
        assert!(from(&[("THROTTLE_FREE_FAILURES", "0")]).is_err());
        assert!(from(&[("THROTTLE_BASE_SECS", "60"), ("THROTTLE_MAX_SECS", "30")]).is_err());
        assert!(from(&[("JWT_TTL_SECS", "0")]).is_err());
        assert!(from(&[("JWT_TTL_SECS", "86401")]).is_err());
        // A refresh token outliving no access token would be pointless.
        assert!(from(&[("JWT_TTL_SECS", "3600"), ("REFRESH_TTL_SECS", "600")]).is_err());
        assert!(from(&[("REFRESH_TTL_SECS", "7776001")]).is_err());
        assert!(from(&[("ADMIN_EMAIL", "a@b.co")]).is_err());
        let c = from(&[("ADMIN_EMAIL", "a@b.co"), ("ADMIN_PASSWORD", "password1")]).unwrap();
        assert_eq!(c.admin_email.as_deref(), Some("a@b.co"));
        assert!(!format!("{c:?}").contains("password1"));
    }
}
