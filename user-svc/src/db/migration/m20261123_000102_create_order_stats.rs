use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to users: an order event may arrive before the user does.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE order_stats (
                    user_id           UUID PRIMARY KEY,
                    order_count       BIGINT NOT NULL DEFAULT 0,
                    total_spent_minor BIGINT NOT NULL DEFAULT 0,
                    last_order_at     TIMESTAMPTZ,
                    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
                )",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE order_stats")
            .await?;
        Ok(())
    }
}
