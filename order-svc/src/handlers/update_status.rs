//! `orders.update_status {id, status}` → the order after the change.
//!
//! Who may do what: the owner may only cancel; an admin may make any legal move
//! (`OrderStatus::can_become`). Someone else's order is `not_found`. The row is locked
//! (`SELECT … FOR UPDATE`) for the whole check-and-change, so of two concurrent
//! conflicting updates the second sees the first's result and gets
//! `failed_precondition`.
//!
//! Cancelling puts the order's stock back, in the same transaction: once, since only a
//! `PENDING` or `CONFIRMED` order can become `CANCELLED`. Exactly once: the reply is
//! stored with the change, so a redelivered or retried request answers the order as
//! the change left it instead of `failed_precondition`.

use crate::db::{orders, products};
use crate::error::{Error, Result};
use crate::events;
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::orders::{Order, OrderStatus, UpdateStatusRequest, methods};
use sea_orm::TransactionTrait;
use std::collections::BTreeMap;
use std::sync::Arc;
use svc_kit::replies::Idempotent;

pub async fn handle(app: Arc<App>, ctx: RequestContext, req: UpdateStatusRequest) -> Result<Order> {
    let actor = ctx.require_actor()?;
    let once = Idempotent::of(&ctx, methods::UPDATE_STATUS, &req)?;
    let UpdateStatusRequest { id, status: to } = req;

    let txn = app.db.begin().await?;
    if let Some(order) = once.claim(&txn).await? {
        return Ok(order);
    }
    let current = orders::lock(&txn, id)
        .await?
        .filter(|o| o.user_id == actor.id || actor.is_admin())
        .ok_or(Error::OrderNotFound(id))?;
    if !actor.is_admin() && to != OrderStatus::Cancelled {
        return Err(Error::PermissionDenied(format!(
            "the owner of an order may only cancel it; changing it to {to} needs an admin"
        )));
    }
    if !current.status.can_become(to) {
        return Err(Error::IllegalTransition {
            id,
            from: current.status,
            to,
        });
    }
    let updated = orders::set_status(&txn, id, to).await?;
    svc_kit::outbox::enqueue(&txn, &events::order_updated(&updated, current.status, &ctx)).await?;
    let order = orders::find(&txn, id)
        .await?
        .ok_or(Error::OrderNotFound(id))?;
    if to == OrderStatus::Cancelled {
        // Per product, in id order (the order reservations lock in).
        let mut back: BTreeMap<uuid::Uuid, i64> = BTreeMap::new();
        for item in &order.items {
            if let Some(product) = item.product_id {
                *back.entry(product).or_default() += item.quantity;
            }
        }
        for (product, quantity) in back {
            products::release(&txn, product, quantity).await?;
        }
    }
    once.save(&txn, &order).await?;
    txn.commit().await?;
    app.outbox.notify();
    tracing::info!(order_id = %id, from = %current.status, to = %to, actor = %actor.id, "order status changed");
    Ok(order)
}
