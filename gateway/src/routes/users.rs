//! `/users/*`: register, login, the caller's profile, another user's profile.

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
    Empty, GetUserRequest, LoginRequest, RegisterRequest, TokenResponse, UpdateUserRequest, User,
    UserProfile, methods,
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

/// Exchanges email and password for an access token.
#[utoipa::path(
    post, path = "/users/login", tag = "users",
    request_body = LoginRequest,
    params(IdempotencyKeyHeader),
    responses(
        (status = 200, description = "An access token", body = TokenResponse),
        (status = 400, description = "Bad JSON, a malformed email, an empty password or one over 72 bytes", body = ErrorDoc),
        (status = 401, description = "Wrong email or password (one message for both)", body = ErrorDoc),
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
