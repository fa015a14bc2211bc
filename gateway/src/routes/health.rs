//! `/health` (the process is alive) and `/health/ready` (broker connected and each
//! service answers its `sys.health` within the health timeout).

use crate::error::{ApiError, Rendered};
use crate::openapi::{HealthDoc, PublicErrors, ReadyDoc};
use crate::routes::Bus;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use proto_msgs::{orders, users};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime};

/// Always 200 while the process runs.
#[utoipa::path(
    get, path = "/health", tag = "health",
    responses((status = 200, description = "The process is alive", body = HealthDoc))
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the broker is connected and both services answer; 503 otherwise, with the
/// same per-dependency report plus the usual `error` and `request_id`. Without the
/// operations token (when one is configured) the body is only `{"status": …}`.
#[utoipa::path(
    get, path = "/health/ready", tag = "health",
    security((), ("ops" = [])),
    responses(
        (status = 200, description = "Ready: every dependency answered", body = ReadyDoc),
        (status = 503, description = "A dependency is down (same report, plus `error`)", body = ReadyDoc),
        PublicErrors,
    )
)]
pub async fn ready(bus: Bus, state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let timeout = state.config.health_timeout;
    let broker = bus.is_connected();
    let (users, orders) = if broker {
        futures::join!(
            check(&bus, users::methods::HEALTH, timeout),
            check(&bus, orders::methods::HEALTH, timeout)
        )
    } else {
        let down = json!({"status": "unavailable", "error": "not connected to the message broker"});
        (down.clone(), down)
    };
    let up = |v: &Value| v["status"] == "ok";
    let ok = broker && up(&users) && up(&orders);
    if !state.config.ops.allows(&req) {
        let status = if ok { "ok" } else { "unavailable" };
        let code = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut res = HttpResponse::build(code).json(json!({ "status": status }));
        // What a load balancer needs and nothing more; telemetry leaves it alone.
        res.extensions_mut().insert(Rendered);
        return res;
    }
    let mut body = json!({
        "status": if ok { "ok" } else { "unavailable" },
        "checks": {
            "broker": {"status": if broker { "ok" } else { "unavailable" }},
            "users": users,
            "orders": orders,
        },
    });
    if ok {
        return HttpResponse::Ok().json(body);
    }
    let down: Vec<&str> = [
        ("broker", broker),
        ("users", up(&users)),
        ("orders", up(&orders)),
    ]
    .into_iter()
    .filter(|(_, up)| !up)
    .map(|(name, _)| name)
    .collect();
    let err = ApiError::unavailable(format!("not ready: {} down", down.join(", ")));
    let error: Value =
        serde_json::from_slice(&err.body(Some(bus.request_id()))).unwrap_or_else(|_| json!({}));
    body["error"] = error["error"].clone();
    body["request_id"] = error["request_id"].clone();
    let mut res = HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(body);
    // Already in the error shape, with the request id: telemetry leaves it alone.
    res.extensions_mut().insert(Rendered);
    res
}

async fn check(bus: &Bus, method: &str, timeout: Duration) -> Value {
    let mut ctx = bus.context(method, None);
    ctx.deadline = Some(SystemTime::now() + timeout);
    let started = Instant::now();
    let result = bus.call(method, &json!({}), &ctx).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    match result {
        Ok(_) => json!({"status": "ok", "latency_ms": latency_ms}),
        Err(err) => json!({
            "status": "unavailable",
            "latency_ms": latency_ms,
            "error": err.message,
        }),
    }
}
