//! `users.register {email, password, name}` → the new [`User`].
//!
//! Errors: `invalid_argument` (details `{"field": …}`), `already_exists` (the email,
//! in any case or spacing, has an account), `unavailable` (database down),
//! `internal`. A `role` in the request is ignored: accounts start as `user`.
//!
//! Exactly once: the reply is stored with the account (svc-kit's stored replies), so a
//! redelivered or retried request answers the account it created, not `already_exists`.

use crate::db::entities::user::{self, DbRole};
use crate::error::Error;
use crate::events::outgoing;
use crate::state::AppState;
use proto_msgs::users::{RegisterRequest, User, methods};
use proto_msgs::{RequestContext, RpcError};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, TransactionTrait};
use std::sync::Arc;
use svc_kit::replies::Idempotent;

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: RegisterRequest,
) -> Result<User, Error> {
    // Checked while read (the contract types): trimmed, lower-cased email; 8..=72-byte
    // password; trimmed name.
    let once = Idempotent::of(&ctx, methods::REGISTER, &req)?;
    // Before bcrypt: a retry of a registration that happened costs no hash.
    if let Some(user) = once.peek(&state.db).await? {
        return Ok(user);
    }
    let RegisterRequest {
        email,
        password,
        name,
    } = req;
    let password_hash = state.hasher.admit(&ctx)?.hash(&password).await?;
    let now = chrono::Utc::now();
    let new = user::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        email: Set(email.into_inner()),
        name: Set(name.into_inner()),
        password_hash: Set(password_hash),
        role: Set(DbRole::User),
        disabled: Set(false),
        tokens_not_before: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };

    let txn = state.db.begin().await?;
    if let Some(user) = once.claim(&txn).await? {
        return Ok(user);
    }
    // The unique constraint decides between concurrent registrations, not a check
    // before the insert.
    let created = match new.insert(&txn).await {
        Ok(created) => created,
        Err(e) if svc_kit::db::is_unique_violation(&e) => {
            return Err(
                RpcError::already_exists("an account with this email already exists")
                    .with_details(serde_json::json!({"field": "email"}))
                    .into(),
            );
        }
        Err(e) => return Err(e.into()),
    };
    svc_kit::outbox::enqueue(&txn, &outgoing::registered(&created, Some(&ctx))).await?;
    let user = User::from(created);
    once.save(&txn, &user).await?;
    txn.commit().await?;
    state.outbox.notify();
    tracing::info!(user_id = %user.id, "user registered");
    Ok(user)
}
