use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StoredReplies {
    Table,
    Method,
    Scope,
    Key,
    Fingerprint,
    Reply,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per (method, caller, key): the reply of a mutating call, written in the
        // transaction of its effect. `reply` is NULL only inside that transaction (the
        // row is claimed first, so a concurrent duplicate waits for the first's commit).
        manager
            .create_table(
                Table::create()
                    .table(StoredReplies::Table)
                    .col(ColumnDef::new(StoredReplies::Method).text().not_null())
                    .col(ColumnDef::new(StoredReplies::Scope).text().not_null())
                    .col(ColumnDef::new(StoredReplies::Key).text().not_null())
                    .col(ColumnDef::new(StoredReplies::Fingerprint).text().not_null())
                    .col(ColumnDef::new(StoredReplies::Reply).json_binary().null())
                    .col(
                        ColumnDef::new(StoredReplies::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Func::cust("now")),
                    )
                    .primary_key(
                        Index::create()
                            .col(StoredReplies::Method)
                            .col(StoredReplies::Scope)
                            .col(StoredReplies::Key),
                    )
                    .to_owned(),
            )
            .await?;
        // Pruning deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("stored_replies_created_at_idx")
                    .table(StoredReplies::Table)
                    .col(StoredReplies::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("processed_events_processed_at_idx")
                    .table(ProcessedEvents::Table)
                    .col(ProcessedEvents::ProcessedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("processed_events_processed_at_idx")
                    .table(ProcessedEvents::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(StoredReplies::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ProcessedEvents {
    Table,
    ProcessedAt,
}
