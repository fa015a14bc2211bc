//! Admin bootstrap: with `ADMIN_EMAIL` and `ADMIN_PASSWORD` set, that account exists
//! and is an admin once start-up is done.
//!
//! Idempotent: a missing account is created (`user.registered`), an existing user is
//! promoted (`user.updated`) **only if `ADMIN_PASSWORD` is its password**, an existing
//! admin is left alone. Otherwise anyone who registered that email first would become
//! admin with a password of their choosing: start-up fails instead, saying why. Safe
//! when several instances start at once (the unique email decides; the loser promotes
//! instead).

use crate::db::entities::user::{self, DbRole};
use crate::domain::{Email, Name, Password};
use crate::error::Error;
use crate::events::outgoing;
use crate::state::AppState;
use proto_msgs::{RequestContext, RpcError};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};

/// What the bootstrap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    Created,
    Promoted,
    AlreadyAdmin,
}

/// The validated admin settings.
#[derive(Debug, Clone)]
pub struct AdminAccount {
    pub email: Email,
    pub password: Password,
    pub name: Name,
}

impl AdminAccount {
    /// Checks the settings as registration would; an error names the setting.
    pub fn parse(email: &str, password: &str, name: &str) -> Result<AdminAccount, String> {
        Ok(AdminAccount {
            email: Email::parse(email).map_err(|e| format!("ADMIN_EMAIL: {e}"))?,
            password: Password::parse_field("ADMIN_PASSWORD", password)
                .map_err(|e| e.to_string())?,
            name: Name::parse(name).map_err(|e| format!("ADMIN_NAME: {e}"))?,
        })
    }
}

pub async fn bootstrap(state: &AppState, admin: &AdminAccount) -> Result<Bootstrap, Error> {
    // Two rounds: if another instance creates the account between our read and our
    // insert, the second round promotes (or finds an admin).
    let mut attempt = 0;
    loop {
        attempt += 1;
        match promote(state, admin).await? {
            Some(done) => return Ok(done),
            None => match create(state, admin).await {
                Err(Error::Db(e)) if attempt < 2 && svc_kit::db::is_unique_violation(&e) => {
                    continue;
                }
                other => return other,
            },
        }
    }
}

/// Promotes the account if it exists; `None` when there is none.
async fn promote(state: &AppState, admin: &AdminAccount) -> Result<Option<Bootstrap>, Error> {
    let txn = state.db.begin().await?;
    let found = user::Entity::find()
        .filter(user::Column::Email.eq(admin.email.as_str()))
        .lock_exclusive()
        .one(&txn)
        .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    if found.role == DbRole::Admin {
        return Ok(Some(Bootstrap::AlreadyAdmin));
    }
    if !state
        .hasher
        .admit(&RequestContext::new())?
        .verify(admin.password.expose(), &found.password_hash)
        .await?
    {
        return Err(Error::Rpc(RpcError::failed_precondition(format!(
            "ADMIN_EMAIL {} belongs to an existing account whose password is not ADMIN_PASSWORD: \
             refusing to make it an admin (it may have been registered by someone else). \
             Choose another ADMIN_EMAIL, or log in as that account and set its password to \
             ADMIN_PASSWORD first",
            admin.email.as_str()
        ))));
    }
    let mut row: user::ActiveModel = found.into();
    row.role = Set(DbRole::Admin);
    row.updated_at = Set(chrono::Utc::now());
    let saved = row.update(&txn).await?;
    svc_kit::outbox::enqueue(&txn, &outgoing::updated(&saved, None)).await?;
    txn.commit().await?;
    state.outbox.notify();
    tracing::info!(user_id = %saved.id, "admin bootstrap: existing account promoted to admin");
    Ok(Some(Bootstrap::Promoted))
}

async fn create(state: &AppState, admin: &AdminAccount) -> Result<Bootstrap, Error> {
    let password_hash = state
        .hasher
        .admit(&RequestContext::new())?
        .hash(&admin.password)
        .await?;
    let now = chrono::Utc::now();
    let txn = state.db.begin().await?;
    let created = user::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        email: Set(admin.email.as_str().to_owned()),
        name: Set(admin.name.as_str().to_owned()),
        password_hash: Set(password_hash),
        role: Set(DbRole::Admin),
        disabled: Set(false),
        tokens_not_before: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    svc_kit::outbox::enqueue(&txn, &outgoing::registered(&created, None)).await?;
    txn.commit().await?;
    state.outbox.notify();
    tracing::info!(user_id = %created.id, "admin bootstrap: admin account created");
    Ok(Bootstrap::Created)
}
