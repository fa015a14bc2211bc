use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Customers {
    Table,
    UserId,
    Email,
    Name,
    Role,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A projection of user-svc's users, fed by user events; `updated_at` is the
        // user's own timestamp, so an older event never overwrites a newer one.
        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .col(ColumnDef::new(Customers::UserId).uuid().primary_key())
                    .col(ColumnDef::new(Customers::Email).text().not_null())
                    .col(ColumnDef::new(Customers::Name).text().not_null())
                    .col(ColumnDef::new(Customers::Role).text().not_null())
                    .col(
                        ColumnDef::new(Customers::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Customers::Table).to_owned())
            .await
    }
}
