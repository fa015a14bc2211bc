//! Tables shared by both services. Each service's `Migrator` lists [`migrations`]
//! before its own, so a fresh database gets everything at start-up.

use sea_orm_migration::MigrationTrait;

mod m20261123_000001_create_outbox;
mod m20261123_000002_create_processed_events;
mod m20261123_000003_outbox_retry;
mod m20261201_000004_create_stored_replies;

/// The outbox, inbox and stored-replies tables, in order.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261123_000001_create_outbox::Migration),
        Box::new(m20261123_000002_create_processed_events::Migration),
        Box::new(m20261123_000003_outbox_retry::Migration),
        Box::new(m20261201_000004_create_stored_replies::Migration),
    ]
}
