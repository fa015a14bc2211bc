//! Typed settings, read once from the environment (with defaults that work on a
//! developer machine) or built for tests.

use proc_kit::Vars;
use proto_msgs::BusConfig;
use proto_msgs::rpc::Repliers;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Default listen address.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8080";
/// Default largest request body (64 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Default RPC deadline of a route.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests per minute of each rate-limit policy; `0` turns a policy off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `/users/login` and `/users/register`, per client IP (brute force).
    pub auth_per_min: u32,
    /// Other routes without a token, per client IP.
    pub anon_per_min: u32,
    /// Routes with a token, per user (token `sub`).
    pub user_per_min: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            auth_per_min: 10,
            anon_per_min: 120,
            user_per_min: 600,
        }
    }
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address (`GATEWAY_ADDR`, or `0.0.0.0:$PORT`).
    pub addr: SocketAddr,
    /// The broker (`AMQP_URL`, `BUS_PREFIX`, …; see proto-msgs).
    pub bus: BusConfig,
    /// HTTP worker threads (`HTTP_WORKERS`, default: number of CPUs).
    pub workers: usize,
    /// Largest request body in bytes (`BODY_LIMIT_BYTES`).
    pub body_limit: usize,
    /// RPC deadline of every route (`RPC_TIMEOUT_MS`).
    pub rpc_timeout: Duration,
    /// Per-method overrides of `rpc_timeout` (`RPC_TIMEOUTS="orders.create=8000,…"`).
    pub rpc_timeouts: HashMap<String, Duration>,
    /// Deadline of each dependency check of `/health/ready` (`HEALTH_TIMEOUT_MS`).
    pub health_timeout: Duration,
    /// Expected `iss` of access tokens (`JWT_ISSUER`).
    pub jwt_issuer: String,
    /// Expected `aud` of access tokens (`JWT_AUDIENCE`).
    pub jwt_audience: String,
    /// Fixed verification keys as a JWKS document (`JWT_PUBLIC_JWKS`); when unset the
    /// keys come from `users.jwks` over the bus.
    pub jwks: Option<String>,
    /// Least time between two `users.jwks` refreshes caused by unknown key ids
    /// (`JWKS_REFRESH_MIN_INTERVAL_MS`), so garbage `kid`s cannot hammer user-svc.
    pub jwks_refresh_min_interval: Duration,
    /// How often keys from `users.jwks` are fetched again in the background
    /// (`JWKS_MAX_AGE_SECS`, default 300), so a key removed at user-svc stops working.
    pub jwks_max_age: Duration,
    pub rate_limits: RateLimits,
    /// Which broker account answers for each service (`RPC_REPLIERS`, e.g.
    /// `users=user-svc,orders=order-svc,catalog=order-svc`): a reply from any other is
    /// dropped. Unset: anyone's (one shared account), which production refuses.
    pub repliers: Repliers,
    /// Who may read `/metrics*` and the detailed `/health/ready` (`METRICS_TOKEN`,
    /// `INTERNAL_ADDR`); neither: anyone, which production refuses.
    pub ops: crate::ops::OpsAccess,
    /// Proxies of ours in front of the gateway (`TRUSTED_PROXY_HOPS`, 0..=16, default 0):
    /// that many `X-Forwarded-For` entries, from the right, tell the client's address.
    pub trusted_proxy_hops: usize,
    /// Origins allowed by CORS (`CORS_ALLOWED_ORIGINS`, comma-separated, `*` for any);
    /// empty means CORS is off.
    pub cors_allowed_origins: Vec<String>,
    /// How long in-flight requests may take to finish at shutdown (`SHUTDOWN_TIMEOUT_S`).
    pub shutdown_timeout: Duration,
}

pub use proc_kit::ConfigError;

