//! Per-user order statistics from order-svc's events.
//!
//! Each event is applied in one transaction together with its inbox record
//! ([`svc_kit::inbox::first_delivery`]), so a redelivered event changes nothing. A
//! database outage is a transient error: the consumer retries until it is back.
//!
//! `known_orders` makes the effect per order exact, whatever the arrival order:
//! - `order.created` counts an order once (`counted`), adding its total unless the
//!   order is already known as cancelled;
//! - `order.updated` to `CANCELLED` marks it cancelled once, subtracting its total only
//!   if it had been counted; a cancellation seen before its `order.created` is
//!   remembered, and the late `order.created` then counts the order without its total.
//! - other status changes don't touch the statistics.

use proto_msgs::events::types;
use proto_msgs::orders::{OrderCreated, OrderStatus, OrderUpdated};
use proto_msgs::{CloudEvent, EventConsumer, HandlerError, UseBus, users};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use svc_kit::db::handler_error;

/// The consumer of `users.events`, bound to `order.created` and `order.updated`.
pub fn consumer(bus: impl Into<UseBus>, db: DatabaseConnection) -> EventConsumer {
    let db2 = db.clone();
    EventConsumer::new(bus, users::SERVICE)
        .on(types::ORDER_CREATED, move |ev: CloudEvent<OrderCreated>| {
            let db = db.clone();
            async move { apply(&db, &ev, created(&ev.data)).await }
        })
        .on(types::ORDER_UPDATED, move |ev: CloudEvent<OrderUpdated>| {
            let db = db2.clone();
            async move { apply(&db, &ev, updated(&ev.data)).await }
        })
}

/// What one event does to the tables.
enum Effect {
    Created {
        order_id: uuid::Uuid,
        user_id: uuid::Uuid,
        total_minor: i64,
        cancelled: bool,
        at: chrono::DateTime<chrono::Utc>,
    },
    Cancelled {
        order_id: uuid::Uuid,
        user_id: uuid::Uuid,
        total_minor: i64,
    },
    Nothing,
}

fn created(data: &OrderCreated) -> Effect {
    Effect::Created {
        order_id: data.order_id,
        user_id: data.user_id,
        total_minor: data.total.minor(),
        cancelled: data.status == OrderStatus::Cancelled,
        at: data.created_at,
    }
}

fn updated(data: &OrderUpdated) -> Effect {
    if data.new_status == OrderStatus::Cancelled {
        Effect::Cancelled {
            order_id: data.order_id,
            user_id: data.user_id,
            total_minor: data.total.minor(),
        }
    } else {
        Effect::Nothing
    }
}

async fn apply<T>(
    db: &DatabaseConnection,
    event: &CloudEvent<T>,
    effect: Effect,
) -> Result<(), HandlerError> {
    let run = async {
        let txn = db.begin().await?;
        if svc_kit::inbox::first_delivery(&txn, event).await? {
            apply_effect(&txn, effect).await?;
        } else {
            tracing::debug!("event already handled: skipped");
        }
        txn.commit().await
    };
    run.await.map_err(handler_error)
}

async fn apply_effect<C: ConnectionTrait>(txn: &C, effect: Effect) -> Result<(), DbErr> {
    match effect {
        Effect::Created {
            order_id,
            user_id,
            total_minor,
            cancelled,
            at,
        } => {
            // Insert the order as counted, or mark a known one counted; no row back
            // means it was counted before (another event id for the same order).
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "INSERT INTO known_orders (order_id, user_id, total_minor, cancelled, counted)
                     VALUES ($1, $2, $3, $4, true)
                     ON CONFLICT (order_id) DO UPDATE
                        SET counted = true,
                            total_minor = EXCLUDED.total_minor,
                            cancelled = known_orders.cancelled OR EXCLUDED.cancelled,
                            updated_at = now()
                        WHERE NOT known_orders.counted
                     RETURNING cancelled",
                    [
                        order_id.into(),
                        user_id.into(),
                        total_minor.into(),
                        cancelled.into(),
                    ],
                ))
                .await?;
            let Some(row) = row else {
                return Ok(());
            };
            let cancelled: bool = row.try_get("", "cancelled")?;
            let added = if cancelled { 0 } else { total_minor };
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO order_stats (user_id, order_count, total_spent_minor, last_order_at)
                 VALUES ($1, 1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE
                    SET order_count = order_stats.order_count + 1,
                        total_spent_minor = order_stats.total_spent_minor + EXCLUDED.total_spent_minor,
                        last_order_at = GREATEST(order_stats.last_order_at, EXCLUDED.last_order_at),
                        updated_at = now()",
                [user_id.into(), added.into(), at.into()],
            ))
            .await?;
        }
        Effect::Cancelled {
            order_id,
            user_id,
            total_minor,
        } => {
            // Mark cancelled once; a cancellation of an order not seen yet is
            // remembered (not counted) for its late `order.created`.
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "INSERT INTO known_orders (order_id, user_id, total_minor, cancelled, counted)
                     VALUES ($1, $2, $3, true, false)
                     ON CONFLICT (order_id) DO UPDATE
                        SET cancelled = true, updated_at = now()
                        WHERE NOT known_orders.cancelled
                     RETURNING counted, user_id, total_minor",
                    [order_id.into(), user_id.into(), total_minor.into()],
                ))
                .await?;
            let Some(row) = row else {
                return Ok(());
            };
            let counted: bool = row.try_get("", "counted")?;
            if counted {
                // The amount that was added: the stored total, for the stored owner.
                let owner: uuid::Uuid = row.try_get("", "user_id")?;
                let amount: i64 = row.try_get("", "total_minor")?;
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE order_stats
                        SET total_spent_minor = total_spent_minor - $2, updated_at = now()
                      WHERE user_id = $1",
                    [owner.into(), amount.into()],
                ))
                .await?;
            }
        }
        Effect::Nothing => {}
    }
    Ok(())
}
