//! `known_orders`: one row per order seen in events, so that a cancellation subtracts
//! exactly once and events arriving out of order still add up.
//!
//! `counted`: the order's `order.created` was applied to `order_stats`.
//! `cancelled`: the order is cancelled (its total is not, or no longer, in the stats).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "known_orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub total_minor: i64,
    pub cancelled: bool,
    pub counted: bool,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
