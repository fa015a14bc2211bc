//! Settings from environment variables: one reader, one rule per variable.
//!
//! Every setting has a default that works on a developer machine; empty counts as
//! unset; a value that is set but unusable is a start-up error naming the variable and
//! the rule (`DB_MAX_CONNECTIONS: must be a whole number from 1 to 1000 (got "0")`),
//! never silently clamped. Values of secret settings are never repeated in errors or
//! `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message} (got {value:?})")]
    Invalid {
        name: &'static str,
        value: String,
        message: String,
    },
    #[error("{name}: {message}")]
    InvalidSecret { name: &'static str, message: String },
    #[error("{name} must be set when APP_ENV=production ({why})")]
    MissingInProduction {
        name: &'static str,
        why: &'static str,
    },
    /// A rule between settings (two that exclude each other, one that needs another).
    #[error("{0}")]
    Rule(String),
}

/// `APP_ENV`: `development` relaxes secrets (local defaults, generated keys);
/// `production` refuses to start without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppEnv {
    #[default]
    Development,
    Production,
}

/// The passwords this repository ships for development: the local broker's `guest`, the
/// compose broker's and databases' defaults (docker-compose.yml, deploy/rabbitmq), the
/// default admin password of `make up`. Production refuses every one of them.
pub const DEVELOPMENT_SECRETS: &[&str] = &[
    "guest",
    "admin-dev-password",
    "gateway-dev-password",
    "user-svc-dev-password",
    "order-svc-dev-password",
    "users-dev-password",
    "orders-dev-password",
    "grafana-dev-password",
    "admin-password",
    "metrics-dev-token",
];

/// The password in a URL (`scheme://user:password@host/…`), percent-decoded; for an
/// `amqp://` URL without one, `guest` (what the broker is then asked for).
pub fn url_password(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    match url.password() {
        Some(p) => percent_encoding::percent_decode_str(p)
            .decode_utf8()
            .ok()
            .map(|p| p.into_owned()),
        None if url.scheme().starts_with("amqp") => Some("guest".to_owned()),
        None => None,
    }
}

/// A value that must not be shown: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where settings come from: the process environment, or pairs in tests.
pub struct Vars {
    lookup: Lookup,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vars").finish_non_exhaustive()
    }
}

impl Vars {
    /// The process environment.
    pub fn from_env() -> Vars {
        Vars {
            lookup: Box::new(|name| std::env::var(name).ok()),
        }
    }

