//! Migrations, applied by [`Migrator`] at start-up: svc-kit's outbox and inbox tables
//! first, then ours, so a fresh database needs no manual step.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261123_000101_create_users;
mod m20261123_000102_create_order_stats;
mod m20261123_000103_create_known_orders;
mod m20261201_000104_create_sessions;
mod m20261201_000120_create_password_throttle;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = svc_kit::migration::migrations();
        all.push(Box::new(m20261123_000101_create_users::Migration));
        all.push(Box::new(m20261123_000102_create_order_stats::Migration));
        all.push(Box::new(m20261123_000103_create_known_orders::Migration));
        all.push(Box::new(m20261201_000104_create_sessions::Migration));
        all.push(Box::new(
            m20261201_000120_create_password_throttle::Migration,
        ));
        all
    }
}
