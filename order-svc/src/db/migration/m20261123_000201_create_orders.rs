use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    UserId,
    Status,
    TotalCents,
    IdempotencyKey,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to customers: the gateway vouches for the actor, and an order
        // placed before `user.registered` arrives must still be accepted.
        // The unique (user_id, idempotency_key) makes a retried create race-safe; NULL
        // keys never conflict.
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(ColumnDef::new(Orders::Id).uuid().primary_key())
                    .col(ColumnDef::new(Orders::UserId).uuid().not_null())
                    .col(ColumnDef::new(Orders::Status).text().not_null().check(
                        Expr::col(Orders::Status).is_in([
                            "PENDING",
                            "CONFIRMED",
                            "SHIPPED",
                            "DELIVERED",
                            "CANCELLED",
                        ]),
                    ))
                    .col(
                        ColumnDef::new(Orders::TotalCents)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Orders::TotalCents).gt(0)),
                    )
                    .col(ColumnDef::new(Orders::IdempotencyKey).text())
                    .col(
                        ColumnDef::new(Orders::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Func::cust("now")),
                    )
                    .col(
                        ColumnDef::new(Orders::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Func::cust("now")),
                    )
                    .index(
                        Index::create()
                            .name("orders_user_idempotency_key")
                            .col(Orders::UserId)
                            .col(Orders::IdempotencyKey)
                            .unique(),
                    )
                    .to_owned(),
            )
            .await?;
        // Serves `orders.list` (newest first per user, keyset), with and without status.
        manager
            .create_index(
                Index::create()
                    .name("orders_user_newest")
                    .table(Orders::Table)
                    .col(Orders::UserId)
                    .col((Orders::CreatedAt, IndexOrder::Desc))
                    .col((Orders::Id, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("orders_user_status_newest")
                    .table(Orders::Table)
                    .col(Orders::UserId)
                    .col(Orders::Status)
                    .col((Orders::CreatedAt, IndexOrder::Desc))
                    .col((Orders::Id, IndexOrder::Desc))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Orders::Table).to_owned())
            .await
    }
}
