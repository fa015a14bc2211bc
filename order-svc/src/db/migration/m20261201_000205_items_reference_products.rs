use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OrderItems {
    Table,
    ProductId,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    IdempotencyKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A line names its product (NULL only on lines placed before the catalog); name
        // and price stay copied into the line, so later catalog changes don't touch it.
        manager
            .alter_table(
                Table::alter()
                    .table(OrderItems::Table)
                    .add_column(ColumnDef::new(OrderItems::ProductId).uuid().null())
                    .add_foreign_key(
                        TableForeignKey::new()
                            .name("order_items_product_id_fkey")
                            .from_tbl(OrderItems::Table)
                            .from_col(OrderItems::ProductId)
                            .to_tbl(Products::Table)
                            .to_col(Products::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Retries are recognised by svc-kit's stored replies now (one mechanism for
        // every method); the column and its unique index go.
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .drop_column(Orders::IdempotencyKey)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(ColumnDef::new(Orders::IdempotencyKey).text())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OrderItems::Table)
                    .drop_column(OrderItems::ProductId)
                    .to_owned(),
            )
            .await
    }
}
