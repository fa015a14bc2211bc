use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // No foreign key to customers: the gateway vouches for the actor, and an order
        // placed before `user.registered` arrives must still be accepted.
        // The unique (user_id, idempotency_key) makes a retried create race-safe; NULL
        // keys never conflict.
        db.execute_unprepared(
            "CREATE TABLE orders (
                id              UUID PRIMARY KEY,
                user_id         UUID NOT NULL,
                status          TEXT NOT NULL CHECK (status IN
                                  ('PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
                total_cents     BIGINT NOT NULL CHECK (total_cents > 0),
                idempotency_key TEXT,
                created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
                updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
                CONSTRAINT orders_user_idempotency_key UNIQUE (user_id, idempotency_key)
            )",
        )
        .await?;
        // Serves `orders.list` (newest first per user, keyset), with and without status.
        db.execute_unprepared(
            "CREATE INDEX orders_user_newest ON orders (user_id, created_at DESC, id DESC)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX orders_user_status_newest ON orders (user_id, status, created_at DESC, id DESC)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE orders")
            .await?;
        Ok(())
    }
}
