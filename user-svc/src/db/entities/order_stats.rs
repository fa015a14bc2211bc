//! `order_stats`: per-user order statistics built from order events. No foreign key to
//! `users`: stats may arrive before the user is known here.

use proto_msgs::Money;
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_stats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub order_count: i64,
    /// Minor units (cents); cancelled orders excluded.
    pub total_spent_minor: i64,
    pub last_order_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}

impl From<Model> for proto_msgs::users::OrderStats {
    fn from(m: Model) -> Self {
        proto_msgs::users::OrderStats {
            order_count: m.order_count,
            total_spent: Money::from_minor(m.total_spent_minor),
            last_order_at: m.last_order_at,
        }
    }
}
