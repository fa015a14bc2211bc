use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Emails are stored lower-cased (the CHECK keeps it so) under a unique
        // constraint: two concurrent registrations of one address can't both commit.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE users (
                    id            UUID PRIMARY KEY,
                    email         TEXT NOT NULL,
                    name          TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
                    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
                    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
                    CONSTRAINT users_email_key UNIQUE (email),
                    CONSTRAINT users_email_lower CHECK (email = lower(email))
                )",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE users")
            .await?;
        Ok(())
    }
}
