//! The idempotent-consumer rule: an event's effect and the record that it was handled
//! commit together, so a redelivered event changes nothing.

use proto_msgs::CloudEvent;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// Records `event` as handled. Returns `true` the first time (apply the effect in the
/// same transaction) and `false` for a redelivery (do nothing).
pub async fn first_delivery<C: ConnectionTrait, T>(
    txn: &C,
    event: &CloudEvent<T>,
) -> Result<bool, DbErr> {
    let result = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO processed_events (event_id, event_type) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING",
            [event.id.into(), event.event_type.clone().into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}
