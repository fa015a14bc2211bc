//! `catalog.create {sku, name, description?, category, price, stock?, active?}` → the
//! new [`Product`]. Admin only; a SKU in use is `already_exists`.

use super::require_admin;
use crate::db::products;
use crate::error::{Error, Result};
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::catalog::{CreateProductRequest, Product, methods};
use sea_orm::TransactionTrait;
use std::sync::Arc;
use svc_kit::replies::Idempotent;

pub async fn handle(
    app: Arc<App>,
    ctx: RequestContext,
    req: CreateProductRequest,
) -> Result<Product> {
    let actor = require_admin(&ctx)?;
    let once = Idempotent::of(&ctx, methods::CREATE, &req)?;
    let txn = app.db.begin().await?;
    if let Some(product) = once.claim(&txn).await? {
        return Ok(product);
    }
    let product = products::insert(&txn, &req)
        .await?
        .ok_or_else(|| Error::SkuExists(req.sku.as_str().to_owned()))?;
    once.save(&txn, &product).await?;
    txn.commit().await?;
    tracing::info!(product_id = %product.id, sku = %product.sku, actor = %actor.id, "product created");
    Ok(product)
}
