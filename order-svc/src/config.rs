//! Settings of the service: exactly the settings every service has
//! ([`svc_kit::config::ServiceConfig`]), with the orders database as the local default.

use proc_kit::{ConfigError, Vars};
pub use svc_kit::config::ServiceConfig as Config;

/// Database of a developer machine: the local server, database `orders`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/orders";

/// Reads the settings (`DATABASE_URL`, `DB_*`, `AMQP_URL`, `BUS_*`, `RPC_PREFETCH`,
/// `OUTBOX_POLL_MS`, `EVENTS_AMQP_URL`, `APP_ENV`; see the README).
pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
    Config::from_vars(vars, DEFAULT_DATABASE_URL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_local_orders_database() {
        let c = from_vars(&Vars::from_pairs(&[])).unwrap();
        assert_eq!(c.db.url, DEFAULT_DATABASE_URL);
    }
}
