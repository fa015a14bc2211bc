use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OrderItems {
    Table,
    OrderId,
    Position,
    Name,
    PriceCents,
    Quantity,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `position` keeps the lines in the order the customer gave them; the subtotal
        // is derived (price × quantity), never stored twice.
        manager
            .create_table(
                Table::create()
                    .table(OrderItems::Table)
                    .col(ColumnDef::new(OrderItems::OrderId).uuid().not_null())
                    .col(ColumnDef::new(OrderItems::Position).integer().not_null())
                    .col(ColumnDef::new(OrderItems::Name).text().not_null())
                    .col(
                        ColumnDef::new(OrderItems::PriceCents)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(OrderItems::PriceCents).gt(0)),
                    )
                    .col(
                        ColumnDef::new(OrderItems::Quantity)
                            .integer()
                            .not_null()
                            .check(Expr::col(OrderItems::Quantity).gt(0)),
                    )
                    .primary_key(
                        Index::create()
                            .col(OrderItems::OrderId)
                            .col(OrderItems::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("order_items_order_id_fkey")
                            .from(OrderItems::Table, OrderItems::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OrderItems::Table).to_owned())
            .await
    }
}
