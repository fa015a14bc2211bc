//! `orders.create {items: [{name, price, quantity}]}` → the new `Order` (`PENDING`).
//!
//! The owner is always the actor (a `user_id` in the body is ignored). With header
//! `x-idempotency-key`, a retry by the same user returns the first order instead of
//! creating a second one, even when both attempts run at once (unique index).
//! The same key with a *different* list of items is refused with
//! `failed_precondition`: returning an order the caller did not ask for would hide
//! a client bug (a key reused for a new purchase).

use crate::db::orders;
use crate::domain::items::NewItems;
use crate::error::{Error, Result};
use crate::events;
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::limits::{IDEMPOTENCY_KEY_MAX_LEN, check_idempotency_key};
use proto_msgs::orders::{CreateOrderRequest, Order};
use sea_orm::TransactionTrait;
use std::sync::Arc;

/// Prefix of the key stored for a request that came without one (its message id).
const MESSAGE_KEY_PREFIX: &str = "message:";

pub async fn handle(app: Arc<App>, ctx: RequestContext, req: CreateOrderRequest) -> Result<Order> {
    let actor = ctx.require_actor()?;
    let items: NewItems = req.items;
    let key = idempotency_key(&ctx)?;
    // Without a key from the client, the request's message id: the broker redelivers a
    // request whose ack was lost (connection dropped after the reply went out), and that
    // must not create a second order.
    let fallback = match key {
        Some(_) => None,
        None => ctx
            .message_id
            .as_deref()
            .filter(|m| m.len() + MESSAGE_KEY_PREFIX.len() <= IDEMPOTENCY_KEY_MAX_LEN)
            .map(|m| format!("{MESSAGE_KEY_PREFIX}{m}")),
    };
    let key = key.or(fallback.as_deref());

    let txn = app.db.begin().await?;
    let Some(order) = orders::insert(&txn, actor.id, key, &items).await? else {
        // Only a key can conflict; the first order is committed (the insert waited).
        txn.rollback().await?;
        let key = key.unwrap_or_default();
        let first = orders::find_by_idempotency_key(&app.db, actor.id, key)
            .await?
            .ok_or_else(|| {
                Error::Corrupt(format!("idempotency key {key:?} conflicts with no order"))
            })?;
        if !same_items(&first, &items) {
            return Err(Error::IdempotencyKeyReused(key.to_owned()));
        }
        tracing::info!(order_id = %first.id, "idempotent retry: returning the first order");
        return Ok(first);
    };
    svc_kit::outbox::enqueue(&txn, &events::order_created(&order, &ctx)).await?;
    txn.commit().await?;
    app.outbox.notify();
    tracing::info!(order_id = %order.id, user_id = %order.user_id, total = %order.total, items = order.items.len(), "order created");
    Ok(order)
}

/// The `x-idempotency-key` header, checked with the rule the gateway applies to
/// `Idempotency-Key` (a raw bus client may send anything).
fn idempotency_key(ctx: &RequestContext) -> Result<Option<&str>> {
    let Some(key) = ctx.idempotency_key.as_deref() else {
        return Ok(None);
    };
    check_idempotency_key(key).map_err(|e| Error::invalid("x-idempotency-key", e))?;
    Ok(Some(key))
}

/// Whether `order` is what `items` would have created (names, prices, quantities, in order).
fn same_items(order: &Order, items: &NewItems) -> bool {
    order.items.len() == items.items().len()
        && order.items.iter().zip(items.items()).all(|(a, b)| {
            a.name == b.name.as_str() && a.price == b.price.get() && a.quantity == b.quantity.get()
        })
}
