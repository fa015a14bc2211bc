use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum KnownOrders {
    Table,
    OrderId,
    UserId,
    TotalMinor,
    Cancelled,
    Counted,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KnownOrders::Table)
                    .col(ColumnDef::new(KnownOrders::OrderId).uuid().primary_key())
                    .col(ColumnDef::new(KnownOrders::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(KnownOrders::TotalMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(KnownOrders::Cancelled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(KnownOrders::Counted)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(KnownOrders::UpdatedAt)
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
            .drop_table(Table::drop().table(KnownOrders::Table).to_owned())
            .await
    }
}
