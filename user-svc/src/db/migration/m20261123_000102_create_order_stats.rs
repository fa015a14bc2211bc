use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OrderStats {
    Table,
    UserId,
    OrderCount,
    TotalSpentMinor,
    LastOrderAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to users: an order event may arrive before the user does.
        manager
            .create_table(
                Table::create()
                    .table(OrderStats::Table)
                    .col(ColumnDef::new(OrderStats::UserId).uuid().primary_key())
                    .col(
                        ColumnDef::new(OrderStats::OrderCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(OrderStats::TotalSpentMinor)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(OrderStats::LastOrderAt).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(OrderStats::UpdatedAt)
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
            .drop_table(Table::drop().table(OrderStats::Table).to_owned())
            .await
    }
}
