//! `users.admin_update {id, role?, disabled?}` (admins only) → the account's
//! [`UserProfile`] after the change; emits `user.updated` when something changed.
//!
//! A role change or disabling ends every session of the account (`user.sessions_revoked`):
//! a demoted admin's tokens stop working at once, and a refresh afterwards carries the
//! new role. Enabling again revokes nothing. Errors: `unauthenticated` (no actor),
//! `permission_denied` (not an admin), `failed_precondition` (an admin changing their
//! own role or disabling themselves: nobody locks the shop out by mistake),
//! `not_found`, `unavailable`, `internal`. An empty change returns the profile.

use crate::db::entities::user::{self, DbRole};
use crate::error::{Error, user_not_found};
use crate::events::outgoing;
use crate::sessions;
use crate::state::AppState;
use proto_msgs::users::{
    AccountChange, AdminUpdateRequest, RevocationReason, UserProfile, methods,
};
use proto_msgs::{RequestContext, RpcError};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QuerySelect, TransactionTrait};
use std::sync::Arc;
use svc_kit::replies::Idempotent;

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: AdminUpdateRequest,
) -> Result<UserProfile, Error> {
    let actor = ctx.require_actor()?;
    if !actor.is_admin() {
        return Err(RpcError::permission_denied("only an admin may change accounts").into());
    }
    let once = Idempotent::of(&ctx, methods::ADMIN_UPDATE, &req)?;
    let AdminUpdateRequest {
        id,
        change: AccountChange { role, disabled },
    } = req;
    if id == actor.id && (role.is_some_and(|r| r != actor.role) || disabled == Some(true)) {
        return Err(RpcError::failed_precondition(
            "an admin cannot change their own role or disable themselves; ask another admin",
        )
        .into());
    }
    let txn = state.db.begin().await?;
    if let Some(profile) = once.claim(&txn).await? {
        return Ok(profile);
    }
    let current = user::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(user_not_found)?;
    let new_role = role.map(DbRole::from).filter(|r| *r != current.role);
    let new_disabled = disabled.filter(|d| *d != current.disabled);
    if new_role.is_none() && new_disabled.is_none() {
        let profile = crate::profile::with_stats(&txn, current).await?;
        once.save(&txn, &profile).await?;
        txn.commit().await?;
        return Ok(profile);
    }
    let mut row: user::ActiveModel = current.into();
    if let Some(role) = new_role {
        row.role = Set(role);
    }
    if let Some(disabled) = new_disabled {
        row.disabled = Set(disabled);
    }
    row.updated_at = Set(chrono::Utc::now());
    let saved = row.update(&txn).await?;
    let reason = if new_disabled == Some(true) {
        Some(RevocationReason::Disabled)
    } else if new_role.is_some() {
        Some(RevocationReason::RoleChanged)
    } else {
        None
    };
    if let Some(reason) = reason {
        sessions::revoke_user(&txn, &saved, reason, Some(&ctx)).await?;
    }
    svc_kit::outbox::enqueue(&txn, &outgoing::updated(&saved, Some(&ctx))).await?;
    let profile = crate::profile::with_stats(&txn, saved).await?;
    once.save(&txn, &profile).await?;
    txn.commit().await?;
    state.outbox.notify();
    tracing::info!(user_id = %id, by = %actor.id, role_changed = new_role.is_some(), disabled = ?new_disabled, "account changed by an admin");
    Ok(profile)
}
