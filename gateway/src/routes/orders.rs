//! `/orders/*`: create, list (own, or a user's for an admin), get, change status.

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::openapi::{BodyErrors, ErrorDoc, ServiceErrors, TokenErrors};
use crate::routes::extract::{Json, Query};
use crate::routes::{Bus, IdempotencyKeyHeader};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use proto_msgs::orders::{
    CreateOrderRequest, GetOrderRequest, ListOrdersRequest, NewStatus, Order, OrderPage,
    UpdateStatusRequest, methods,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};
use uuid::Uuid;

/// The query of `GET /orders/user/{user_id}`: that of `GET /orders` without `user_id`
/// (the path names the user). Documentation only; the handler reads
/// [`ListOrdersRequest`].
pub struct PageParams;

impl IntoParams for PageParams {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        ListOrdersRequest::into_params(parameter_in)
            .into_iter()
            .filter(|p| p.name != "user_id")
            .collect()
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: Uuid,
}

/// Places an order for the caller (status `PENDING`); a `user_id` in the body is
/// ignored. Each item names a catalog product (`product_id` or `sku`); name and unit
/// price come from the catalog, and the stock is reserved with the order. With an
/// `Idempotency-Key`, a retry returns the order the first request created.
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    security(("bearer" = [])),
    request_body = CreateOrderRequest,
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "Created", body = Order,
         headers(("Location" = String, description = "`/orders/{id}` of the new order"))),
        (status = 400, description = "Bad JSON, a bad item (`details.field`, e.g. `items[2].quantity`), an unknown or inactive product (`items[1].sku`), a free-form item, or a bad `Idempotency-Key`", body = ErrorDoc),
        (status = 409, description = "`failed_precondition`: a `price` that is not the catalog's (`details.price` is the current one), too little stock (`details.available`), or the idempotency key used before with different items", body = ErrorDoc),
        BodyErrors, TokenErrors, ServiceErrors,
    )
)]
pub async fn create(
    bus: Bus,
    actor: Authenticated,
    body: Json<CreateOrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let ctx = bus.context(methods::CREATE, Some(actor.0));
    let data = bus.call(methods::CREATE, &request, &ctx).await?;
    let id = data.decode::<IdOnly>()?.id;
    let mut res = data.respond(StatusCode::CREATED);
    if let Ok(location) = HeaderValue::from_str(&format!("/orders/{id}")) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// The caller's orders, newest first (an admin may pass `user_id`). Page with `cursor`
/// or `offset`, not both.
#[utoipa::path(
    get, path = "/orders", tag = "orders",
    security(("bearer" = [])),
    params(ListOrdersRequest),
    responses(
        (status = 200, description = "One page of orders", body = OrderPage),
        (status = 400, description = "Bad query parameter (`details.field`), or both `cursor` and `offset`", body = ErrorDoc),
        (status = 403, description = "`user_id` of someone else and not an admin", body = ErrorDoc),
        TokenErrors, ServiceErrors,
    )
)]
pub async fn list(
    bus: Bus,
    actor: Authenticated,
    query: Query<ListOrdersRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = query.into_inner();
    let ctx = bus.context(methods::LIST, Some(actor.0));
    Ok(bus.call(methods::LIST, &req, &ctx).await?.ok())
}

/// A user's orders: the caller's own, or anyone's for an admin.
#[utoipa::path(
    get, path = "/orders/user/{user_id}", tag = "orders",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "Owner of the orders"), PageParams),
    responses(
        (status = 200, description = "One page of orders", body = OrderPage),
        (status = 400, description = "Bad path or query parameter, or both `cursor` and `offset`", body = ErrorDoc),
        (status = 403, description = "Another user's orders and not an admin", body = ErrorDoc),
        TokenErrors, ServiceErrors,
    )
)]
pub async fn list_for_user(
    bus: Bus,
    actor: Authenticated,
    user_id: web::Path<Uuid>,
    query: Query<ListOrdersRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = ListOrdersRequest {
        user_id: Some(user_id.into_inner()),
        ..query.into_inner()
    };
    let ctx = bus.context(methods::LIST, Some(actor.0));
    Ok(bus.call(methods::LIST, &req, &ctx).await?.ok())
}

/// One order. Another user's order is `404`, as if it did not exist.
#[utoipa::path(
    get, path = "/orders/{id}", tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 400, description = "`id` is not a UUID", body = ErrorDoc),
        (status = 404, description = "No such order (or not the caller's)", body = ErrorDoc),
        TokenErrors, ServiceErrors,
    )
)]
pub async fn get(
    bus: Bus,
    actor: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let req = GetOrderRequest {
        id: id.into_inner(),
    };
    let ctx = bus.context(methods::GET, Some(actor.0));
    Ok(bus.call(methods::GET, &req, &ctx).await?.ok())
}

/// Moves an order: the owner may cancel; an admin may make any legal move. Cancelling
/// puts the order's stock back.
#[utoipa::path(
    patch, path = "/orders/{id}/status", tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id"), IdempotencyKeyHeader),
    request_body = NewStatus,
    responses(
        (status = 200, description = "The order after the change", body = Order),
        (status = 400, description = "Bad JSON, unknown status, `id` not a UUID or a bad `Idempotency-Key`", body = ErrorDoc),
        (status = 403, description = "Not allowed to make this move", body = ErrorDoc),
        (status = 404, description = "No such order (or not the caller's)", body = ErrorDoc),
        (status = 409, description = "Illegal transition, or the idempotency key used before with another body (`failed_precondition`)", body = ErrorDoc),
        BodyErrors, TokenErrors, ServiceErrors,
    )
)]
pub async fn update_status(
    bus: Bus,
    actor: Authenticated,
    id: web::Path<Uuid>,
    body: Json<NewStatus>,
) -> Result<HttpResponse, ApiError> {
    let req = UpdateStatusRequest {
        id: id.into_inner(),
        status: body.into_inner().status,
    };
    let ctx = bus.context(methods::UPDATE_STATUS, Some(actor.0));
    Ok(bus.call(methods::UPDATE_STATUS, &req, &ctx).await?.ok())
}
