//! `/users/*`: register, login, sessions (refresh, logout), the caller's profile,
//! another user's profile, an admin's change of an account.

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::openapi::{BodyErrors, ErrorDoc, PublicErrors, ServiceErrors, TokenErrors};
use crate::routes::extract::Json;
use crate::routes::{Bus, IdempotencyKeyHeader};
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use proto_msgs::users::{
    AccountChange, AdminUpdateRequest, Empty, GetUserRequest, LoginRequest, LogoutResponse,
    RefreshRequest, RegisterRequest, TokenResponse, UpdateUserRequest, User, UserProfile, methods,
};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct IdOnly {
    id: Uuid,
}

/// Creates an account (role `user`). Other fields (such as `role`) are ignored: only
/// user-svc decides roles.
#[utoipa::path(
    post, path = "/users/register", tag = "users",
    request_body = RegisterRequest,
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "Registered", body = User,
         headers(("Location" = String, description = "`/users/{id}` of the new user"))),
        (status = 400, description = "Bad JSON or a bad field (`details.field`)", body = ErrorDoc),
        (status = 409, description = "Email already registered (`already_exists`), or the idempotency key used before with another body (`failed_precondition`)", body = ErrorDoc),
        BodyErrors, PublicErrors, ServiceErrors,
    )
)]
pub async fn register(bus: Bus, body: Json<RegisterRequest>) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let ctx = bus.context(methods::REGISTER, None);
    let data = bus.call(methods::REGISTER, &req, &ctx).await?;
    let location = data
        .decode::<IdOnly>()
        .ok()
        .map(|u| format!("/users/{}", u.id));
    let mut res = data.respond(StatusCode::CREATED);
    if let Some(location) = location.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// Exchanges email and password for an access token and a refresh token: a new
/// session.
#[utoipa::path(
    post, path = "/users/login", tag = "users",
    request_body = LoginRequest,
    params(IdempotencyKeyHeader),
    responses(
        (status = 200, description = "An access token and the session's refresh token", body = TokenResponse),
        (status = 400, description = "Bad JSON, a malformed email, an empty password or one over 72 bytes", body = ErrorDoc),
        (status = 401, description = "Wrong email or password (one message for both)", body = ErrorDoc),
        (status = 403, description = "The account is disabled (said only with the right password)", body = ErrorDoc),
        BodyErrors, PublicErrors, ServiceErrors,
    )
)]
pub async fn login(bus: Bus, body: Json<LoginRequest>) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let ctx = bus.context(methods::LOGIN, None);
    Ok(bus.call(methods::LOGIN, &req, &ctx).await?.ok())
}

/// The caller's profile with order statistics.
#[utoipa::path(
    get, path = "/users/me", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = UserProfile),
        (status = 404, description = "The caller's account is gone", body = ErrorDoc),
        TokenErrors, ServiceErrors,
    )
)]
pub async fn me(bus: Bus, actor: Authenticated) -> Result<HttpResponse, ApiError> {
    let ctx = bus.context(methods::ME, Some(actor.0));
    Ok(bus.call(methods::ME, &Empty {}, &ctx).await?.ok())
}

/// Alias of `GET /users/me` (the seeds' path).
#[utoipa::path(
    get, path = "/users/profile", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = UserProfile),
        (status = 404, description = "The caller's account is gone", body = ErrorDoc),
        TokenErrors, ServiceErrors,
    )
)]
pub async fn profile(bus: Bus, actor: Authenticated) -> Result<HttpResponse, ApiError> {
    me(bus, actor).await
}

/// Changes the caller's name and/or password (any subset; a new `password` needs
/// `current_password`).
#[utoipa::path(
    patch, path = "/users/me", tag = "users",
    security(("bearer" = [])),
    request_body = UpdateUserRequest,
    params(IdempotencyKeyHeader),
    responses(
        (status = 200, description = "The updated profile", body = UserProfile),
        (status = 400, description = "Bad JSON or a bad field (`details.field`; `current_password` missing with `password`)", body = ErrorDoc),
        (status = 403, description = "Wrong `current_password`", body = ErrorDoc),
        (status = 404, description = "The caller's account is gone", body = ErrorDoc),
        (status = 409, description = "The idempotency key used before with another body (`failed_precondition`)", body = ErrorDoc),
        BodyErrors, TokenErrors, ServiceErrors,
    )
)]
pub async fn update_me(
    bus: Bus,
    actor: Authenticated,
    body: Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let ctx = bus.context(methods::UPDATE, Some(actor.0));
    Ok(bus.call(methods::UPDATE, &req, &ctx).await?.ok())
}

