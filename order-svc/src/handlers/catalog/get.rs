//! `catalog.get {id}` → the [`Product`], also an inactive one (`active: false`: not
//! listed, not orderable). Public.

use crate::db::products;
use crate::error::{Error, Result};
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::catalog::{GetProductRequest, Product};
use std::sync::Arc;

pub async fn handle(
    app: Arc<App>,
    _ctx: RequestContext,
    req: GetProductRequest,
) -> Result<Product> {
    products::find(&app.reads, req.id)
        .await?
        .ok_or(Error::ProductNotFound(req.id))
}
