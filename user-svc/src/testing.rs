//! For tests (feature `testing`): user-svc started in process on a database of its
//! own and a test's bus, the one way every test in the workspace starts it.

use crate::Config;
use proto_msgs::testing::TestBus;
use svc_kit::testing::{TestDb, TestService};

/// user-svc on `bus`, with a fresh database, after `adjust` had a go at the config.
pub async fn spawn(bus: &TestBus, adjust: impl FnOnce(&mut Config)) -> TestService<Config> {
    let db = TestDb::new().await;
    let mut config = Config::for_tests(bus.config(), &db.url);
    adjust(&mut config);
    TestService::start(config, db, |config, stop| {
        Box::pin(crate::start(config, stop))
    })
    .await
}
