//! `catalog.get {id}` → the [`Product`]. Public; an inactive product is `not_found`
//! except for an admin.

use crate::db::products;
use crate::error::{Error, Result};
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::catalog::{GetProductRequest, Product};
use std::sync::Arc;

pub async fn handle(app: Arc<App>, ctx: RequestContext, req: GetProductRequest) -> Result<Product> {
    let admin = ctx.actor.is_some_and(|a| a.is_admin());
    products::find(&app.db, req.id)
        .await?
        .filter(|p| p.active || admin)
        .ok_or(Error::ProductNotFound(req.id))
}
