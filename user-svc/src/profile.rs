//! Reading a user together with their order statistics (`users.me`, `users.get`,
//! `users.update`).

use crate::db::entities::{order_stats, user};
use proto_msgs::users::{OrderStats, UserProfile};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use uuid::Uuid;

/// The profile of `id`, or `None` when there is no such user.
pub async fn load<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<UserProfile>, DbErr> {
    let Some(found) = user::Entity::find_by_id(id).one(conn).await? else {
        return Ok(None);
    };
    Ok(Some(with_stats(conn, found).await?))
}

/// `found`'s profile: stats default to zero when no order was seen yet.
pub async fn with_stats<C: ConnectionTrait>(
    conn: &C,
    found: user::Model,
) -> Result<UserProfile, DbErr> {
    let stats = order_stats::Entity::find_by_id(found.id)
        .one(conn)
        .await?
        .map(OrderStats::from)
        .unwrap_or_default();
    Ok(UserProfile {
        user: found.into(),
        order_stats: stats,
    })
}
