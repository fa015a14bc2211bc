//! `users.register {email, password, name}` → the new [`User`].
//!
//! Errors: `invalid_argument` (details `{"field": …}`), `already_exists` (the email,
//! in any case or spacing, has an account), `unavailable` (database down),
//! `internal`. A `role` in the request is ignored: accounts start as `user`.

use crate::db::entities::user::{self, DbRole};
use crate::error::Error;
use crate::events::outgoing;
use crate::state::AppState;
use proto_msgs::users::{RegisterRequest, User};
use proto_msgs::{RequestContext, RpcError};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, TransactionTrait};
use std::sync::Arc;

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: RegisterRequest,
) -> Result<User, Error> {
    // Checked while read (the contract types): trimmed, lower-cased email; 8..=72-byte
    // password; trimmed name.
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
    txn.commit().await?;
    state.outbox.notify();
    tracing::info!(user_id = %created.id, "user registered");
    Ok(created.into())
}
