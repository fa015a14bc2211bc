//! `users.revocations {}` → [`Revocations`]: every revocation whose access tokens may
//! still be alive (within one access-token lifetime plus the leeway), for a gateway
//! that starts or reconnects and may have missed `user.sessions_revoked` events.
//! Needs no actor: it is the gateway's, answered over the bus only (ids, no secrets).

use crate::db::entities::{session, user};
use crate::error::Error;
use crate::sessions::reason_of;
use crate::state::AppState;
use proto_msgs::RequestContext;
use proto_msgs::users::{Empty, RevocationReason, Revocations, SessionsRevoked, TOKEN_LEEWAY_SECS};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::sync::Arc;

pub async fn handle(
    state: Arc<AppState>,
    _ctx: RequestContext,
    _req: Empty,
) -> Result<Revocations, Error> {
    let ttl = state.tokens.ttl().as_secs();
    let window =
        chrono::Duration::seconds(i64::try_from(ttl + TOKEN_LEEWAY_SECS).unwrap_or(i64::MAX));
    let cutoff = chrono::Utc::now() - window;
    let mut revoked: Vec<SessionsRevoked> = user::Entity::find()
        .filter(user::Column::TokensNotBefore.gt(cutoff.timestamp()))
        .all(&state.db)
        .await?
        .into_iter()
        .filter_map(|u| {
            u.tokens_not_before.map(|not_before| SessionsRevoked {
                user_id: u.id,
                sid: None,
                not_before,
                // The snapshot does not keep why; the gateway does not need it.
                reason: if u.disabled {
                    RevocationReason::Disabled
                } else {
                    RevocationReason::LogoutAll
                },
            })
        })
        .collect();
    let sessions = session::Entity::find()
        .filter(session::Column::RevokedAt.gt(cutoff))
        .all(&state.db)
        .await?;
    revoked.extend(sessions.into_iter().filter_map(|s| {
        s.revoked_at.map(|at| SessionsRevoked {
            user_id: s.user_id,
            sid: Some(s.id),
            not_before: at.timestamp(),
            reason: reason_of(s.revoked_reason.as_deref()),
        })
    }));
    Ok(Revocations {
        access_ttl_secs: ttl,
        revoked,
    })
}
