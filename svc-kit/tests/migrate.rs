//! Several instances starting at once on a fresh database migrate it exactly once.

use futures::future::join_all;
use sea_orm::{EntityTrait, PaginatorTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait, seaql_migrations};
use svc_kit::db::{DbConfig, connect, migrate};
use svc_kit::testing::TestDb;

struct Migrator;
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        svc_kit::migration::migrations()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_start_ups_migrate_once() {
    let test_db = TestDb::new().await;
    let mut pools = Vec::new();
    for _ in 0..4 {
        pools.push(connect(&DbConfig::new(test_db.url.clone())).await.unwrap());
    }
    let results = join_all(pools.iter().map(migrate::<Migrator>)).await;
    for r in &results {
        assert!(r.is_ok(), "every instance starts: {r:?}");
    }
    let applied = seaql_migrations::Entity::find()
        .count(&pools[0])
        .await
        .unwrap();
    assert_eq!(applied as usize, svc_kit::migration::migrations().len());
    for db in pools {
        db.close().await.unwrap();
    }
}
