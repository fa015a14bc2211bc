//! Events in and out.
//!
//! - Out: `order.created` / `order.updated`, built here and written to the outbox in
//!   the transaction of the change (the relay in `lib.rs` publishes them).
//! - In: `user.registered` / `user.updated` into the `customers` projection, each in
//!   one transaction with its inbox record, so a redelivery has no second effect.

use crate::db::customers::{self, Customer};
use crate::db::orders::OrderRow;
use proto_msgs::events::types::{ORDER_CREATED, ORDER_UPDATED, USER_REGISTERED, USER_UPDATED};
use proto_msgs::orders::{Order, OrderCreated, OrderStatus, OrderUpdated, SERVICE};
use proto_msgs::users::{UserRegistered, UserUpdated};
use proto_msgs::{CloudEvent, EventConsumer, HandlerError, RequestContext, UseBus};
use sea_orm::{DatabaseConnection, TransactionTrait};
use svc_kit::db::handler_error;

/// CloudEvents `source` of everything this service publishes.
pub const SOURCE: &str = "order-svc";

/// `order.created`, in the trace of the request that created the order.
pub fn order_created(order: &Order, ctx: &RequestContext) -> CloudEvent<OrderCreated> {
    let data = OrderCreated {
        order_id: order.id,
        user_id: order.user_id,
        items: order.items.clone(),
        total: order.total,
        status: order.status,
        created_at: order.created_at,
    };
    CloudEvent::new(SOURCE, ORDER_CREATED, order.id.to_string(), data)
        .with_trace(ctx.traceparent.as_ref(), ctx.tracestate.as_deref())
}

/// `order.updated`: the order after the change, and the status it had before.
pub fn order_updated(
    order: &OrderRow,
    old_status: OrderStatus,
    ctx: &RequestContext,
) -> CloudEvent<OrderUpdated> {
    let data = OrderUpdated {
        order_id: order.id,
        user_id: order.user_id,
        old_status,
        new_status: order.status,
        total: order.total,
        updated_at: order.updated_at,
    };
    CloudEvent::new(SOURCE, ORDER_UPDATED, order.id.to_string(), data)
        .with_trace(ctx.traceparent.as_ref(), ctx.tracestate.as_deref())
}

/// The consumer of `orders.events`: user events into the `customers` projection.
pub fn consumer(bus: impl Into<UseBus>, db: DatabaseConnection) -> EventConsumer {
    let db2 = db.clone();
    EventConsumer::new(bus, SERVICE)
        .on(USER_REGISTERED, move |ev: CloudEvent<UserRegistered>| {
            let db = db.clone();
            async move {
                let customer = Customer {
                    user_id: ev.data.user_id,
                    email: ev.data.email.clone(),
                    name: ev.data.name.clone(),
                    role: ev.data.role,
                    updated_at: ev.data.created_at,
                };
                project(&db, &ev, &customer).await
            }
        })
        .on(USER_UPDATED, move |ev: CloudEvent<UserUpdated>| {
            let db = db2.clone();
            async move {
                let customer = Customer {
                    user_id: ev.data.user_id,
                    email: ev.data.email.clone(),
                    name: ev.data.name.clone(),
                    role: ev.data.role,
                    updated_at: ev.data.updated_at,
                };
                project(&db, &ev, &customer).await
            }
        })
}

/// Applies one user event: inbox record and effect commit together.
async fn project<T>(
    db: &DatabaseConnection,
    ev: &CloudEvent<T>,
    customer: &Customer,
) -> Result<(), HandlerError> {
    let txn = db.begin().await.map_err(handler_error)?;
    if !svc_kit::inbox::first_delivery(&txn, ev)
        .await
        .map_err(handler_error)?
    {
        tracing::debug!("event already handled: ignored");
        return Ok(());
    }
    let changed = customers::upsert_if_newer(&txn, customer)
        .await
        .map_err(handler_error)?;
    txn.commit().await.map_err(handler_error)?;
    if changed {
        tracing::info!(user_id = %customer.user_id, "customer projected");
    } else {
        tracing::info!(user_id = %customer.user_id, "older user event: customer kept as is");
    }
    Ok(())
}
