use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Sku,
    Name,
    Description,
    Category,
    PriceCents,
    Stock,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `stock >= 0` is the last word on overselling: even a bug in the reservation
        // cannot commit a negative stock.
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(ColumnDef::new(Products::Id).uuid().primary_key())
                    .col(ColumnDef::new(Products::Sku).text().not_null().unique_key())
                    .col(ColumnDef::new(Products::Name).text().not_null())
                    .col(
                        ColumnDef::new(Products::Description)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(Products::Category).text().not_null())
                    .col(
                        ColumnDef::new(Products::PriceCents)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Products::PriceCents).gt(0)),
                    )
                    .col(
                        ColumnDef::new(Products::Stock)
                            .big_integer()
                            .not_null()
                            .default(0)
                            .check(Expr::col(Products::Stock).gte(0)),
                    )
                    .col(
                        ColumnDef::new(Products::Active)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(
                        ColumnDef::new(Products::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Func::cust("now")),
                    )
                    .col(
                        ColumnDef::new(Products::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Func::cust("now")),
                    )
                    .to_owned(),
            )
            .await?;
        // Serves `catalog.list` (by category, by name).
        manager
            .create_index(
                Index::create()
                    .name("products_category_name")
                    .table(Products::Table)
                    .col(Products::Category)
                    .col(Products::Name)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Products::Table).to_owned())
            .await
    }
}
