//! `order_items`: the lines of an order, `position` in the order the customer gave
//! them. The subtotal is derived (price × quantity), never stored.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    /// The catalog product (NULL on lines placed before the catalog).
    pub product_id: Option<Uuid>,
    pub name: String,
    /// Minor units (cents).
    pub price_cents: i64,
    pub quantity: i32,
    #[sea_orm(belongs_to, from = "order_id", to = "id")]
    pub order: BelongsTo<super::order::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
