use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Seq,
    Id,
    EventType,
    Payload,
    Traceparent,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `seq` orders publication; `payload` is the whole CloudEvent.
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    // `bigserial`, as the table was first created (the builder's
                    // auto-increment would make an identity column instead).
                    .col(
                        ColumnDef::new(Outbox::Seq)
                            .custom("bigserial")
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Outbox::Id).uuid().not_null().unique_key())
                    .col(ColumnDef::new(Outbox::EventType).text().not_null())
                    .col(ColumnDef::new(Outbox::Payload).json_binary().not_null())
                    .col(ColumnDef::new(Outbox::Traceparent).text())
                    .col(
                        ColumnDef::new(Outbox::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Func::cust("now")),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
