//! `users.login {email, password}` → `{access_token, token_type: "Bearer", expires_in,
//! refresh_token, refresh_expires_in}`: opens a session (see [`crate::sessions`]).
//!
//! Errors: `unauthenticated` with one message for an unknown email and a wrong
//! password alike (both take one bcrypt verification, so timing tells nothing either);
//! `invalid_argument` for an empty field, a malformed email or a password over 72
//! bytes (none of which says anything about accounts; checked while the request is
//! read, by the contract types); `unavailable`, `internal`. The 8-byte minimum of new
//! passwords is not checked: a login only ever says "incorrect". A disabled account
//! with the right password gets `permission_denied` (only its owner learns that).

use crate::db::entities::user;
use crate::error::Error;
use crate::state::AppState;
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
    _ctx: RequestContext,
    req: LoginRequest,
) -> Result<TokenResponse, Error> {
    let LoginRequest { email, password } = req;
    let password = password.expose();
    let found = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&state.db)
        .await?;
    let Some(found) = found else {
        state.hasher.verify_dummy(password).await?;
        return Err(RpcError::unauthenticated(BAD_CREDENTIALS).into());
    };
    if !state.hasher.verify(password, &found.password_hash).await? {
        return Err(RpcError::unauthenticated(BAD_CREDENTIALS).into());
    }
    if found.disabled {
        return Err(RpcError::permission_denied(ACCOUNT_DISABLED).into());
    }
    let txn = state.db.begin().await?;
    let tokens = crate::sessions::open(&state, &txn, &found).await?;
    txn.commit().await?;
    Ok(tokens)
}
