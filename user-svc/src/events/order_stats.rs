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

use crate::db::entities::{known_order, order_stats};
use proto_msgs::events::types;
use proto_msgs::orders::{OrderCreated, OrderStatus, OrderUpdated};
use proto_msgs::{CloudEvent, EventConsumer, HandlerError, UseBus, users};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, TransactionTrait,
};
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

/// Deletes the `known_orders` rows no event can change any more: cancelled after
/// being counted (cancelling is final), last touched before `before`. A row still
/// waiting for its other event stays, however old.
pub async fn prune_known_orders(
    db: &DatabaseConnection,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr> {
    let deleted = known_order::Entity::delete_many()
        .filter(known_order::Column::Cancelled.eq(true))
        .filter(known_order::Column::Counted.eq(true))
        .filter(known_order::Column::UpdatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
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

/// `EXCLUDED.<column>`: the value an `ON CONFLICT DO UPDATE` proposed to insert.
fn excluded<C: sea_orm::sea_query::IntoIden>(column: C) -> Expr {
    Expr::col((Alias::new("excluded"), column))
}

async fn apply_effect<C: ConnectionTrait>(txn: &C, effect: Effect) -> Result<(), DbErr> {
    use known_order::Column as Known;
    use order_stats::Column as Stats;
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
            let order = known_order::ActiveModel {
                order_id: Set(order_id),
                user_id: Set(user_id),
                total_minor: Set(total_minor),
                cancelled: Set(cancelled),
                counted: Set(true),
                ..Default::default()
            };
            let counted = known_order::Entity::insert(order)
                .on_conflict(
                    OnConflict::column(Known::OrderId)
                        .value(Known::Counted, true)
                        .update_column(Known::TotalMinor)
                        .value(
                            Known::Cancelled,
                            Expr::col((known_order::Entity, Known::Cancelled))
                                .or(excluded(Known::Cancelled)),
                        )
                        .value(Known::UpdatedAt, Expr::current_timestamp())
                        .action_and_where(Expr::col((known_order::Entity, Known::Counted)).not())
                        .to_owned(),
                )
                .exec_with_returning_many(txn)
                .await?;
            let Some(order) = counted.into_iter().next() else {
                return Ok(());
            };
            let added = if order.cancelled { 0 } else { total_minor };
            let stats = order_stats::ActiveModel {
                user_id: Set(user_id),
                order_count: Set(1),
                total_spent_minor: Set(added),
                last_order_at: Set(Some(at)),
                ..Default::default()
            };
            order_stats::Entity::insert(stats)
                .on_conflict(
                    OnConflict::column(Stats::UserId)
                        .value(
                            Stats::OrderCount,
                            Expr::col((order_stats::Entity, Stats::OrderCount)).add(1),
                        )
                        .value(
                            Stats::TotalSpentMinor,
                            Expr::col((order_stats::Entity, Stats::TotalSpentMinor))
                                .add(excluded(Stats::TotalSpentMinor)),
                        )
                        .value(
                            Stats::LastOrderAt,
                            Func::greatest([
                                Expr::col((order_stats::Entity, Stats::LastOrderAt)),
                                excluded(Stats::LastOrderAt),
                            ]),
                        )
                        .value(Stats::UpdatedAt, Expr::current_timestamp())
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
        }
        Effect::Cancelled {
            order_id,
            user_id,
            total_minor,
        } => {
            // Mark cancelled once; a cancellation of an order not seen yet is
            // remembered (not counted) for its late `order.created`.
            let order = known_order::ActiveModel {
                order_id: Set(order_id),
                user_id: Set(user_id),
                total_minor: Set(total_minor),
                cancelled: Set(true),
                counted: Set(false),
                ..Default::default()
            };
            let cancelled = known_order::Entity::insert(order)
                .on_conflict(
                    OnConflict::column(Known::OrderId)
                        .value(Known::Cancelled, true)
                        .value(Known::UpdatedAt, Expr::current_timestamp())
                        .action_and_where(Expr::col((known_order::Entity, Known::Cancelled)).not())
                        .to_owned(),
                )
                .exec_with_returning_many(txn)
                .await?;
            let Some(order) = cancelled.into_iter().next() else {
                return Ok(());
            };
            if order.counted {
                // The amount that was added: the stored total, for the stored owner.
                order_stats::Entity::update_many()
                    .col_expr(
                        Stats::TotalSpentMinor,
                        Expr::col(Stats::TotalSpentMinor).sub(order.total_minor),
                    )
                    .col_expr(Stats::UpdatedAt, Expr::current_timestamp())
                    .filter(Stats::UserId.eq(order.user_id))
                    .exec(txn)
                    .await?;
            }
        }
        Effect::Nothing => {}
    }
    Ok(())
}
