//! Settings of the service: the settings every service has
//! ([`svc_kit::config::ServiceConfig`], with the orders database as the local default)
//! and the demo catalog to load at start (`CATALOG_SEED`).

use proc_kit::{ConfigError, Vars};
use proto_msgs::catalog::CreateProductRequest;
use proto_msgs::config::BusConfig;
use svc_kit::config::ServiceConfig;

/// Database of a developer machine: the local server, database `orders`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/orders";

/// Everything order-svc is started with.
#[derive(Clone)]
pub struct Config {
    /// What every service has: broker, database, prefetch, outbox poll, `APP_ENV`.
    pub service: ServiceConfig,
    /// Products added at start when their SKU is missing: the file `CATALOG_SEED`
    /// names (a JSON array of `catalog.create` bodies), read and checked with the rest
    /// of the settings; none when unset.
    pub catalog_seed: Vec<CreateProductRequest>,
}

impl Config {
    /// For tests: the test's bus and database, no seed.
    pub fn for_tests(bus: BusConfig, database_url: &str) -> Self {
        Config {
            service: ServiceConfig::for_tests(bus, database_url),
            catalog_seed: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("service", &self.service)
            .field("catalog_seed_products", &self.catalog_seed.len())
            .finish()
    }
}

/// Reads the settings (`DATABASE_URL`, `DB_*`, `AMQP_URL`, `BUS_*`, `RPC_PREFETCH`,
/// `OUTBOX_POLL_MS`, `EVENTS_AMQP_URL`, `APP_ENV`, `CATALOG_SEED`; see the README).
pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
    let service = ServiceConfig::from_vars(vars, DEFAULT_DATABASE_URL)?;
    let catalog_seed = match vars.get("CATALOG_SEED") {
        Some(path) => crate::seed::read(std::path::Path::new(&path)).map_err(|message| {
            ConfigError::Invalid {
                name: "CATALOG_SEED",
                value: path.clone(),
                message,
            }
        })?,
        None => Vec::new(),
    };
    Ok(Config {
        service,
        catalog_seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_local_orders_database_and_no_seed() {
        let c = from_vars(&Vars::from_pairs(&[])).unwrap();
        assert_eq!(c.service.db.url, DEFAULT_DATABASE_URL);
        assert!(c.catalog_seed.is_empty());
    }

    #[test]
    fn reads_the_demo_catalog_and_refuses_a_missing_or_bad_seed() {
        let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/catalog/demo.json");
        let c = from_vars(&Vars::from_pairs(&[("CATALOG_SEED", demo)])).unwrap();
        assert!(!c.catalog_seed.is_empty());

        let err = from_vars(&Vars::from_pairs(&[("CATALOG_SEED", "/nonexistent.json")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("CATALOG_SEED"), "{err}");

        let bad = std::env::temp_dir().join(format!("seed-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&bad, r#"[{"sku": "X-1", "name": "x", "price": "-1"}]"#).unwrap();
        let err = from_vars(&Vars::from_pairs(&[(
            "CATALOG_SEED",
            bad.to_str().unwrap(),
        )]))
        .unwrap_err()
        .to_string();
        let _ = std::fs::remove_file(&bad);
        assert!(err.contains("[0]"), "the bad product's path: {err}");
    }
}
