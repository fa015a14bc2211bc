//! `catalog.update {id, name?, description?, category?, price?, active?}` → the
//! [`Product`] after the change. Admin only. A new price applies to orders placed from
//! now on; placed orders keep the price they were placed at.

use super::require_admin;
use crate::db::products;
use crate::error::{Error, Result};
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::catalog::{Product, UpdateProductRequest, methods};
use sea_orm::TransactionTrait;
use std::sync::Arc;
use svc_kit::replies::Idempotent;

pub async fn handle(
    app: Arc<App>,
    ctx: RequestContext,
    req: UpdateProductRequest,
) -> Result<Product> {
    let actor = require_admin(&ctx)?;
    let changes = req.changes();
    if changes.is_empty() {
        return Err(Error::invalid(
            "name",
            "nothing to change: give at least one of name, description, category, price, active",
        ));
    }
    let once = Idempotent::of(&ctx, methods::UPDATE, &req)?;
    let txn = app.db.begin().await?;
    if let Some(product) = once.claim(&txn).await? {
        return Ok(product);
    }
    let product = products::update(&txn, req.id, &changes)
        .await?
        .ok_or(Error::ProductNotFound(req.id))?;
    once.save(&txn, &product).await?;
    txn.commit().await?;
    tracing::info!(product_id = %product.id, actor = %actor.id, "product updated");
    Ok(product)
}
