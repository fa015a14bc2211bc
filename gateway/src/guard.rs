//! The middleware between telemetry and the routes: decides per route what a request
//! needs (a verified token, which rate-limit policy) before any handler runs.
//!
//! Routes are protected unless listed as public here, so a new route fails closed.
//! A request with a missing or bad token on a protected route is charged to its IP
//! under the `anon` policy, so guessing tokens is rate limited too.

use crate::auth::Verifier;
use crate::error::ApiError;
use crate::limits::{Decision, Policy, client_ip};
use crate::state::AppState;
use crate::telemetry::{RequestMeta, RoutePattern};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

/// What a route asks of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Liveness: never limited, never authenticated.
    Exempt,
    /// Login, register, refresh and logout (a credential in the body): the strict
    /// per-IP policy.
    Credentials,
    /// No token needed: per-IP policy.
    Public,
    /// Token needed: per-user policy.
    Protected,
}

/// The access rule of a route pattern (`None`: no route matched) for `method`:
/// browsing the catalog is public, changing it is not.
pub fn access(method: &Method, pattern: Option<&str>) -> Access {
    if method == Method::GET && matches!(pattern, Some("/products" | "/products/{id}")) {
        return Access::Public;
    }
    match pattern {
        Some("/health") => Access::Exempt,
        Some("/users/register" | "/users/login" | "/users/token/refresh" | "/users/logout") => {
            Access::Credentials
        }
        None
        | Some(
            "/health/ready" | "/metrics" | "/metrics/users" | "/metrics/orders" | "/openapi.json",
        ) => Access::Public,
        Some(p) if p == "/docs" || p.starts_with("/docs/") => Access::Public,
        Some(_) => Access::Protected,
    }
}

/// The middleware function (wrap with `actix_web::middleware::from_fn`).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.error_response(ApiError::internal("application state missing")));
    };
    let ip = client_ip(req.request(), state.config.trusted_proxy_hops);
    let pattern = match req.extensions().get::<RoutePattern>() {
        Some(RoutePattern(pattern)) => pattern.clone(),
        None => req.match_pattern(),
    };
    let decision = match access(req.method(), pattern.as_deref()) {
        Access::Exempt => None,
        Access::Credentials => state.limits.check_ip(Policy::Auth, ip),
        Access::Public => state.limits.check_ip(Policy::Anon, ip),
        Access::Protected => {
            let meta = req.extensions().get::<RequestMeta>().cloned();
            let ctx = meta
                .map(|m| m.rpc_context(None, state.config.rpc_timeout))
                .unwrap_or_default();
            let verified = match Verifier::bearer(req.request()) {
                Some(token) => state.verifier.verify(token, &ctx).await,
                None => Err(crate::auth::AuthError::Missing),
            };
            match verified {
                Ok(actor) => {
                    req.extensions_mut().insert(actor);
                    state.limits.check_user(actor.id)
                }
                Err(err) => {
                    state.metrics.auth_refused(err.reason());
                    if let Some(d) = state.limits.check_ip(Policy::Anon, ip)
                        && d.limited()
                    {
                        return Ok(refuse(req, &state, &d));
                    }
                    return Ok(req.error_response(ApiError::from(err)));
                }
            }
        }
    };
    if let Some(d) = &decision
        && d.limited()
    {
        return Ok(refuse(req, &state, d));
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Some(d) = decision {
        for (name, value) in d.headers() {
            res.headers_mut().insert(name, value);
        }
    }
    Ok(res)
}

fn refuse(req: ServiceRequest, state: &AppState, decision: &Decision) -> ServiceResponse<BoxBody> {
    state.metrics.rate_limited(decision.policy.as_str());
    req.error_response(decision.error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fail_closed() {
        assert_eq!(access(&Method::GET, Some("/health")), Access::Exempt);
        assert_eq!(access(&Method::GET, Some("/products")), Access::Public);
        assert_eq!(access(&Method::GET, Some("/products/{id}")), Access::Public);
        assert_eq!(access(&Method::POST, Some("/products")), Access::Protected);
        assert_eq!(
            access(&Method::PATCH, Some("/products/{id}")),
            Access::Protected
        );
        assert_eq!(
            access(&Method::POST, Some("/products/{id}/stock")),
            Access::Protected
        );
        assert_eq!(
            access(&Method::GET, Some("/users/login")),
            Access::Credentials
        );
        assert_eq!(
            access(&Method::GET, Some("/users/register")),
            Access::Credentials
        );
        assert_eq!(access(&Method::GET, Some("/openapi.json")), Access::Public);
        assert_eq!(access(&Method::GET, Some("/docs/{_:.*}")), Access::Public);
        assert_eq!(access(&Method::GET, None), Access::Public);
        assert_eq!(
            access(&Method::POST, Some("/users/token/refresh")),
            Access::Credentials
        );
        assert_eq!(
            access(&Method::POST, Some("/users/logout")),
            Access::Credentials
        );
        for p in [
            "/users/me",
            "/users/profile",
            "/users/{id}",
            "/users/logout/all",
            "/orders",
            "/orders/{id}",
            "/orders/{id}/status",
            "/orders/user/{user_id}",
            "/some/new/route",
        ] {
            assert_eq!(access(&Method::GET, Some(p)), Access::Protected, "{p}");
        }
    }
}
