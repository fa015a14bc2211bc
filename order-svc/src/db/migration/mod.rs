//! The service's migrations, run at start-up: svc-kit's outbox and inbox first, then
//! ours, one per file.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261123_000201_create_orders;
mod m20261123_000202_create_order_items;
mod m20261123_000203_create_customers;
mod m20261201_000204_create_products;
mod m20261201_000205_items_reference_products;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = svc_kit::migration::migrations();
        all.push(Box::new(m20261123_000201_create_orders::Migration));
        all.push(Box::new(m20261123_000202_create_order_items::Migration));
        all.push(Box::new(m20261123_000203_create_customers::Migration));
        all.push(Box::new(m20261201_000204_create_products::Migration));
        all.push(Box::new(
            m20261201_000205_items_reference_products::Migration,
        ));
        all
    }
}
