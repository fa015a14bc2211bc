//! For tests (feature `testing`): order-svc started in process on a database of its
//! own and a test's bus, the one way every test in the workspace starts it.

use crate::Config;
use proto_msgs::testing::TestBus;
use svc_kit::testing::{TestDb, TestService};

/// order-svc on `bus`, with a fresh database, after `adjust` had a go at the config.
pub async fn spawn(bus: &TestBus, adjust: impl FnOnce(&mut Config)) -> TestService<Config> {
    let db = TestDb::new().await;
    let mut config = Config::for_tests(bus.config(), &db.url);
    adjust(&mut config);
    TestService::start(config, db, |config, stop| {
        Box::pin(crate::start(config, stop))
    })
    .await
}

/// The demo catalog (`deploy/catalog/demo.json`, what `make up` loads).
pub fn demo_catalog() -> Vec<proto_msgs::catalog::CreateProductRequest> {
    let text = include_str!("../../deploy/catalog/demo.json");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("deploy/catalog/demo.json: {e}"))
}

/// [`spawn`] with the demo catalog loaded (whole-system tests order from it).
pub async fn spawn_with_demo_catalog(
    bus: &TestBus,
    adjust: impl FnOnce(&mut Config),
) -> TestService<Config> {
    let db = TestDb::new().await;
    let mut config = Config::for_tests(bus.config(), &db.url);
    config.catalog_seed = demo_catalog();
    adjust(&mut config);
    TestService::start(config, db, |config, stop| {
        Box::pin(crate::start(config, stop))
    })
    .await
}
