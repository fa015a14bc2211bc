//! `/metrics`: the gateway's own Prometheus text; `/metrics/users` and
//! `/metrics/orders`: each service's, fetched over the bus (services have no port).

use crate::error::ApiError;
use crate::openapi::{ErrorDoc, PublicErrors};
use crate::routes::Bus;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use proto_msgs::ErrorCode;
use proto_msgs::rpc::{MetricsText, PROMETHEUS_TEXT};
use proto_msgs::{orders, users};

/// The gateway's metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "metrics",
    security((), ("ops" = [])),
    responses(
        (status = 401, description = "The operations token is missing or wrong (when `METRICS_TOKEN` is set)", body = ErrorDoc),
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        PublicErrors,
    )
)]
pub async fn gateway(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.config.ops.allows(&req) {
        return Err(crate::ops::refused());
    }
    Ok(HttpResponse::Ok()
        .content_type(PROMETHEUS_TEXT)
        .body(state.metrics.render()))
}

/// user-svc's metrics.
#[utoipa::path(
    get, path = "/metrics/users", tag = "metrics",
    security((), ("ops" = [])),
    responses(
        (status = 401, description = "The operations token is missing or wrong (when `METRICS_TOKEN` is set)", body = ErrorDoc),
        (status = 200, description = "Prometheus text of user-svc", body = String, content_type = "text/plain"),
        (status = 500, description = "user-svc sent metrics we cannot read", body = ErrorDoc),
        (status = 503, description = "user-svc does not answer", body = ErrorDoc),
        PublicErrors,
    )
)]
pub async fn users(
    bus: Bus,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.config.ops.allows(&req) {
        return Err(crate::ops::refused());
    }
    service(bus, users::methods::METRICS).await
}

/// order-svc's metrics.
#[utoipa::path(
    get, path = "/metrics/orders", tag = "metrics",
    security((), ("ops" = [])),
    responses(
        (status = 401, description = "The operations token is missing or wrong (when `METRICS_TOKEN` is set)", body = ErrorDoc),
        (status = 200, description = "Prometheus text of order-svc", body = String, content_type = "text/plain"),
        (status = 500, description = "order-svc sent metrics we cannot read", body = ErrorDoc),
        (status = 503, description = "order-svc does not answer", body = ErrorDoc),
        PublicErrors,
    )
)]
pub async fn orders(
    bus: Bus,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.config.ops.allows(&req) {
        return Err(crate::ops::refused());
    }
    service(bus, orders::methods::METRICS).await
}

async fn service(bus: Bus, method: &str) -> Result<HttpResponse, ApiError> {
    let ctx = bus.context(method, None);
    let metrics: MetricsText = bus
        .call(method, &serde_json::json!({}), &ctx)
        .await
        .map_err(|e| match e.code {
            // A service that does not answer in time is as good as down here.
            ErrorCode::DeadlineExceeded => ApiError::unavailable(e.message),
            _ => e,
        })?
        .decode()?;
    Ok(HttpResponse::Ok()
        .content_type(metrics.content_type)
        .body(metrics.text))
}
