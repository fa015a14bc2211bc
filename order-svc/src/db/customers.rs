//! The `customers` projection (fed by `user.registered` / `user.updated`).

use super::entities::customer;
use chrono::{DateTime, Utc};
use proto_msgs::Role;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use uuid::Uuid;

/// What order-svc knows about a user, as of `updated_at` (the user's own timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub updated_at: DateTime<Utc>,
}

impl From<customer::Model> for Customer {
    fn from(m: customer::Model) -> Self {
        Customer {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            role: m.role.into(),
            updated_at: m.updated_at,
        }
    }
}

/// Writes `customer` unless a newer state is already stored: events may arrive out of
/// order (a retried `user.updated` behind a later one), and the newest must win.
/// Returns whether the row changed.
pub async fn upsert_if_newer<C: ConnectionTrait>(
    conn: &C,
    customer: &Customer,
) -> Result<bool, DbErr> {
    use customer::Column;
    let row = customer::ActiveModel {
        user_id: Set(customer.user_id),
        email: Set(customer.email.clone()),
        name: Set(customer.name.clone()),
        role: Set(customer.role.into()),
        updated_at: Set(customer.updated_at),
    };
    let changed = customer::Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::UserId)
                .update_columns([Column::Email, Column::Name, Column::Role, Column::UpdatedAt])
                .action_and_where(
                    Expr::col((customer::Entity, Column::UpdatedAt))
                        .lt(Expr::col((Alias::new("excluded"), Column::UpdatedAt))),
                )
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(changed == 1)
}

/// The projected customer, if any event about them has arrived.
pub async fn find<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> Result<Option<Customer>, DbErr> {
    Ok(customer::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .map(Customer::from))
}
