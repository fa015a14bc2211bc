//! `/orders/*`: create, list (own, or a user's for an admin), get, change status.

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::openapi::{ErrorDoc, OrderDoc, OrderPageDoc, OrderStatusDoc};
use crate::routes::Bus;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use proto_msgs::Money;
use proto_msgs::orders::{
    GetOrderRequest, ListOrdersRequest, OrderStatus, UpdateStatusRequest, methods,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// One line of a new order.
#[derive(Deserialize, ToSchema)]
pub struct NewItemBody {
    #[schema(example = "Product")]
    pub name: String,
    /// Unit price: a decimal string or a JSON number with at most two decimals.
    #[schema(value_type = String, example = "100.00")]
    pub price: Money,
    #[schema(example = 2, minimum = 1)]
    pub quantity: i64,
}

/// Body of `POST /orders`. The owner is the caller; a `user_id` here is ignored.
/// (The schema for the docs; the handler reads [`CreateOrderPassThrough`].)
#[derive(Deserialize, ToSchema)]
pub struct CreateOrderBody {
    pub items: Vec<NewItemBody>,
}

/// What the handler reads of `POST /orders`: `items` is passed on as sent, because
/// order-svc checks every field and names the bad one (`items[2].price`); a strict parse
/// here would answer a generic "invalid JSON body" instead.
#[derive(Deserialize)]
pub struct CreateOrderPassThrough {
    #[serde(default)]
    items: serde_json::Value,
}

/// Body of `PATCH /orders/{id}/status`.
#[derive(Deserialize, ToSchema)]
pub struct StatusBody {
    /// The new status (case-insensitive).
    #[schema(value_type = OrderStatusDoc)]
    pub status: String,
}

/// Query of `GET /orders`: filter and page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders with this status.
    #[param(value_type = Option<OrderStatusDoc>)]
    pub status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Orders to skip (instead of `cursor`).
    pub offset: Option<u64>,
    /// Admins only: another user's orders.
    pub user_id: Option<Uuid>,
}

/// Query of `GET /orders/user/{user_id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(value_type = Option<OrderStatusDoc>)]
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub offset: Option<u64>,
}

fn parse_status(text: &str, field: &str) -> Result<OrderStatus, ApiError> {
    text.parse()
        .map_err(|e: String| ApiError::invalid_field(field, e))
}

impl ListQuery {
    fn into_request(self) -> Result<ListOrdersRequest, ApiError> {
        Ok(ListOrdersRequest {
            user_id: self.user_id,
            status: self
                .status
                .as_deref()
                .map(|s| parse_status(s, "status"))
                .transpose()?,
            limit: self.limit,
            cursor: self.cursor,
            offset: self.offset,
        })
    }
}

/// `Idempotency-Key` (or `X-Idempotency-Key`), checked for length and charset.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req
        .headers()
        .get("idempotency-key")
        .or_else(|| req.headers().get("x-idempotency-key"))
    else {
        return Ok(None);
    };
    let bad = || {
        ApiError::invalid_field(
            "Idempotency-Key",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )
    };
    let key = value.to_str().map_err(|_| bad())?.trim();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

#[derive(Deserialize)]
struct IdOnly {
    id: Uuid,
}

/// Places an order for the caller (status `PENDING`). With an `Idempotency-Key`, a
/// retry returns the order the first request created.
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    security(("bearer" = [])),
    request_body = CreateOrderBody,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Makes a retried create return the first order (also `X-Idempotency-Key`)"),
    ),
    responses(
        (status = 201, description = "Created; `Location: /orders/{id}`", body = OrderDoc),
        (status = 400, description = "Bad JSON or a bad item (`details.field`)", body = ErrorDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
        (status = 409, description = "Idempotency key reused with different items", body = ErrorDoc),
        (status = 413, description = "Body too large", body = ErrorDoc),
        (status = 415, description = "Body is not JSON", body = ErrorDoc),
        (status = 429, description = "Rate limited", body = ErrorDoc),
        (status = 503, description = "order-svc not running or its database down", body = ErrorDoc),
        (status = 504, description = "order-svc did not answer in time", body = ErrorDoc),
    )
)]
pub async fn create(
    bus: Bus,
    actor: Authenticated,
    req: HttpRequest,
    body: web::Json<CreateOrderPassThrough>,
) -> Result<HttpResponse, ApiError> {
    let request = serde_json::json!({ "items": body.into_inner().items });
    let mut ctx = bus.context(methods::CREATE, Some(actor.0));
    ctx.idempotency_key = idempotency_key(&req)?;
    let data = bus.call(methods::CREATE, &request, &ctx).await?;
    let id = data.decode::<IdOnly>()?.id;
    let mut res = data.respond(StatusCode::CREATED);
    if let Ok(location) = HeaderValue::from_str(&format!("/orders/{id}")) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// The caller's orders, newest first (an admin may pass `user_id`).
#[utoipa::path(
    get, path = "/orders", tag = "orders",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of orders", body = OrderPageDoc),
        (status = 400, description = "Bad query parameter", body = ErrorDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
        (status = 403, description = "`user_id` of someone else and not an admin", body = ErrorDoc),
    )
)]
pub async fn list(
    bus: Bus,
    actor: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let req = query.into_inner().into_request()?;
    let ctx = bus.context(methods::LIST, Some(actor.0));
    Ok(bus.call(methods::LIST, &req, &ctx).await?.ok())
}

