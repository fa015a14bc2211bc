//! `/products/*`: the catalog (served by order-svc's `catalog.*`). Browsing is public;
//! creating, changing and restocking need an admin token (order-svc checks the role).

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::openapi::{BodyErrors, ErrorDoc, PublicErrors, ServiceErrors, TokenErrors};
use crate::routes::extract::{Json, Query};
use crate::routes::{Bus, IdempotencyKeyHeader};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use proto_msgs::catalog::{
    AdjustStockRequest, CreateProductRequest, GetProductRequest, ListProductsRequest, Product,
    ProductChanges, ProductPage, StockAdjustment, UpdateProductRequest, methods,
};
use uuid::Uuid;

/// Active products by name, one page (`limit`/`offset`), filtered by `category`,
/// `q` (text in name, SKU or description) and a price range.
#[utoipa::path(
    get, path = "/products", tag = "products",
    params(ListProductsRequest),
    responses(
        (status = 200, description = "One page of products", body = ProductPage),
        (status = 400, description = "Bad query parameter (`details.field`)", body = ErrorDoc),
        PublicErrors, ServiceErrors,
    )
)]
pub async fn list(bus: Bus, query: Query<ListProductsRequest>) -> Result<HttpResponse, ApiError> {
    let req = query.into_inner();
    let ctx = bus.context(methods::LIST, None);
    Ok(bus.call(methods::LIST, &req, &ctx).await?.ok())
}

/// One product (also an inactive one: `active: false`, not listed and not orderable).
#[utoipa::path(
    get, path = "/products/{id}", tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 400, description = "`id` is not a UUID", body = ErrorDoc),
        (status = 404, description = "No such product", body = ErrorDoc),
        PublicErrors, ServiceErrors,
    )
)]
pub async fn get(bus: Bus, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let req = GetProductRequest {
        id: id.into_inner(),
    };
    let ctx = bus.context(methods::GET, None);
    Ok(bus.call(methods::GET, &req, &ctx).await?.ok())
}

/// Adds a product (admin).
#[utoipa::path(
    post, path = "/products", tag = "products",
    security(("bearer" = [])),
    request_body = CreateProductRequest,
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "Created", body = Product,
         headers(("Location" = String, description = "`/products/{id}` of the new product"))),
        (status = 400, description = "Bad JSON, a bad field (`details.field`) or a bad `Idempotency-Key`", body = ErrorDoc),
        (status = 403, description = "Not an admin", body = ErrorDoc),
        (status = 409, description = "The SKU exists (`already_exists`), or the idempotency key used before with another body (`failed_precondition`)", body = ErrorDoc),
        BodyErrors, TokenErrors, ServiceErrors,
    )
)]
pub async fn create(
    bus: Bus,
    actor: Authenticated,
    body: Json<CreateProductRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let ctx = bus.context(methods::CREATE, Some(actor.0));
    let data = bus.call(methods::CREATE, &req, &ctx).await?;
    let id = data.decode::<GetProductRequest>()?.id;
    let mut res = data.respond(StatusCode::CREATED);
    if let Ok(location) = HeaderValue::from_str(&format!("/products/{id}")) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// Changes a product's name, description, category, price or `active` (admin). A new
/// price applies to orders placed from now on.
#[utoipa::path(
    patch, path = "/products/{id}", tag = "products",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), IdempotencyKeyHeader),
    request_body = ProductChanges,
    responses(
        (status = 200, description = "The product after the change", body = Product),
        (status = 400, description = "Bad JSON, a bad field, nothing to change, `id` not a UUID or a bad `Idempotency-Key`", body = ErrorDoc),
        (status = 403, description = "Not an admin", body = ErrorDoc),
        (status = 404, description = "No such product", body = ErrorDoc),
        (status = 409, description = "The idempotency key used before with another body (`failed_precondition`)", body = ErrorDoc),
        BodyErrors, TokenErrors, ServiceErrors,
    )
)]
pub async fn update(
    bus: Bus,
    actor: Authenticated,
    id: web::Path<Uuid>,
    body: Json<ProductChanges>,
) -> Result<HttpResponse, ApiError> {
    let req = UpdateProductRequest::new(id.into_inner(), body.into_inner());
    let ctx = bus.context(methods::UPDATE, Some(actor.0));
    Ok(bus.call(methods::UPDATE, &req, &ctx).await?.ok())
}

/// Adds to or takes from a product's stock (admin): `delta` `+n` or `-n` with a
/// `reason`; the stock never goes below 0.
#[utoipa::path(
    post, path = "/products/{id}/stock", tag = "products",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), IdempotencyKeyHeader),
    request_body = StockAdjustment,
    responses(
        (status = 200, description = "The product after the change", body = Product),
        (status = 400, description = "Bad JSON, a bad field (`delta` 0 or out of range, no `reason`), `id` not a UUID or a bad `Idempotency-Key`", body = ErrorDoc),
        (status = 403, description = "Not an admin", body = ErrorDoc),
        (status = 404, description = "No such product", body = ErrorDoc),
        (status = 409, description = "`failed_precondition`: the stock would go below 0 (`details.stock` is the current one), or the idempotency key used before with another body", body = ErrorDoc),
        BodyErrors, TokenErrors, ServiceErrors,
    )
)]
pub async fn adjust_stock(
    bus: Bus,
    actor: Authenticated,
    id: web::Path<Uuid>,
    body: Json<StockAdjustment>,
) -> Result<HttpResponse, ApiError> {
    let StockAdjustment { delta, reason } = body.into_inner();
    let req = AdjustStockRequest {
        id: id.into_inner(),
        delta,
        reason,
    };
    let ctx = bus.context(methods::ADJUST_STOCK, Some(actor.0));
    Ok(bus.call(methods::ADJUST_STOCK, &req, &ctx).await?.ok())
}
