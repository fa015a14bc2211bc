//! `catalog.list {category?, q?, min_price?, max_price?, limit?, offset?}` → a
//! [`ProductPage`] of active products, by name. Public.

use crate::db::products;
use crate::error::Result;
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::catalog::{ListProductsRequest, ProductPage};
use proto_msgs::orders::PageLimit;
use std::sync::Arc;

pub async fn handle(
    app: Arc<App>,
    _ctx: RequestContext,
    req: ListProductsRequest,
) -> Result<ProductPage> {
    let (products, total) = products::list(&app.reads, &req).await?;
    Ok(ProductPage {
        products,
        total,
        limit: req.limit.unwrap_or(PageLimit::DEFAULT).get(),
        offset: req.offset.map_or(0, |o| o.get()),
    })
}
