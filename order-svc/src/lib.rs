//! # order-svc: orders, their status machine and order events, over the bus only
//!
//! No HTTP port: requests (`orders.*` and `catalog.*`) arrive on `orders.rpc` and are
//! answered on the caller's reply queue; events go out through a transactional outbox
//! and come in on `orders.events`.
//!
//! - [`config`]: settings from the environment (or `Config::for_tests`).
//! - [`handlers`]: one file per RPC method (`orders.create`, `.get`, `.list`,
//!   `.update_status`; the catalog's `catalog.list`, `.get`, `.create`, `.update`,
//!   `.adjust_stock` under `handlers::catalog`) and the server that routes to them.
//!   Every mutating method stores its reply with its effect (svc-kit's stored replies).
//! - [`domain`]: the contract's self-validating request parts (order lines, list
//!   cursor) as the service uses them.
//! - [`db`]: the schema (migrations, run at start-up) and the SQL of orders and the
//!   customers projection. Money is BIGINT cents.
//! - [`events`]: `order.created` / `order.updated` for the outbox, and the consumer of
//!   `user.registered` / `user.updated` into `customers`.
//! - [`error`]: the one error type and its one mapping to bus error codes.
//! - [`seed`]: the demo catalog loaded at start-up (`CATALOG_SEED`).
//!
//! [`start`] hands svc-kit's skeleton the methods and event handlers; the skeleton does
//! database + migrations, outbox relay, event consumer, RPC server (with
//! `orders.sys.health` and `orders.sys.metrics`) and the ordered stop.

pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod handlers;
pub mod seed;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::Config;
pub use svc_kit::service::{Running, StartError};

use db::migration::Migrator;
use proto_msgs::CancellationToken;
use std::sync::Arc;
use svc_kit::service::{Identity, Wiring};

/// Who this service is on the bus and in the logs.
pub const IDENTITY: Identity = Identity {
    service: proto_msgs::orders::SERVICE,
    process: events::SOURCE,
};

/// Connects, migrates, loads the catalog seed (missing SKUs only), starts outbox relay,
/// event consumer and RPC server (svc-kit's skeleton), and returns once requests are
/// being consumed.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    let seed = config.catalog_seed;
    svc_kit::service::start::<Migrator, _, _>(
        IDENTITY,
        config.service,
        shutdown,
        |parts| async move {
            let added = seed::load(&parts.db, &seed)
                .await
                .map_err(|e| StartError::Service(format!("catalog seed: {e}")))?;
            if !seed.is_empty() {
                tracing::info!(added, of = seed.len(), "catalog seed loaded");
            }
            let app = Arc::new(handlers::App {
                db: parts.db.clone(),
                reads: parts.reads.clone(),
                outbox: parts.outbox.clone(),
            });
            Ok(Wiring {
                server: handlers::server(&parts.bus, app),
                consumer: Some(events::consumer(&parts.bus, parts.db)),
                prune: None,
            })
        },
    )
    .await
}

/// [`start`], then wait until `shutdown` has stopped everything: what `main` calls.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown).await?.stopped().await;
    Ok(())
}
