//! `users.login {email, password}` → `{access_token, token_type: "Bearer", expires_in,
//! refresh_token, refresh_expires_in}`: opens a session (see [`crate::sessions`]).
//!
//! Errors: `unauthenticated` with one message for an unknown email and a wrong
//! password alike (both take one bcrypt verification, so timing tells nothing either);
//! `invalid_argument` for an empty field, a malformed email or a password over 72
//! bytes (none of which says anything about accounts; checked while the request is
//! read, by the contract types); `resource_exhausted` with `retry_after_s` after too
//! many failed attempts for the email (known or not: see `throttle`) or when the bcrypt
//! lane is full; `deadline_exceeded` when the deadline passed while waiting for
//! bcrypt; `unavailable`, `internal`. The 8-byte minimum of new passwords is not
//! checked: a login only ever says "incorrect". A disabled account with the right
//! password gets `permission_denied` (only its owner learns that).

use crate::db::entities::user;
use crate::error::Error;
use crate::state::AppState;
use crate::throttle::Scope;
use proto_msgs::users::{LoginRequest, TokenResponse};
use proto_msgs::{RequestContext, RpcError};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use std::sync::Arc;

/// The only message a failed login gets.
pub const BAD_CREDENTIALS: &str = "email or password is incorrect";
/// What a disabled account is told (after its password was checked).
pub const ACCOUNT_DISABLED: &str = "this account is disabled";

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
    let found = match (attempt.settle(verdict).await?, found) {
        (true, Some(found)) => found,
        _ => return Err(RpcError::unauthenticated(BAD_CREDENTIALS).into()),
    };
    if found.disabled {
        return Err(RpcError::permission_denied(ACCOUNT_DISABLED).into());
    }
    let txn = state.db.begin().await?;
    let tokens = crate::sessions::open(&state, &txn, &found).await?;
    txn.commit().await?;
    Ok(tokens)
}
