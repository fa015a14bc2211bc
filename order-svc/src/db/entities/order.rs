//! `orders`: one row per order; its lines are in [`order_item`](super::order_item).

use proto_msgs::orders::OrderStatus;
use sea_orm::entity::prelude::*;

/// `status` column (a CHECK keeps it to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum DbStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "CONFIRMED")]
    Confirmed,
    #[sea_orm(string_value = "SHIPPED")]
    Shipped,
    #[sea_orm(string_value = "DELIVERED")]
    Delivered,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

impl From<DbStatus> for OrderStatus {
    fn from(status: DbStatus) -> OrderStatus {
        match status {
            DbStatus::Pending => OrderStatus::Pending,
            DbStatus::Confirmed => OrderStatus::Confirmed,
            DbStatus::Shipped => OrderStatus::Shipped,
            DbStatus::Delivered => OrderStatus::Delivered,
            DbStatus::Cancelled => OrderStatus::Cancelled,
        }
    }
}

impl From<OrderStatus> for DbStatus {
    fn from(status: OrderStatus) -> DbStatus {
        match status {
            OrderStatus::Pending => DbStatus::Pending,
            OrderStatus::Confirmed => DbStatus::Confirmed,
            OrderStatus::Shipped => DbStatus::Shipped,
            OrderStatus::Delivered => DbStatus::Delivered,
            OrderStatus::Cancelled => DbStatus::Cancelled,
        }
    }
}

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: DbStatus,
    /// Minor units (cents).
    pub total_cents: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(has_many)]
    pub items: HasMany<super::order_item::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
