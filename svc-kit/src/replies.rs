//! Exactly-once effects for mutating RPC methods: the reply is stored in the
//! transaction of the effect, keyed by method, caller and idempotency key (the client's
//! `x-idempotency-key`, else the request's AMQP `message_id`, which a redelivery keeps).
//!
//! In a handler, inside its own transaction:
//! ```ignore
//! let once = Idempotent::of(&ctx, METHOD, &req)?;
//! let txn = db.begin().await?;
//! if let Some(reply) = once.claim(&txn).await? {
//!     return Ok(reply); // stored reply of the first delivery; nothing runs again
//! }
//! let reply = /* the effect, in txn */;
//! once.save(&txn, &reply).await?;
//! txn.commit().await?;
//! ```
//! [`Idempotent::claim`] inserts the key first, so of two deliveries running at once
//! the second waits on the key's row until the first commits, then replays its reply.
//! The same key with a different body is refused ([`StoreError::KeyReused`]). Only
//! successful replies are stored: a failed call rolled back, had no effect, and runs
//! again when retried. [`prune`] bounds the table (and the inbox) by age.

use crate::entities::{processed_event, stored_reply};
use chrono::{DateTime, Utc};
use proto_msgs::limits::check_idempotency_key;
use proto_msgs::{ReplayMark, RequestContext, RpcError};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Prefix of the key stored for a request that came without one (its message id), so
/// it can never be mistaken for a client's key.
const MESSAGE_KEY_PREFIX: &str = "message:";

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("x-idempotency-key: {0}")]
    BadKey(String),
    #[error(
        "idempotency key {0:?} was already used for a different request; use a new key for a new request"
    )]
    KeyReused(String),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// A stored reply we cannot read back: a bug, never the caller's fault.
    #[error("stored reply unreadable: {0}")]
    Corrupt(String),
}

impl From<StoreError> for RpcError {
    fn from(err: StoreError) -> RpcError {
        match err {
            StoreError::BadKey(m) => RpcError::invalid_field("x-idempotency-key", m),
            e @ StoreError::KeyReused(_) => RpcError::failed_precondition(e.to_string()),
            StoreError::Db(e) => crate::db::rpc_error(e),
            StoreError::Corrupt(what) => {
                tracing::error!(error = %what, "stored reply unreadable");
                RpcError::internal("the service failed to process the request")
            }
        }
    }
}

/// One request as the store knows it. A request with neither a key nor a message id (a
/// hand-written raw message) has nothing to be recognised by: it just runs.
#[derive(Debug, Clone)]
pub struct Idempotent {
    id: Option<Identity>,
    mark: ReplayMark,
}

#[derive(Debug, Clone)]
struct Identity {
    method: String,
    scope: String,
    key: String,
    fingerprint: String,
}

impl Idempotent {
    /// The identity of `body`, a request to `method` with context `ctx`. Keys are per
    /// caller (the actor), so two users' keys never meet.
    pub fn of<T: Serialize>(
        ctx: &RequestContext,
        method: &str,
        body: &T,
    ) -> Result<Idempotent, StoreError> {
        let key = match (&ctx.idempotency_key, &ctx.message_id) {
            (Some(key), _) => {
                check_idempotency_key(key).map_err(StoreError::BadKey)?;
                Some(key.clone())
            }
            (None, Some(message_id)) => Some(format!("{MESSAGE_KEY_PREFIX}{message_id}")),
            (None, None) => None,
        };
        let id = match key {
            Some(key) => {
                let scope = ctx.actor.map(|a| a.id.to_string()).unwrap_or_default();
                let fingerprint = fingerprint(method, &scope, &key, body)?;
                Some(Identity {
                    method: method.to_owned(),
                    scope,
                    key,
                    fingerprint,
                })
            }
            None => None,
        };
        Ok(Idempotent {
            id,
            mark: ctx.replayed.clone(),
        })
    }

    /// Claims the key in `txn`. `None`: first time, carry out the request and
    /// [`save`](Self::save) its reply in the same transaction. `Some(reply)`: the stored
    /// reply of an earlier delivery; answer it (the reply is marked as replayed).
    pub async fn claim<C: ConnectionTrait, T: DeserializeOwned>(
        &self,
        txn: &C,
    ) -> Result<Option<T>, StoreError> {
        let Some(id) = &self.id else {
            return Ok(None);
        };
        let row = stored_reply::ActiveModel {
            method: Set(id.method.clone()),
            scope: Set(id.scope.clone()),
            key: Set(id.key.clone()),
            fingerprint: Set(id.fingerprint.clone()),
            reply: Set(None),
            ..Default::default()
        };
        // `INSERT .. ON CONFLICT DO NOTHING`: waits for a transaction holding the same
        // key, and inserts nothing once it committed.
        let inserted = stored_reply::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    stored_reply::Column::Method,
                    stored_reply::Column::Scope,
                    stored_reply::Column::Key,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
        if inserted == 1 {
            return Ok(None);
        }
        match self.stored(txn).await? {
            Some(reply) => Ok(Some(reply)),
            None => Err(StoreError::Corrupt(format!(
                "key {:?} conflicts with no stored reply",
                id.key
            ))),
        }
    }

