//! `catalog.adjust_stock {id, delta, reason}` → the [`Product`] after the change.
//! Admin only. Relative (`+n` a delivery, `-n` a loss), so concurrent adjustments and
//! orders add up; a change that would take the stock below 0 is `failed_precondition`
//! with the current stock in `details`. The reason goes to the log.

use super::require_admin;
use crate::db::products;
use crate::error::{Error, Result};
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::catalog::{AdjustStockRequest, Product, methods};
use sea_orm::TransactionTrait;
use std::sync::Arc;
use svc_kit::replies::Idempotent;

pub async fn handle(
    app: Arc<App>,
    ctx: RequestContext,
    req: AdjustStockRequest,
) -> Result<Product> {
    let actor = require_admin(&ctx)?;
    let once = Idempotent::of(&ctx, methods::ADJUST_STOCK, &req)?;
    let txn = app.db.begin().await?;
    if let Some(product) = once.claim(&txn).await? {
        return Ok(product);
    }
    let delta = req.delta.get();
    let product = products::adjust_stock(&txn, req.id, delta)
        .await?
        .ok_or(Error::ProductNotFound(req.id))?;
    once.save(&txn, &product).await?;
    txn.commit().await?;
    tracing::info!(product_id = %product.id, delta, stock = product.stock, reason = %req.reason.as_str(), actor = %actor.id, "stock adjusted");
    Ok(product)
}
