use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PasswordThrottle {
    Table,
    Key,
    Failures,
    LastAttemptAt,
    LockedUntil,
}

const BY_LAST_ATTEMPT: &str = "password_throttle_last_attempt_at_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PasswordThrottle::Table)
                    .col(ColumnDef::new(PasswordThrottle::Key).binary().primary_key())
                    .col(
                        ColumnDef::new(PasswordThrottle::Failures)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PasswordThrottle::LastAttemptAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PasswordThrottle::LockedUntil).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        // Pruning finds the quiet rows by this.
        manager
            .create_index(
                Index::create()
                    .name(BY_LAST_ATTEMPT)
                    .table(PasswordThrottle::Table)
                    .col(PasswordThrottle::LastAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PasswordThrottle::Table).to_owned())
            .await
    }
}