impl Config {
    /// Reads every setting; see the README for the list.
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        let app_env = vars.app_env()?;
        // The broker URL holds the gateway's broker password: never fall back to the
        // local guest account in production.
        vars.require_in_production(app_env, "AMQP_URL", "it holds the broker password")?;
        vars.require_in_production(
            app_env,
            "RPC_REPLIERS",
            "which broker account answers for each service",
        )?;
        let mut c = Self::defaults();
        if let Some(v) = vars.get("RPC_REPLIERS") {
            c.repliers = Repliers::parse(&v).map_err(|e| invalid("RPC_REPLIERS", &v, e))?;
        }
        c.bus = BusConfig::from_vars(vars)?;
        vars.refuse_development_secret(app_env, "AMQP_URL", &c.bus.url)?;
        if let Some(addr) = vars.parsed::<SocketAddr>("GATEWAY_ADDR")? {
            c.addr = addr;
        } else if let Some(port) = vars.optional_number::<u16>("PORT", 1..=u16::MAX)? {
            c.addr = SocketAddr::from(([0, 0, 0, 0], port));
        }
        c.workers = vars.number("HTTP_WORKERS", 1..=256, c.workers)?;
        c.body_limit = vars.number("BODY_LIMIT_BYTES", 1024..=16 * 1024 * 1024, c.body_limit)?;
        c.rpc_timeout = vars.millis("RPC_TIMEOUT_MS", 1..=600_000, 5000)?;
        if let Some(v) = vars.get("RPC_TIMEOUTS") {
            c.rpc_timeouts = parse_timeouts(&v)?;
        }
        c.health_timeout = vars.millis("HEALTH_TIMEOUT_MS", 1..=60_000, 1000)?;
        c.jwt_issuer = vars.text("JWT_ISSUER", &c.jwt_issuer);
        c.jwt_audience = vars.text("JWT_AUDIENCE", &c.jwt_audience);
        if let Some(v) = vars.get("JWT_PUBLIC_JWKS") {
            crate::auth::parse_jwks(&v).map_err(|e| invalid("JWT_PUBLIC_JWKS", &v, e))?;
            c.jwks = Some(v);
        }
        c.jwks_refresh_min_interval =
            vars.millis("JWKS_REFRESH_MIN_INTERVAL_MS", 1..=3_600_000, 10_000)?;
        c.jwks_max_age = vars.secs("JWKS_MAX_AGE_SECS", 1..=86_400, 300)?;
        let limits = &mut c.rate_limits;
        limits.auth_per_min = vars.number(
            "RATE_LIMIT_AUTH_PER_MIN",
            0..=1_000_000,
            limits.auth_per_min,
        )?;
        limits.anon_per_min = vars.number(
            "RATE_LIMIT_ANON_PER_MIN",
            0..=1_000_000,
            limits.anon_per_min,
        )?;
        limits.user_per_min = vars.number(
            "RATE_LIMIT_USER_PER_MIN",
            0..=1_000_000,
            limits.user_per_min,
        )?;
        if vars.is_set("TRUST_FORWARDED_FOR") {
            return Err(ConfigError::Rule(
                "TRUST_FORWARDED_FOR is gone: set TRUSTED_PROXY_HOPS to the number of proxies \
                 of yours in front of the gateway (1 for the old `true`)"
                    .into(),
            ));
        }
        c.trusted_proxy_hops = vars.number("TRUSTED_PROXY_HOPS", 0..=16, 0)?;
        c.ops.token = vars.secret("METRICS_TOKEN");
        if let Some(token) = &c.ops.token {
            vars.refuse_development_secret(app_env, "METRICS_TOKEN", token.expose())?;
            if token.expose().len() < 16 {
                return Err(ConfigError::InvalidSecret {
                    name: "METRICS_TOKEN",
                    message: "must be at least 16 characters".into(),
                });
            }
        }
        c.ops.internal = vars.parsed::<SocketAddr>("INTERNAL_ADDR")?;
        if app_env == proc_kit::AppEnv::Production && c.ops.is_open() {
            return Err(ConfigError::MissingInProduction {
                name: "METRICS_TOKEN",
                why: "or INTERNAL_ADDR: /metrics and the detailed /health/ready must not be \
                      open to everyone",
            });
        }
        if let Some(v) = vars.get("CORS_ALLOWED_ORIGINS") {
            c.cors_allowed_origins = v
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
        }
        c.shutdown_timeout = vars.secs("SHUTDOWN_TIMEOUT_S", 0..=600, 10)?;
        Ok(c)
    }

    /// Settings for tests: this bus, a free port on 127.0.0.1, two workers, rate limits
    /// too generous to get in the way (tests that want 429s set `rate_limits`).
    pub fn for_tests(bus: BusConfig) -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            bus,
            workers: 2,
            rate_limits: RateLimits {
                auth_per_min: 100_000,
                anon_per_min: 100_000,
                user_per_min: 100_000,
            },
            shutdown_timeout: Duration::from_secs(5),
            ..Self::defaults()
        }
    }

    fn defaults() -> Config {
        Config {
            addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            bus: BusConfig::default(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            body_limit: DEFAULT_BODY_LIMIT,
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            rpc_timeouts: HashMap::new(),
            health_timeout: Duration::from_secs(1),
            jwt_issuer: proto_msgs::users::DEFAULT_TOKEN_ISSUER.to_owned(),
            jwt_audience: proto_msgs::users::DEFAULT_TOKEN_AUDIENCE.to_owned(),
            jwks: None,
            jwks_refresh_min_interval: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(300),
            repliers: Repliers::default(),
            ops: crate::ops::OpsAccess::default(),
            rate_limits: RateLimits::default(),
            trusted_proxy_hops: 0,
            cors_allowed_origins: Vec::new(),
            shutdown_timeout: Duration::from_secs(10),
        }
    }

    /// The deadline of a call to `method`.
    pub fn timeout_for(&self, method: &str) -> Duration {
        self.rpc_timeouts
            .get(method)
            .copied()
            .unwrap_or(self.rpc_timeout)
    }
}