/// A user's profile: the caller's own, or anyone's for an admin.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The profile", body = UserProfile),
        (status = 400, description = "`id` is not a UUID", body = ErrorDoc),
        (status = 404, description = "No such user (or another user's, for a non-admin)", body = ErrorDoc),
        TokenErrors, ServiceErrors,
    )
)]
pub async fn get(
    bus: Bus,
    actor: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let req = GetUserRequest {
        id: id.into_inner(),
    };
    let ctx = bus.context(methods::GET, Some(actor.0));
    Ok(bus.call(methods::GET, &req, &ctx).await?.ok())
}

/// Exchanges the session's refresh token for new tokens. The refresh token presented
/// is spent: presenting it again ends the whole session (it was copied).
#[utoipa::path(
    post, path = "/users/token/refresh", tag = "users",
    params(IdempotencyKeyHeader),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and the session's next refresh token", body = TokenResponse),
        (status = 400, description = "Bad JSON or not a refresh token's shape", body = ErrorDoc),
        (status = 401, description = "Unknown, expired or spent refresh token, ended session, or disabled account (one message for all)", body = ErrorDoc),
        BodyErrors, PublicErrors, ServiceErrors,
    )
)]
pub async fn refresh(bus: Bus, body: Json<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let ctx = bus.context(methods::REFRESH, None);
    Ok(bus.call(methods::REFRESH, &req, &ctx).await?.ok())
}

/// Ends the session the refresh token belongs to; its access tokens are refused
/// within seconds. The refresh token is the proof, so no access token is needed (an
/// expired session can still be ended). Logging out twice is not an error.
#[utoipa::path(
    post, path = "/users/logout", tag = "users",
    params(IdempotencyKeyHeader),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Sessions ended (0 when it was already over)", body = LogoutResponse),
        (status = 400, description = "Bad JSON or not a refresh token's shape", body = ErrorDoc),
        (status = 401, description = "Unknown refresh token", body = ErrorDoc),
        BodyErrors, PublicErrors, ServiceErrors,
    )
)]
pub async fn logout(bus: Bus, body: Json<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let ctx = bus.context(methods::LOGOUT, None);
    Ok(bus.call(methods::LOGOUT, &req, &ctx).await?.ok())
}

/// Ends every session of the caller: all their refresh tokens stop working and every
/// access token issued so far (this one included) is refused within seconds.
#[utoipa::path(
    post, path = "/users/logout/all", tag = "users",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    responses(
        (status = 200, description = "Sessions ended", body = LogoutResponse),
        (status = 400, description = "A malformed `Idempotency-Key`", body = ErrorDoc),
        (status = 404, description = "The caller's account is gone", body = ErrorDoc),
        TokenErrors, ServiceErrors,
    )
)]
pub async fn logout_all(bus: Bus, actor: Authenticated) -> Result<HttpResponse, ApiError> {
    let ctx = bus.context(methods::LOGOUT_ALL, Some(actor.0));
    Ok(bus.call(methods::LOGOUT_ALL, &Empty {}, &ctx).await?.ok())
}

/// Admins only: changes an account's role and/or disables it (or enables it again).
/// A role change or disabling ends every session of the account.
#[utoipa::path(
    patch, path = "/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id"), IdempotencyKeyHeader),
    request_body = AccountChange,
    responses(
        (status = 200, description = "The account after the change", body = UserProfile),
        (status = 400, description = "Bad JSON, a bad field, or `id` is not a UUID", body = ErrorDoc),
        (status = 403, description = "The caller is not an admin", body = ErrorDoc),
        (status = 404, description = "No such user", body = ErrorDoc),
        (status = 409, description = "An admin changing their own role or disabling themselves (`failed_precondition`)", body = ErrorDoc),
        BodyErrors, TokenErrors, ServiceErrors,
    )
)]
pub async fn admin_update(
    bus: Bus,
    actor: Authenticated,
    id: web::Path<Uuid>,
    body: Json<AccountChange>,
) -> Result<HttpResponse, ApiError> {
    let req = AdminUpdateRequest {
        id: id.into_inner(),
        change: body.into_inner(),
    };
    let ctx = bus.context(methods::ADMIN_UPDATE, Some(actor.0));
    Ok(bus.call(methods::ADMIN_UPDATE, &req, &ctx).await?.ok())
}