/// A user's orders: the caller's own, or anyone's for an admin.
#[utoipa::path(
    get, path = "/orders/user/{user_id}", tag = "orders",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "Owner of the orders"), PageQuery),
    responses(
        (status = 200, description = "One page of orders", body = OrderPageDoc),
        (status = 400, description = "Bad path or query parameter", body = ErrorDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
        (status = 403, description = "Another user's orders and not an admin", body = ErrorDoc),
    )
)]
pub async fn list_for_user(
    bus: Bus,
    actor: Authenticated,
    user_id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let req = ListQuery {
        status: q.status,
        limit: q.limit,
        cursor: q.cursor,
        offset: q.offset,
        user_id: Some(user_id.into_inner()),
    }
    .into_request()?;
    let ctx = bus.context(methods::LIST, Some(actor.0));
    Ok(bus.call(methods::LIST, &req, &ctx).await?.ok())
}

/// One order. Another user's order is `404`, as if it did not exist.
#[utoipa::path(
    get, path = "/orders/{id}", tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderDoc),
        (status = 400, description = "`id` is not a UUID", body = ErrorDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
        (status = 404, description = "No such order (or not the caller's)", body = ErrorDoc),
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

/// Moves an order: the owner may cancel; an admin may make any legal move.
#[utoipa::path(
    patch, path = "/orders/{id}/status", tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "The order after the change", body = OrderDoc),
        (status = 400, description = "Bad JSON or unknown status", body = ErrorDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
        (status = 403, description = "Not allowed to make this move", body = ErrorDoc),
        (status = 404, description = "No such order (or not the caller's)", body = ErrorDoc),
        (status = 409, description = "Illegal transition (`failed_precondition`)", body = ErrorDoc),
    )
)]
pub async fn update_status(
    bus: Bus,
    actor: Authenticated,
    id: web::Path<Uuid>,
    body: web::Json<StatusBody>,
) -> Result<HttpResponse, ApiError> {
    let req = UpdateStatusRequest {
        id: id.into_inner(),
        status: parse_status(&body.status, "status")?,
    };
    let ctx = bus.context(methods::UPDATE_STATUS, Some(actor.0));
    Ok(bus.call(methods::UPDATE_STATUS, &req, &ctx).await?.ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn idempotency_keys_are_checked() {
        let req = TestRequest::default()
            .insert_header(("Idempotency-Key", "abc-1"))
            .to_http_request();
        assert_eq!(idempotency_key(&req).unwrap().as_deref(), Some("abc-1"));
        let req = TestRequest::default()
            .insert_header(("X-Idempotency-Key", "k2"))
            .to_http_request();
        assert_eq!(idempotency_key(&req).unwrap().as_deref(), Some("k2"));
        let req = TestRequest::default()
            .insert_header(("Idempotency-Key", "a".repeat(201)))
            .to_http_request();
        assert!(idempotency_key(&req).is_err());
        assert_eq!(
            idempotency_key(&TestRequest::default().to_http_request()).unwrap(),
            None
        );
    }

    #[test]
    fn list_query_becomes_the_contract_request() {
        let q = ListQuery {
            status: Some("confirmed".into()),
            limit: Some(5),
            cursor: None,
            offset: Some(10),
            user_id: None,
        };
        let req = q.into_request().unwrap();
        assert_eq!(req.status, Some(OrderStatus::Confirmed));
        let bad = ListQuery {
            status: Some("LOST".into()),
            limit: None,
            cursor: None,
            offset: None,
            user_id: None,
        };
        let err = bad.into_request().unwrap_err();
        assert_eq!(err.details, Some(serde_json::json!({"field": "status"})));
    }
}
