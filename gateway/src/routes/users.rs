//! `/users/*`: register, login, the caller's profile, another user's profile.

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::openapi::{ErrorDoc, ProfileDoc, TokenDoc, UserDoc};
use crate::routes::Bus;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use proto_msgs::users::{
    Empty, GetUserRequest, LoginRequest, RegisterRequest, UpdateUserRequest, methods,
};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Body of `POST /users/register`. Other fields (such as `role`) are ignored: only
/// user-svc decides roles.
#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 72 bytes.
    #[schema(example = "correct horse battery")]
    pub password: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
}

/// Body of `POST /users/login`.
#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery")]
    pub password: String,
}

/// Body of `PATCH /users/me`: any subset. A new `password` needs `current_password`.
#[derive(Deserialize, ToSchema)]
pub struct UpdateUserBody {
    #[schema(example = "Ada King")]
    pub name: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Uuid,
}

/// Creates an account (role `user`).
#[utoipa::path(
    post, path = "/users/register", tag = "users",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered; `Location` names the new user", body = UserDoc),
        (status = 400, description = "Bad JSON or a bad field (`details.field`)", body = ErrorDoc),
        (status = 409, description = "Email already registered (`already_exists`)", body = ErrorDoc),
        (status = 413, description = "Body too large", body = ErrorDoc),
        (status = 415, description = "Body is not JSON", body = ErrorDoc),
        (status = 429, description = "Too many attempts from this address", body = ErrorDoc),
    )
)]
pub async fn register(bus: Bus, body: web::Json<RegisterBody>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let req = RegisterRequest {
        email: body.email,
        password: body.password,
        name: body.name,
    };
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
    request_body = LoginBody,
    responses(
        (status = 200, description = "An access token", body = TokenDoc),
        (status = 400, description = "Bad JSON", body = ErrorDoc),
        (status = 401, description = "Wrong email or password", body = ErrorDoc),
        (status = 429, description = "Too many attempts from this address", body = ErrorDoc),
    )
)]
pub async fn login(bus: Bus, body: web::Json<LoginBody>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let req = LoginRequest {
        email: body.email,
        password: body.password,
    };
    let ctx = bus.context(methods::LOGIN, None);
    Ok(bus.call(methods::LOGIN, &req, &ctx).await?.ok())
}

/// The caller's profile with order statistics.
#[utoipa::path(
    get, path = "/users/me", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = ProfileDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
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
        (status = 200, description = "The caller's profile", body = ProfileDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
    )
)]
pub async fn profile(bus: Bus, actor: Authenticated) -> Result<HttpResponse, ApiError> {
    me(bus, actor).await
}

/// Changes the caller's name and/or password.
#[utoipa::path(
    patch, path = "/users/me", tag = "users",
    security(("bearer" = [])),
    request_body = UpdateUserBody,
    responses(
        (status = 200, description = "The updated profile", body = ProfileDoc),
        (status = 400, description = "Bad JSON or a bad field", body = ErrorDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
        (status = 403, description = "Wrong `current_password`", body = ErrorDoc),
    )
)]
pub async fn update_me(
    bus: Bus,
    actor: Authenticated,
    body: web::Json<UpdateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let req = UpdateUserRequest {
        name: body.name,
        password: body.password,
        current_password: body.current_password,
    };
    let ctx = bus.context(methods::UPDATE, Some(actor.0));
    Ok(bus.call(methods::UPDATE, &req, &ctx).await?.ok())
}

/// A user's profile: the caller's own, or anyone's for an admin.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The profile", body = ProfileDoc),
        (status = 400, description = "`id` is not a UUID", body = ErrorDoc),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorDoc),
        (status = 404, description = "No such user (or another user's, for a non-admin)", body = ErrorDoc),
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
