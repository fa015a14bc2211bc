//! `users.login {email, password}` → `{access_token, token_type: "Bearer", expires_in}`.
//!
//! Errors: `unauthenticated` with one message for an unknown email and a wrong
//! password alike (both take one bcrypt verification, so timing tells nothing either);
//! `invalid_argument` for an empty field, a malformed email or a password over 72
//! bytes (none of which says anything about accounts; checked while the request is
//! read, by the contract types); `resource_exhausted` with `retry_after_s` after too
//! many failed attempts for the email (known or not: see `throttle`) or when the bcrypt
//! lane is full; `deadline_exceeded` when the deadline passed while waiting for
//! bcrypt; `unavailable`, `internal`. The 8-byte minimum of new passwords is not
//! checked: a login only ever says "incorrect".

use crate::db::entities::user;
use crate::error::Error;
use crate::state::AppState;
use crate::throttle::Scope;
use proto_msgs::users::{LoginRequest, TokenResponse};
use proto_msgs::{RequestContext, RpcError};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::sync::Arc;

/// The only message a failed login gets.
pub const BAD_CREDENTIALS: &str = "email or password is incorrect";

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: LoginRequest,
) -> Result<TokenResponse, Error> {
    let LoginRequest { email, password } = req;
    let password = password.expose();
    // A place in the bcrypt lane first: a refusal costs no database work either.
    let lane = state.hasher.admit(&ctx)?;
    let attempt = state
        .throttle
        .begin(&state.db, Scope::Login(&email))
        .await?;
    let found = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&state.db)
        .await?;
    let verdict = match &found {
        Some(found) => lane.verify(password, &found.password_hash).await,
        None => lane.verify_dummy(password).await,
    };
    match (attempt.settle(verdict).await?, found) {
        (true, Some(found)) => Ok(state.tokens.issue(found.id, found.role.into())?),
        _ => Err(RpcError::unauthenticated(BAD_CREDENTIALS).into()),
    }
}
