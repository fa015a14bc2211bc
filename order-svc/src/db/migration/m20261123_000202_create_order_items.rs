use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `position` keeps the lines in the order the customer gave them; the subtotal
        // is derived (price × quantity), never stored twice.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE order_items (
                    order_id    UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
                    position    INTEGER NOT NULL,
                    name        TEXT NOT NULL,
                    price_cents BIGINT NOT NULL CHECK (price_cents > 0),
                    quantity    INTEGER NOT NULL CHECK (quantity > 0),
                    PRIMARY KEY (order_id, position)
                )",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE order_items")
            .await?;
        Ok(())
    }
}
