//! Sessions: a login opens one (a row in `sessions`, the family of its refresh
//! tokens); each refresh spends the presented token and hands out the next; a spent
//! token presented again revokes the whole session (it was copied: whoever holds the
//! newest one is cut off too). Revoking writes `user.sessions_revoked` to the outbox
//! in the same transaction, which the gateway consumes.
//!
//! Two kinds of revocation, matching what the gateway checks on an access token:
//! - one session ([`revoke_session`]): its `sid` is refused;
//! - every session of a user ([`revoke_user`]): `users.tokens_not_before` moves to the
//!   next second, and tokens with an older `iat` are refused. New tokens are issued
//!   with an `iat` of at least that (see [`crate::tokens::TokenIssuer::issue`]).

use crate::db::entities::{refresh_token, session, user};
use crate::error::Error;
use crate::events::SOURCE;
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use proto_msgs::events::types;
use proto_msgs::users::TOKEN_LEEWAY_SECS;
use proto_msgs::users::{
    REFRESH_TOKEN_BYTES, RefreshToken, RevocationReason, SessionsRevoked, TokenResponse,
};
use proto_msgs::{CloudEvent, RequestContext};
use rand_core::RngCore;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A fresh refresh token: 256 bits from the OS, base64url.
pub fn new_refresh_token() -> Result<RefreshToken, Error> {
    let mut bytes = zeroize::Zeroizing::new([0u8; REFRESH_TOKEN_BYTES]);
    rand_core::OsRng.fill_bytes(bytes.as_mut());
    let text = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()));
    // Always the right length and alphabet; an error would be a bug in the constants.
    RefreshToken::parse(&text).map_err(|e| {
        tracing::error!(error = %e, "refresh token encoding");
        proto_msgs::RpcError::internal("the service failed to process the request").into()
    })
}

/// What is stored for a refresh token: its SHA-256. The token has 256 random bits,
/// so nothing slower or salted is needed to make a leaked hash useless.
pub fn hash(token: &RefreshToken) -> Vec<u8> {
    Sha256::digest(token.expose().as_bytes()).to_vec()
}

/// Opens a session for `u` and returns its first tokens.
pub async fn open<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    u: &user::Model,
) -> Result<TokenResponse, Error> {
    prune(state, conn, u.id).await?;
    let now = Utc::now();
    let sid = Uuid::now_v7();
    session::ActiveModel {
        id: Set(sid),
        user_id: Set(u.id),
        created_at: Set(now),
        revoked_at: Set(None),
        revoked_reason: Set(None),
    }
    .insert(conn)
    .await?;
    tokens(state, conn, u, sid, now).await
}

/// Forgets what of `user_id`'s sessions nothing needs any more: refresh tokens past
/// their expiry (presenting one is refused all the same, as unknown), sessions revoked
/// longer ago than an access-token lifetime (the gateways' snapshot no longer needs
/// them), and sessions left without a refresh token. Called at each login, so the
/// tables stay as large as the live sessions.
pub async fn prune<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    user_id: Uuid,
) -> Result<(), Error> {
    let now = Utc::now();
    let own_sessions = Query::select()
        .column(session::Column::Id)
        .from(session::Entity)
        .and_where(session::Column::UserId.eq(user_id))
        .to_owned();
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::SessionId.in_subquery(own_sessions))
        .filter(refresh_token::Column::ExpiresAt.lt(now))
        .exec(conn)
        .await?;
    let window = state.tokens.ttl() + std::time::Duration::from_secs(TOKEN_LEEWAY_SECS);
    let cutoff = now - window;
    let tokens_of_session = Query::select()
        .column(refresh_token::Column::TokenHash)
        .from(refresh_token::Entity)
        .and_where(
            Expr::col((refresh_token::Entity, refresh_token::Column::SessionId))
                .equals((session::Entity, session::Column::Id)),
        )
        .to_owned();
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .filter(
            Condition::any()
                .add(session::Column::RevokedAt.lt(cutoff))
                .add(
                    Condition::all()
                        .add(session::Column::RevokedAt.is_null())
                        .add(Expr::exists(tokens_of_session).not()),
                ),
        )
        .exec(conn)
        .await?;
    Ok(())
}

/// Stores the next refresh token of session `sid` and signs an access token with it.
pub async fn tokens<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    u: &user::Model,
    sid: Uuid,
    now: DateTime<Utc>,
) -> Result<TokenResponse, Error> {
    let refresh = new_refresh_token()?;
    let refresh_ttl = state.refresh_ttl;
    refresh_token::ActiveModel {
        token_hash: Set(hash(&refresh)),
        session_id: Set(sid),
        expires_at: Set(now + refresh_ttl),
        rotated_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    let access_token = state
        .tokens
        .issue(u.id, u.role.into(), sid, u.tokens_not_before)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.ttl().as_secs(),
        refresh_token: refresh,
        refresh_expires_in: refresh_ttl.as_secs(),
    })
}

