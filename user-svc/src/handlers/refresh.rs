//! `users.refresh {refresh_token}` → new tokens of the same session; the presented
//! refresh token is spent.
//!
//! `unauthenticated` (one message, so a caller learns nothing about other sessions)
//! for a token that is unknown, expired, of a revoked session, or of an account that is
//! gone or disabled. A spent token presented again means it was copied: the whole
//! session is revoked (its newest refresh token and its access tokens stop working,
//! `user.sessions_revoked` is emitted) and the answer is `unauthenticated` too.
//!
//! Exactly once, without keeping tokens: what is stored as the reply is the session
//! that was rotated, never the tokens (only their hashes are kept). A redelivered or
//! retried refresh (same idempotency key or message id) is therefore not taken for
//! reuse: it spends what the lost reply carried and answers new tokens of the same
//! session, marked as replayed.

use crate::db::entities::{refresh_token, session, user};
use crate::error::Error;
use crate::sessions;
use crate::state::AppState;
use proto_msgs::users::{RefreshRequest, RevocationReason, TokenResponse, methods};
use proto_msgs::{RequestContext, RpcError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use svc_kit::replies::Idempotent;
use uuid::Uuid;

/// The stored reply of a refresh: the session it rotated.
#[derive(Debug, Serialize, Deserialize)]
struct Rotated {
    session_id: Uuid,
}

/// The only message a refused refresh gets.
pub const REFRESH_REFUSED: &str = "the refresh token is not valid (expired, already used, or its session has ended): log in again";

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: RefreshRequest,
) -> Result<TokenResponse, Error> {
    let refused = || Error::Rpc(RpcError::unauthenticated(REFRESH_REFUSED));
    let now = chrono::Utc::now();
    let once = Idempotent::of(&ctx, methods::REFRESH, &req)?;
    let txn = state.db.begin().await?;
    if let Some(Rotated { session_id }) = once.claim(&txn).await? {
        return retried(&state, txn, session_id, now).await;
    }
    // Locked: two refreshes with one token serialize here, and the second one sees the
    // first one's `rotated_at` (reuse), never two new tokens from one old one.
    let Some(presented) = refresh_token::Entity::find_by_id(sessions::hash(&req.refresh_token))
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Err(refused());
    };
    let Some(session) = session::Entity::find_by_id(presented.session_id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Err(refused());
    };
    if session.revoked_at.is_some() {
        return Err(refused());
    }
    if presented.rotated_at.is_some() {
        tracing::warn!(user_id = %session.user_id, sid = %session.id, "spent refresh token presented again: session revoked");
        // Not in `txn`: it holds this request's claim, which only a success keeps.
        drop(txn);
        let txn = state.db.begin().await?;
        sessions::revoke_session(
            &txn,
            session.user_id,
            session.id,
            RevocationReason::RefreshReuse,
            Some(&ctx),
        )
        .await?;
        txn.commit().await?;
        state.outbox.notify();
        return Err(refused());
    }
    if presented.expires_at <= now {
        return Err(refused());
    }
    let Some(account) = user::Entity::find_by_id(session.user_id).one(&txn).await? else {
        return Err(refused());
    };
    if account.disabled {
        return Err(refused());
    }
    let mut spent: refresh_token::ActiveModel = presented.into();
    spent.rotated_at = Set(Some(now));
    spent.update(&txn).await?;
    // The role is read again: a refresh after a role change carries the new one.
    let tokens = sessions::tokens(&state, &txn, &account, session.id, now).await?;
    once.save(
        &txn,
        &Rotated {
            session_id: session.id,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(tokens)
}

/// A retry of a refresh that already rotated `session_id`: the tokens its lost reply
/// carried are spent, and new ones of the same session answered (unless the session
/// ended or the account is disabled meanwhile).
async fn retried(
    state: &AppState,
    txn: sea_orm::DatabaseTransaction,
    session_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<TokenResponse, Error> {
    let refused = || Error::Rpc(RpcError::unauthenticated(REFRESH_REFUSED));
    let Some(session) = session::Entity::find_by_id(session_id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Err(refused());
    };
    if session.revoked_at.is_some() {
        return Err(refused());
    }
    let Some(account) = user::Entity::find_by_id(session.user_id).one(&txn).await? else {
        return Err(refused());
    };
    if account.disabled {
        return Err(refused());
    }
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .filter(refresh_token::Column::SessionId.eq(session.id))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .exec(&txn)
        .await?;
    let tokens = sessions::tokens(state, &txn, &account, session.id, now).await?;
    txn.commit().await?;
    Ok(tokens)
}