    /// The stored reply, if an earlier delivery committed one, without claiming the
    /// key: for work worth skipping before the transaction (a bcrypt hash, a password
    /// check that the first delivery made stale). [`claim`](Self::claim) still decides.
    pub async fn peek<C: ConnectionTrait, T: DeserializeOwned>(
        &self,
        conn: &C,
    ) -> Result<Option<T>, StoreError> {
        self.stored(conn).await
    }

    async fn stored<C: ConnectionTrait, T: DeserializeOwned>(
        &self,
        conn: &C,
    ) -> Result<Option<T>, StoreError> {
        let Some(id) = &self.id else {
            return Ok(None);
        };
        let stored =
            stored_reply::Entity::find_by_id((id.method.clone(), id.scope.clone(), id.key.clone()))
                .one(conn)
                .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        if stored.fingerprint != id.fingerprint {
            return Err(StoreError::KeyReused(id.key.clone()));
        }
        // NULL never commits (claim and save share a transaction); treated as absent.
        let Some(reply) = stored.reply else {
            return Ok(None);
        };
        let reply =
            serde_json::from_value(reply).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.mark.set();
        tracing::info!(method = %id.method, "idempotent retry: answering the stored reply");
        Ok(Some(reply))
    }

    /// Stores `reply` for the claimed key, in the transaction of the effect.
    pub async fn save<C: ConnectionTrait, T: Serialize>(
        &self,
        txn: &C,
        reply: &T,
    ) -> Result<(), StoreError> {
        let Some(id) = &self.id else {
            return Ok(());
        };
        let reply = serde_json::to_value(reply).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        stored_reply::Entity::update_many()
            .col_expr(
                stored_reply::Column::Reply,
                sea_orm::sea_query::Expr::val(reply),
            )
            .filter(stored_reply::Column::Method.eq(id.method.as_str()))
            .filter(stored_reply::Column::Scope.eq(id.scope.as_str()))
            .filter(stored_reply::Column::Key.eq(id.key.as_str()))
            .exec(txn)
            .await?;
        Ok(())
    }
}

/// SHA-256 over method, scope, key and the request as JSON, written straight into the
/// hash (a password in the body is never copied). The key salts it.
fn fingerprint<T: Serialize>(
    method: &str,
    scope: &str,
    key: &str,
    body: &T,
) -> Result<String, StoreError> {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hash = HashWriter(Sha256::new());
    for part in [method, scope, key] {
        hash.0.update(part.as_bytes());
        hash.0.update([0]);
    }
    serde_json::to_writer(&mut hash, body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(hash
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Deletes stored replies and handled-event records older than `before`; returns how
/// many rows went. A request or event redelivered after that runs again, so the window
/// must be far longer than any retry or redelivery.
pub async fn prune<C: ConnectionTrait>(conn: &C, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let replies = stored_reply::Entity::delete_many()
        .filter(stored_reply::Column::CreatedAt.lt(before))
        .exec(conn)
        .await?
        .rows_affected;
    let events = processed_event::Entity::delete_many()
        .filter(processed_event::Column::ProcessedAt.lt(before))
        .exec(conn)
        .await?
        .rows_affected;
    Ok(replies + events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_msgs::{Actor, Role};

    #[test]
    fn fingerprints_tell_bodies_and_callers_apart() {
        let a = fingerprint("m", "", "k", &serde_json::json!({"x": 1})).unwrap();
        assert_eq!(
            a,
            fingerprint("m", "", "k", &serde_json::json!({"x": 1})).unwrap()
        );
        assert_ne!(
            a,
            fingerprint("m", "", "k", &serde_json::json!({"x": 2})).unwrap()
        );
        assert_ne!(
            a,
            fingerprint("m", "u", "k", &serde_json::json!({"x": 1})).unwrap()
        );
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn the_key_is_the_clients_else_the_message_id() {
        let mut ctx = RequestContext::new();
        assert!(Idempotent::of(&ctx, "m", &()).unwrap().id.is_none());
        ctx.message_id = Some("abc".into());
        let id = Idempotent::of(&ctx, "m", &()).unwrap().id.unwrap();
        assert_eq!(id.key, "message:abc");
        assert_eq!(id.scope, "");
        let actor = Actor {
            id: uuid::Uuid::new_v4(),
            role: Role::User,
        };
        let ctx = ctx.with_idempotency_key("k-1").with_actor(actor);
        let id = Idempotent::of(&ctx, "m", &()).unwrap().id.unwrap();
        assert_eq!((id.key.as_str(), id.scope), ("k-1", actor.id.to_string()));
        let bad = RequestContext::new().with_idempotency_key("has space");
        assert!(matches!(
            Idempotent::of(&bad, "m", &()),
            Err(StoreError::BadKey(_))
        ));
    }
}
