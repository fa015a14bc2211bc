//! `users.logout_all {}` for the actor → `{revoked_sessions}`: ends every session of
//! the caller and refuses every access token issued to them so far (including the one
//! that made this call). Errors: `unauthenticated` (no actor), `not_found` (the
//! account is gone), `unavailable`, `internal`.

use crate::db::entities::user;
use crate::error::{Error, user_not_found};
use crate::sessions;
use crate::state::AppState;
use proto_msgs::RequestContext;
use proto_msgs::users::{Empty, LogoutResponse, RevocationReason, methods};
use sea_orm::{EntityTrait, QuerySelect, TransactionTrait};
use std::sync::Arc;
use svc_kit::replies::Idempotent;

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: Empty,
) -> Result<LogoutResponse, Error> {
    let actor = ctx.require_actor()?;
    let once = Idempotent::of(&ctx, methods::LOGOUT_ALL, &req)?;
    let txn = state.db.begin().await?;
    if let Some(reply) = once.claim(&txn).await? {
        return Ok(reply);
    }
    let account = user::Entity::find_by_id(actor.id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(user_not_found)?;
    let ended =
        sessions::revoke_user(&txn, &account, RevocationReason::LogoutAll, Some(&ctx)).await?;
    let reply = LogoutResponse {
        revoked_sessions: ended,
    };
    once.save(&txn, &reply).await?;
    txn.commit().await?;
    state.outbox.notify();
    Ok(reply)
}