/// Ends session `sid` of `user_id` (if still live) and announces it. Returns whether
/// it was live.
pub async fn revoke_session<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    sid: Uuid,
    reason: RevocationReason,
    ctx: Option<&RequestContext>,
) -> Result<bool, Error> {
    let now = Utc::now();
    let done = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(
            session::Column::RevokedReason,
            Expr::value(reason_text(reason)),
        )
        .filter(session::Column::Id.eq(sid))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Ok(false);
    }
    let event = SessionsRevoked {
        user_id,
        sid: Some(sid),
        not_before: now.timestamp(),
        reason,
    };
    svc_kit::outbox::enqueue(conn, &revoked_event(event, ctx)).await?;
    tracing::info!(%user_id, %sid, reason = reason_text(reason), "session revoked");
    Ok(true)
}

/// Ends every session of `u` and refuses every access token it holds: moves
/// `tokens_not_before` to the next second (so a token issued earlier in this second
/// is refused too; past the previous value, always) and announces it. `u` must be
/// the row as locked in this transaction. Returns the number of sessions that were live.
pub async fn revoke_user<C: ConnectionTrait>(
    conn: &C,
    u: &user::Model,
    reason: RevocationReason,
    ctx: Option<&RequestContext>,
) -> Result<u64, Error> {
    let now = Utc::now();
    // Past the previous revocation too: tokens issued since then carry an `iat` of
    // that one, which this one must also refuse (two revocations in one second).
    let not_before = Ord::max(
        now.timestamp() + 1,
        u.tokens_not_before.map_or(0, |nb| nb + 1),
    );
    let ended = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(
            session::Column::RevokedReason,
            Expr::value(reason_text(reason)),
        )
        .filter(session::Column::UserId.eq(u.id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected;
    user::Entity::update_many()
        .col_expr(user::Column::TokensNotBefore, Expr::value(not_before))
        .filter(user::Column::Id.eq(u.id))
        .exec(conn)
        .await?;
    let event = SessionsRevoked {
        user_id: u.id,
        sid: None,
        not_before,
        reason,
    };
    svc_kit::outbox::enqueue(conn, &revoked_event(event, ctx)).await?;
    tracing::info!(user_id = %u.id, sessions = ended, reason = reason_text(reason), "all sessions revoked");
    Ok(ended)
}

fn revoked_event(
    data: SessionsRevoked,
    ctx: Option<&RequestContext>,
) -> CloudEvent<SessionsRevoked> {
    let event = CloudEvent::new(
        SOURCE,
        types::USER_SESSIONS_REVOKED,
        data.user_id.to_string(),
        data,
    );
    match ctx {
        Some(ctx) => event.with_trace(ctx.traceparent.as_ref(), ctx.tracestate.as_deref()),
        None => event,
    }
}

/// The reason as stored and logged (its wire spelling).
pub fn reason_text(reason: RevocationReason) -> &'static str {
    match reason {
        RevocationReason::Logout => "logout",
        RevocationReason::LogoutAll => "logout_all",
        RevocationReason::RefreshReuse => "refresh_reuse",
        RevocationReason::PasswordChanged => "password_changed",
        RevocationReason::RoleChanged => "role_changed",
        RevocationReason::Disabled => "disabled",
    }
}

/// The reason read back from `sessions.revoked_reason` (an unknown text, from a newer
/// version, reads as a logout: the session is revoked either way).
pub fn reason_of(text: Option<&str>) -> RevocationReason {
    match text {
        Some("logout_all") => RevocationReason::LogoutAll,
        Some("refresh_reuse") => RevocationReason::RefreshReuse,
        Some("password_changed") => RevocationReason::PasswordChanged,
        Some("role_changed") => RevocationReason::RoleChanged,
        Some("disabled") => RevocationReason::Disabled,
        _ => RevocationReason::Logout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let a = new_refresh_token().unwrap();
        let b = new_refresh_token().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), proto_msgs::users::REFRESH_TOKEN_LEN);
        assert_eq!(hash(&a).len(), 32);
        assert_eq!(hash(&a), hash(&a.clone()));
        assert_ne!(hash(&a), hash(&b));
        assert_ne!(hash(&a), a.expose().as_bytes());
    }

    #[test]
    fn reasons_read_back_as_written() {
        for r in [
            RevocationReason::Logout,
            RevocationReason::LogoutAll,
            RevocationReason::RefreshReuse,
            RevocationReason::PasswordChanged,
            RevocationReason::RoleChanged,
            RevocationReason::Disabled,
        ] {
            assert_eq!(reason_of(Some(reason_text(r))), r);
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::json!(reason_text(r))
            );
        }
    }
}
