//! `orders.create {items: [{product_id | sku, quantity, price?}]}` → the new `Order`
//! (`PENDING`).
//!
//! The owner is always the actor (a `user_id` in the body is ignored). Each line's name
//! and unit price are copied from the catalog. In the order's own transaction the
//! products are locked (in id order, so concurrent orders never deadlock) and their
//! stock is taken with a conditional `UPDATE`: of N orders for a stock S, exactly
//! min(N, S) succeed. Refusals:
//! - unknown or inactive product → `invalid_argument` naming the line (`items[1].sku`);
//! - a `price` that is not the catalog's → `failed_precondition`, the current price in
//!   `details`;
//! - too little stock → `failed_precondition`, the available quantity in `details`.
//!
//! Exactly once: the reply is stored with the order (svc-kit's stored replies, keyed
//! by `x-idempotency-key` or else the message id); a retry returns the first order, and
//! the same key with different items is `failed_precondition`.

use crate::db::entities::product;
use crate::db::{orders, products};
use crate::domain::items::{NewItem, PricedLine};
use crate::error::{Error, Result};
use crate::events;
use crate::handlers::App;
use proto_msgs::orders::{CreateOrderRequest, Order, ProductRef, methods};
use proto_msgs::{Money, RequestContext};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use svc_kit::replies::Idempotent;
use uuid::Uuid;

pub async fn handle(app: Arc<App>, ctx: RequestContext, req: CreateOrderRequest) -> Result<Order> {
    let actor = ctx.require_actor()?;
    let once = Idempotent::of(&ctx, methods::CREATE, &req)?;

    let txn = app.db.begin().await?;
    if let Some(order) = once.claim(&txn).await? {
        return Ok(order);
    }
    let lines = price_and_reserve(&txn, req.items.items()).await?;
    let order = orders::insert(&txn, actor.id, &lines).await?;
    svc_kit::outbox::enqueue(&txn, &events::order_created(&order, &ctx)).await?;
    once.save(&txn, &order).await?;
    txn.commit().await?;
    app.outbox.notify();
    tracing::info!(order_id = %order.id, user_id = %order.user_id, total = %order.total, items = order.items.len(), "order created");
    Ok(order)
}

/// Prices every line from the catalog and reserves the stock, in `txn`.
async fn price_and_reserve<C: ConnectionTrait>(
    txn: &C,
    items: &[NewItem],
) -> Result<Vec<PricedLine>> {
    let mut ids = Vec::new();
    let mut skus = Vec::new();
    for item in items {
        match &item.product {
            ProductRef::Id(id) => ids.push(*id),
            ProductRef::Sku(sku) => skus.push(sku.as_str().to_owned()),
        }
    }
    let locked = products::lock_for_order(txn, &ids, &skus).await?;
    let by_id: HashMap<Uuid, &product::Model> = locked.iter().map(|p| (p.id, p)).collect();
    let by_sku: HashMap<&str, &product::Model> =
        locked.iter().map(|p| (p.sku.as_str(), p)).collect();

    let mut lines = Vec::with_capacity(items.len());
    // Per product: the quantity of all its lines, and the first line naming it.
    let mut wanted: BTreeMap<Uuid, (i64, usize)> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("items[{i}].{}", item.product.field());
        let found = match &item.product {
            ProductRef::Id(id) => by_id.get(id),
            ProductRef::Sku(sku) => by_sku.get(sku.as_str()),
        };
        let Some(p) = found else {
            return Err(Error::UnknownProduct {
                field,
                message: format!("{} is not in the catalog", item.product),
            });
        };
        if !p.active {
            return Err(Error::UnknownProduct {
                field,
                message: format!("{} is not sold at the moment", item.product),
            });
        }
        let price = Money::from_minor(p.price_cents);
        if let Some(given) = item.price
            && given.get() != price
        {
            return Err(Error::Precondition {
                message: format!(
                    "items[{i}].price: {} costs {price} now, not {}; show the current price and order again",
                    p.sku,
                    given.get()
                ),
                details: json!({
                    "field": format!("items[{i}].price"),
                    "product_id": p.id,
                    "sku": p.sku,
                    "price": price,
                    "given": given.get(),
                }),
            });
        }
        let quantity = item.quantity.get();
        wanted.entry(p.id).or_insert((0, i)).0 += quantity;
        lines.push(PricedLine {
            product_id: p.id,
            name: p.name.clone(),
            price,
            quantity,
        });
    }
    // In id order, the order the rows were locked in.
    for (id, (quantity, i)) in wanted {
        let Some(p) = by_id.get(&id) else {
            return Err(Error::Corrupt(format!("locked product {id} vanished")));
        };
        if p.stock < quantity || !products::reserve(txn, id, quantity).await? {
            return Err(Error::Precondition {
                message: format!(
                    "items[{i}].quantity: only {} of {} in stock, {quantity} asked for",
                    p.stock, p.sku
                ),
                details: json!({
                    "field": format!("items[{i}].quantity"),
                    "product_id": p.id,
                    "sku": p.sku,
                    "available": p.stock,
                    "requested": quantity,
                }),
            });
        }
    }
    Ok(lines)
}
