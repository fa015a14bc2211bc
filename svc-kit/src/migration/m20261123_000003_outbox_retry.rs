use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // An event no queue is bound to yet stays and is retried with a growing delay,
        // without holding up the events behind it.
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE outbox
                    ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
                    ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now()",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE outbox DROP COLUMN attempts, DROP COLUMN next_attempt_at",
            )
            .await?;
        Ok(())
    }
}
