//! `users.logout {refresh_token}` → `{revoked_sessions}`: ends the session the refresh
//! token belongs to (spent or not: a copied old token is enough to end a session
//! that is being abused). Its access tokens are refused by the gateway as soon as it
//! hears `user.sessions_revoked`. An unknown token is `unauthenticated`; a session
//! already over answers `revoked_sessions: 0` (logging out twice is not an error).

use crate::db::entities::{refresh_token, session};
use crate::error::Error;
use crate::sessions;
use crate::state::AppState;
use proto_msgs::users::{LogoutResponse, RefreshRequest, RevocationReason, methods};
use proto_msgs::{RequestContext, RpcError};
use sea_orm::{EntityTrait, TransactionTrait};
use std::sync::Arc;
use svc_kit::replies::Idempotent;

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: RefreshRequest,
) -> Result<LogoutResponse, Error> {
    let unknown = || Error::Rpc(RpcError::unauthenticated("unknown refresh token"));
    let once = Idempotent::of(&ctx, methods::LOGOUT, &req)?;
    let txn = state.db.begin().await?;
    // A retry answers what the first delivery did (it ended 1 session, not 0).
    if let Some(reply) = once.claim(&txn).await? {
        return Ok(reply);
    }
    let Some(token) = refresh_token::Entity::find_by_id(sessions::hash(&req.refresh_token))
        .one(&txn)
        .await?
    else {
        return Err(unknown());
    };
    let Some(session) = session::Entity::find_by_id(token.session_id)
        .one(&txn)
        .await?
    else {
        return Err(unknown());
    };
    let ended = sessions::revoke_session(
        &txn,
        session.user_id,
        session.id,
        RevocationReason::Logout,
        Some(&ctx),
    )
    .await?;
    let reply = LogoutResponse {
        revoked_sessions: u64::from(ended),
    };
    once.save(&txn, &reply).await?;
    txn.commit().await?;
    state.outbox.notify();
    Ok(reply)
}
