//! `users.update {name?, password?, current_password?}` for the actor → the updated
//! [`UserProfile`]; emits `user.updated` when something changed.
//!
//! Changing the password needs the current one: missing → `invalid_argument` (field
//! `current_password`); wrong → `permission_denied` (the caller *is* authenticated,
//! so not `unauthenticated`, which would tell a client its token is bad); too many
//! wrong ones in a row → `resource_exhausted` with `retry_after_s`, without checking
//! (see `throttle`).
//! Other errors: `unauthenticated` (no actor), `invalid_argument` (field `name` or
//! `password`), `not_found` (the actor's account is gone), `unavailable`, `internal`.
//! A request with neither field returns the profile unchanged. A new password ends every
//! session of the account, the caller's included (`user.sessions_revoked`).
//!
//! Exactly once: the reply is stored with the change, so a redelivered or retried
//! password change answers the profile it produced instead of failing the (now stale)
//! current-password check.

use crate::db::entities::user;
use crate::domain::ValidationError;
use crate::error::{Error, user_not_found};
use crate::events::outgoing;
use crate::sessions;
use crate::state::AppState;
use crate::throttle::Scope;
use proto_msgs::users::{RevocationReason, UpdateUserRequest, UserProfile, methods};
use proto_msgs::{RequestContext, RpcError};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QuerySelect, TransactionTrait};
use std::sync::Arc;
use svc_kit::replies::Idempotent;

const WRONG_CURRENT: &str = "current_password is incorrect";

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: UpdateUserRequest,
) -> Result<UserProfile, Error> {
    let actor = ctx.require_actor()?;
    let once = Idempotent::of(&ctx, methods::UPDATE, &req)?;
    // Before the password check, which the first delivery's change made stale.
    if let Some(profile) = once.peek(&state.db).await? {
        return Ok(profile);
    }
    // Each field was checked while read (the contract types); what is left is the rule
    // between them.
    let UpdateUserRequest {
        name,
        password,
        current_password,
    } = req;

    let current = user::Entity::find_by_id(actor.id)
        .one(&state.db)
        .await?
        .ok_or_else(user_not_found)?;
    if name.is_none() && password.is_none() {
        return Ok(crate::profile::with_stats(&state.db, current).await?);
    }

    // bcrypt runs before the transaction so no row lock is held meanwhile.
    let new_hash = match &password {
        None => None,
        Some(password) => {
            let Some(given) = current_password.as_ref() else {
                return Err(ValidationError::new(
                    "current_password",
                    "current_password is required to change the password",
                )
                .into());
            };
            let lane = state.hasher.admit(&ctx)?;
            let attempt = state
                .throttle
                .begin(&state.db, Scope::CurrentPassword(actor.id))
                .await?;
            let verdict = lane.verify(given.expose(), &current.password_hash).await;
            if !attempt.settle(verdict).await? {
                return Err(RpcError::permission_denied(WRONG_CURRENT).into());
            }
            Some(lane.hash(password).await?)
        }
    };

    let txn = state.db.begin().await?;
    if let Some(profile) = once.claim(&txn).await? {
        return Ok(profile);
    }
    let locked = user::Entity::find_by_id(actor.id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(user_not_found)?;
    // The password changed since we verified the current one: what the caller gave
    // is no longer the current password.
    if new_hash.is_some() && locked.password_hash != current.password_hash {
        return Err(RpcError::permission_denied(WRONG_CURRENT).into());
    }
    let mut row: user::ActiveModel = locked.into();
    if let Some(name) = name {
        row.name = Set(name.into_inner());
    }
    let password_changed = new_hash.is_some();
    if let Some(hash) = new_hash {
        row.password_hash = Set(hash);
    }
    row.updated_at = Set(chrono::Utc::now());
    let saved = row.update(&txn).await?;
    svc_kit::outbox::enqueue(&txn, &outgoing::updated(&saved, Some(&ctx))).await?;
    if password_changed {
        // Whoever knew the old password may hold a session: every one ends, this
        // caller's too (they log in again with the new password).
        sessions::revoke_user(&txn, &saved, RevocationReason::PasswordChanged, Some(&ctx)).await?;
    }
    let profile = crate::profile::with_stats(&txn, saved).await?;
    once.save(&txn, &profile).await?;
    txn.commit().await?;
    state.outbox.notify();
    tracing::info!(user_id = %actor.id, "user updated");
    Ok(profile)
}
