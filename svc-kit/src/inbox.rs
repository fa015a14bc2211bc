//! The idempotent-consumer rule: an event's effect and the record that it was handled
//! commit together, so a redelivered event changes nothing.

use crate::entities::processed_event;
use proto_msgs::CloudEvent;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

/// Records `event` as handled. Returns `true` the first time (apply the effect in the
/// same transaction) and `false` for a redelivery (do nothing).
pub async fn first_delivery<C: ConnectionTrait, T>(
    txn: &C,
    event: &CloudEvent<T>,
) -> Result<bool, DbErr> {
    let record = processed_event::ActiveModel {
        event_id: Set(event.id),
        event_type: Set(event.event_type.clone()),
        ..Default::default()
    };
    // `INSERT .. ON CONFLICT (event_id) DO NOTHING`: a redelivery inserts no row.
    let inserted = processed_event::Entity::insert(record)
        .on_conflict(
            OnConflict::column(processed_event::Column::EventId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(inserted == 1)
}