fn invalid(name: &'static str, value: &str, message: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        message: message.to_string(),
    }
}

fn parse_timeouts(value: &str) -> Result<HashMap<String, Duration>, ConfigError> {
    let mut map = HashMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((method, ms)) = entry.split_once('=') else {
            return Err(invalid(
                "RPC_TIMEOUTS",
                value,
                "expected method=milliseconds pairs, e.g. orders.create=8000",
            ));
        };
        let ms = ms
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| (1..=600_000).contains(ms))
            .ok_or_else(|| {
                invalid(
                    "RPC_TIMEOUTS",
                    value,
                    "each timeout must be a whole number of milliseconds from 1 to 600000",
                )
            })?;
        map.insert(method.trim().to_owned(), Duration::from_millis(ms));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_pairs(pairs))
    }

    #[test]
    fn defaults_match_the_docs() {
        let c = from(&[]).unwrap();
        assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(c.body_limit, 65536);
        assert_eq!(c.rpc_timeout, Duration::from_secs(5));
        assert_eq!(c.rate_limits, RateLimits::default());
        assert_eq!(c.jwt_issuer, "shop-user-svc");
        assert_eq!(c.jwt_audience, "shop");
        assert_eq!(c.trusted_proxy_hops, 0);
        assert!(c.cors_allowed_origins.is_empty());
    }

    #[test]
    fn reads_overrides() {
        let c = from(&[
            ("PORT", "9000"),
            ("RPC_TIMEOUT_MS", "250"),
            ("RPC_TIMEOUTS", "orders.create=8000, users.login=100"),
            ("RATE_LIMIT_AUTH_PER_MIN", "0"),
            ("TRUSTED_PROXY_HOPS", "2"),
            ("CORS_ALLOWED_ORIGINS", "http://a.test, http://b.test"),
        ])
        .unwrap();
        assert_eq!(c.addr.port(), 9000);
        assert_eq!(c.timeout_for("users.me"), Duration::from_millis(250));
        assert_eq!(c.timeout_for("orders.create"), Duration::from_secs(8));
        assert_eq!(c.rate_limits.auth_per_min, 0);
        assert_eq!(c.trusted_proxy_hops, 2);
        assert_eq!(
            c.cors_allowed_origins,
            vec!["http://a.test", "http://b.test"]
        );
        let c = from(&[("GATEWAY_ADDR", "127.0.0.1:7000"), ("PORT", "9000")]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:7000");
    }

    #[test]
    fn refuses_nonsense_with_the_variable_name() {
        for (name, value) in [
            ("PORT", "http"),
            ("RPC_TIMEOUT_MS", "0"),
            ("RPC_TIMEOUTS", "orders.create"),
            ("TRUSTED_PROXY_HOPS", "17"),
            ("JWT_PUBLIC_JWKS", "{not json"),
            ("HTTP_WORKERS", "0"),
            ("BODY_LIMIT_BYTES", "1"),
            ("SHUTDOWN_TIMEOUT_S", "-1"),
        ] {
            let err = from(&[(name, value)]).unwrap_err().to_string();
            assert!(err.starts_with(name), "{err}");
        }
    }
}
