use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE known_orders (
                    order_id    UUID PRIMARY KEY,
                    user_id     UUID NOT NULL,
                    total_minor BIGINT NOT NULL,
                    cancelled   BOOLEAN NOT NULL DEFAULT false,
                    counted     BOOLEAN NOT NULL DEFAULT false,
                    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
                )",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE known_orders")
            .await?;
        Ok(())
    }
}