    /// Fixed pairs (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Vars {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Vars {
            lookup: Box::new(move |name| map.get(name).cloned()),
        }
    }

    /// The value, trimmed; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Text, or `default`.
    pub fn text(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// A secret, never shown.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(Secret)
    }

    /// A number in `range`, or `default` when unset.
    pub fn number<T>(
        &self,
        name: &'static str,
        range: RangeInclusive<T>,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        Ok(self.optional_number(name, range)?.unwrap_or(default))
    }

    /// A number in `range`, or `None` when unset.
    pub fn optional_number<T>(
        &self,
        name: &'static str,
        range: RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(v) if range.contains(&v) => Ok(Some(v)),
            _ => Err(ConfigError::Invalid {
                name,
                value: text,
                message: format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            }),
        }
    }

    /// Milliseconds in `range`, or `default_ms`.
    pub fn millis(
        &self,
        name: &'static str,
        range: RangeInclusive<u64>,
        default_ms: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, range, default_ms)
            .map(Duration::from_millis)
    }

    /// Seconds in `range`, or `default_s`.
    pub fn secs(
        &self,
        name: &'static str,
        range: RangeInclusive<u64>,
        default_s: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, range, default_s).map(Duration::from_secs)
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default`.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name,
                value: text,
                message: "must be true or false".to_owned(),
            }),
        }
    }

    /// Any value with a `FromStr` whose error explains itself, or `None` when unset.
    pub fn parsed<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        text.parse::<T>()
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                name,
                value: text,
                message: e.to_string(),
            })
    }

    /// `APP_ENV`: `development` (the default) or `production`.
    pub fn app_env(&self) -> Result<AppEnv, ConfigError> {
        match self.get("APP_ENV").as_deref() {
            None | Some("development") => Ok(AppEnv::Development),
            Some("production") => Ok(AppEnv::Production),
            Some(other) => Err(ConfigError::Invalid {
                name: "APP_ENV",
                value: other.to_owned(),
                message: "must be \"development\" or \"production\"".to_owned(),
            }),
        }
    }

    /// In production, the secret `value` of `name` (a password, or a URL holding one)
    /// must not be one this repository ships for development.
    pub fn refuse_development_secret(
        &self,
        env: AppEnv,
        name: &'static str,
        value: &str,
    ) -> Result<(), ConfigError> {
        if env != AppEnv::Production {
            return Ok(());
        }
        let secret = url_password(value).unwrap_or_else(|| value.to_owned());
        if DEVELOPMENT_SECRETS.contains(&secret.as_str()) {
            return Err(ConfigError::InvalidSecret {
                name,
                message: "holds a development password that this repository publishes; \
                          APP_ENV=production refuses it (set a secret of your own)"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// In production, `name` must be set: its local default would be used otherwise.
    pub fn require_in_production(
        &self,
        env: AppEnv,
        name: &'static str,
        why: &'static str,
    ) -> Result<(), ConfigError> {
        if env == AppEnv::Production && !self.is_set(name) {
            return Err(ConfigError::MissingInProduction { name, why });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_range_checked_never_clamped() {
        let v = Vars::from_pairs(&[("N", "0"), ("M", " 12 "), ("X", "twelve")]);
        let err = v.number("N", 1..=1000u32, 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "N: must be a whole number from 1 to 1000 (got \"0\")"
        );
        assert_eq!(v.number("M", 1..=1000u32, 10), Ok(12));
        assert!(v.number("X", 1..=1000u32, 10).is_err());
        assert_eq!(v.number("UNSET", 1..=1000u32, 10), Ok(10));
    }

    #[test]
    fn empty_is_unset_and_secrets_hide() {
        let v = Vars::from_pairs(&[("E", "  "), ("S", "hunter2")]);
        assert_eq!(v.get("E"), None);
        assert_eq!(format!("{:?}", v.secret("S")), "Some(***)");
        assert_eq!(v.secret("S").unwrap().expose(), "hunter2");
    }

    #[test]
    fn app_env_and_production_rules() {
        assert_eq!(Vars::from_pairs(&[]).app_env(), Ok(AppEnv::Development));
        let prod = Vars::from_pairs(&[("APP_ENV", "production")]);
        assert_eq!(prod.app_env(), Ok(AppEnv::Production));
        assert!(Vars::from_pairs(&[("APP_ENV", "prod")]).app_env().is_err());
        let err = prod
            .require_in_production(AppEnv::Production, "AMQP_URL", "it holds the password")
            .unwrap_err();
        assert!(err.to_string().starts_with("AMQP_URL must be set"), "{err}");
    }

    #[test]
    fn production_refuses_the_development_secrets() {
        let v = Vars::from_pairs(&[]);
        let prod = AppEnv::Production;
        for dev in [
            "amqp://guest:guest@mq:5672/%2f",
            "amqp://mq:5672/%2f",
            "amqp://gateway:gateway-dev-password@mq/shop",
            "postgres://users:users-dev-password@db/users",
            "admin-password",
        ] {
            let err = v.refuse_development_secret(prod, "X", dev).unwrap_err();
            assert!(!err.to_string().contains("dev-password"), "{err}");
        }
        assert!(
            v.refuse_development_secret(prod, "X", "amqp://u:Str0ng%21@mq/shop")
                .is_ok()
        );
        assert!(
            v.refuse_development_secret(prod, "X", "postgres://u@db/x")
                .is_ok()
        );
        assert!(
            v.refuse_development_secret(AppEnv::Development, "X", "amqp://guest:guest@h")
                .is_ok()
        );
    }

    #[test]
    fn flags() {
        let v = Vars::from_pairs(&[("A", "yes"), ("B", "off"), ("C", "maybe")]);
        assert_eq!(v.flag("A", false), Ok(true));
        assert_eq!(v.flag("B", true), Ok(false));
        assert!(v.flag("C", true).is_err());
    }
}
