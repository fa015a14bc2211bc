use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A projection of user-svc's users, fed by user events; `updated_at` is the
        // user's own timestamp, so an older event never overwrites a newer one.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE customers (
                    user_id    UUID PRIMARY KEY,
                    email      TEXT NOT NULL,
                    name       TEXT NOT NULL,
                    role       TEXT NOT NULL,
                    updated_at TIMESTAMPTZ NOT NULL
                )",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE customers")
            .await?;
        Ok(())
    }
}
