use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `seq` orders publication; `payload` is the whole CloudEvent.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE outbox (
                    seq         BIGSERIAL PRIMARY KEY,
                    id          UUID NOT NULL UNIQUE,
                    event_type  TEXT NOT NULL,
                    payload     JSONB NOT NULL,
                    traceparent TEXT,
                    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
                )",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE outbox")
            .await?;
        Ok(())
    }
}
