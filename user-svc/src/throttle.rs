//! Per-account throttling of password guesses (`users.login`, and `current_password`
//! in `users.update`), on top of the gateway's per-IP limits.
//!
//! Every attempt counts as a failure from the moment it starts ([`Throttle::begin`],
//! one atomic upsert), so guesses sent in parallel are counted before any of them is
//! checked; a success deletes the count ([`Attempt::settle`]), and an attempt that got
//! no verdict (deadline, database) is taken back. After [`Policy::free_failures`]
//! attempts in a row, the key is locked for `base`, then twice as long after each
//! further failure, up to `max`. While locked, the request is answered
//! `resource_exhausted` with `retry_after_s`, and bcrypt is not run at all: the
//! attacker waits, we don't work.
//!
//! Unknown emails are counted and locked exactly like known ones (same statements, and
//! the one bcrypt check a login always costs), so neither the answer nor its timing
//! tells whether an account exists. The table is in the database, so every instance
//! sees the same counts.

use crate::db::entities::password_throttle::{self, Column};
use crate::domain::Email;
use crate::error::Error;
use crate::hashing::HashError;
use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use prometheus::{IntCounterVec, Opts, Registry};
use proto_msgs::RpcError;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use zeroize::Zeroizing;

/// When guessing gets slower. The defaults and the settings that change them are in
/// [`crate::config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in a row that are never delayed.
    pub free_failures: u32,
    /// The first lock; each further failure doubles it.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
}

impl Policy {
    /// A streak is forgotten after this long without an attempt. Longer than the longest
    /// lock, so waiting out the locks never buys a fresh set of free attempts.
    pub fn forget_after(&self) -> Duration {
        self.max * 4
    }

    /// How long the key is locked after its `attempts`-th attempt in a row.
    pub fn lock_after(&self, attempts: u32) -> Option<Duration> {
        let beyond = attempts.checked_sub(self.free_failures)?;
        // 2^beyond, saturating long before it could overflow the cap.
        let factor = 1u32.checked_shl(beyond.min(31)).unwrap_or(u32::MAX);
        Some(self.base.saturating_mul(factor).min(self.max))
    }
}

/// What is being guessed at.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// A login's email (normalized when it was parsed).
    Login(&'a Email),
    /// The current password of this account, given to change it.
    CurrentPassword(uuid::Uuid),
}

impl Scope<'_> {
    fn label(&self) -> &'static str {
        match self {
            Scope::Login(_) => "login",
            Scope::CurrentPassword(_) => "current_password",
        }
    }
}

/// The message of every throttled answer (the same for any account, known or not).
pub const THROTTLED: &str = "too many failed password attempts for this account";

/// Every how many attempts (per instance) quiet rows are pruned.
const PRUNE_EVERY: u64 = 256;

/// The per-account throttle of one service instance.
pub struct Throttle {
    secret: Zeroizing<[u8; 32]>,
    policy: Policy,
    begun: AtomicU64,
    throttled: IntCounterVec,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// `secret` keys the hash of the throttled names (derived from the signing key).
    pub fn new(secret: Zeroizing<[u8; 32]>, policy: Policy) -> Result<Throttle, prometheus::Error> {
        let throttled = IntCounterVec::new(
            Opts::new(
                "password_attempts_throttled_total",
                "Password checks refused (bcrypt not run) because their account had too many \
                 failed attempts, by scope",
            ),
            &["scope"],
        )?;
        Ok(Throttle {
            secret,
            policy,
            begun: AtomicU64::new(0),
            throttled,
        })
    }

    pub fn register_metrics(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        for scope in ["login", "current_password"] {
            self.throttled.with_label_values(&[scope]);
        }
        registry.register(Box::new(self.throttled.clone()))
    }

    fn key(&self, scope: Scope<'_>) -> Vec<u8> {
        // HMAC pads a key shorter than the block with zeros: padding it here gives the
        // same MAC, through the constructor that cannot fail.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(self.secret.as_slice());
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
        mac.update(scope.label().as_bytes());
        mac.update(&[0]);
        match scope {
            Scope::Login(email) => mac.update(email.as_str().as_bytes()),
            Scope::CurrentPassword(id) => mac.update(id.as_bytes()),
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// Counts an attempt at `scope`, or refuses it (`resource_exhausted` with
    /// `retry_after_s`) while its key is locked, without counting it.
    pub async fn begin(&self, db: &DatabaseConnection, scope: Scope<'_>) -> Result<Attempt, Error> {
        // Here only: its `min`/`max` would shadow the integers' elsewhere.
        use sea_orm::sea_query::ExprTrait;
        let key = self.key(scope);
        let now = Utc::now();
        let forget_before = now - self.policy.forget_after();
        let row = password_throttle::ActiveModel {
            key: Set(key.clone()),
            failures: Set(1),
            last_attempt_at: Set(now),
            locked_until: Set(None),
        };
        let col = |c: Column| Expr::col((password_throttle::Entity, c));
        // One statement, so parallel attempts each get their own count; a locked row is
        // left alone (no row comes back).
        let counted = password_throttle::Entity::insert(row)
            .on_conflict(
                OnConflict::column(Column::Key)
                    .value(
                        Column::Failures,
                        Expr::case(col(Column::LastAttemptAt).lt(forget_before), Expr::val(1))
                            .finally(col(Column::Failures).add(1)),
                    )
                    .value(Column::LastAttemptAt, now)
                    .action_and_where(
                        col(Column::LockedUntil)
                            .is_null()
                            .or(col(Column::LockedUntil).lte(now)),
                    )
                    .to_owned(),
            )
            .exec_with_returning_many(db)
            .await?;
        self.maybe_prune(db);
        let Some(counted) = counted.into_iter().next() else {
            return Err(self.refuse(scope, db, &key, now).await);
        };
        let attempts = u32::try_from(counted.failures).unwrap_or(u32::MAX);
        if let Some(lock) = self.policy.lock_after(attempts) {
            let until = now + lock;
            // Only ever lengthened: a slower parallel attempt must not shorten a lock.
            password_throttle::Entity::update_many()
                .col_expr(Column::LockedUntil, Expr::value(until))
                .filter(Column::Key.eq(key.clone()))
                .filter(
                    Column::LockedUntil
                        .is_null()
                        .or(Column::LockedUntil.lt(until)),
                )
                .exec(db)
                .await?;
        }
        Ok(Attempt {
            key,
            db: db.clone(),
        })
    }

    async fn refuse(
        &self,
        scope: Scope<'_>,
        db: &DatabaseConnection,
        key: &[u8],
        now: DateTime<Utc>,
    ) -> Error {
        self.throttled.with_label_values(&[scope.label()]).inc();
        let until = match password_throttle::Entity::find_by_id(key.to_vec())
            .one(db)
            .await
        {
            Ok(row) => row.and_then(|r| r.locked_until),
            Err(e) => return e.into(),
        };
        let left = until.map_or(0, |u| (u - now).num_milliseconds().max(0));
        // Whole seconds, rounded up: retrying at once after `Retry-After` must pass.
        let retry_after_s = u64::try_from(left).unwrap_or(0).div_ceil(1000).max(1);
        RpcError::resource_exhausted(
            format!("{THROTTLED}; try again in {retry_after_s} s"),
            retry_after_s,
        )
        .into()
    }

    /// Now and then, deletes the rows of streaks that are forgotten anyway, so names
    /// tried once (unknown emails) do not pile up. In the background: no request waits.
    fn maybe_prune(&self, db: &DatabaseConnection) {
        if !self
            .begun
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            return;
        }
        use sea_orm::sea_query::ExprTrait;
        let db = db.clone();
        let now = Utc::now();
        let before = now - self.policy.forget_after();
        tokio::spawn(async move {
            let pruned = password_throttle::Entity::delete_many()
                .filter(Column::LastAttemptAt.lt(before))
                .filter(
                    Column::LockedUntil
                        .is_null()
                        .or(Column::LockedUntil.lt(now)),
                )
                .exec(&db)
                .await;
            if let Err(e) = pruned {
                tracing::warn!(error = %e, "could not prune password_throttle");
            }
        });
    }
}

/// A counted attempt, to settle with its verdict.
pub struct Attempt {
    key: Vec<u8>,
    db: DatabaseConnection,
}

impl Attempt {
    /// `Ok(true)`: the password matched, and the count is reset. `Ok(false)`: it did
    /// not, and stays counted. An error (no verdict: deadline, hashing failure) takes
    /// the attempt back, so a busy service does not lock its users out.
    pub async fn settle(self, verdict: Result<bool, HashError>) -> Result<bool, Error> {
        match verdict {
            Ok(true) => {
                password_throttle::Entity::delete_by_id(self.key)
                    .exec(&self.db)
                    .await?;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                self.take_back().await?;
                Err(e.into())
            }
        }
    }

    async fn take_back(&self) -> Result<(), DbErr> {
        use sea_orm::sea_query::ExprTrait;
        password_throttle::Entity::update_many()
            .col_expr(Column::Failures, Expr::col(Column::Failures).sub(1))
            .filter(Column::Key.eq(self.key.clone()))
            .filter(Column::Failures.gt(0))
            .exec(&self.db)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_the_free_attempts_up_to_the_cap() {
        let p = Policy {
            free_failures: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let locks: Vec<_> = (1..=8).map(|n| p.lock_after(n)).collect();
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(
            locks,
            vec![None, None, s(1), s(2), s(4), s(8), s(10), s(10)]
        );
        assert_eq!(p.lock_after(u32::MAX), s(10));
        assert!(p.forget_after() > p.max);
    }

    #[test]
    fn keys_differ_by_scope_and_name_and_secret() {
        let policy = Policy {
            free_failures: 1,
            base: Duration::from_secs(1),
            max: Duration::from_secs(1),
        };
        let t = Throttle::new(Zeroizing::new([1; 32]), policy).unwrap();
        let other = Throttle::new(Zeroizing::new([2; 32]), policy).unwrap();
        let a = Email::parse("ada@example.com").unwrap();
        let b = Email::parse("bob@example.com").unwrap();
        let id = uuid::Uuid::nil();
        assert_eq!(t.key(Scope::Login(&a)), t.key(Scope::Login(&a)));
        assert_ne!(t.key(Scope::Login(&a)), t.key(Scope::Login(&b)));
        assert_ne!(t.key(Scope::Login(&a)), other.key(Scope::Login(&a)));
        assert_ne!(t.key(Scope::CurrentPassword(id)), t.key(Scope::Login(&a)));
        assert_eq!(t.key(Scope::Login(&a)).len(), 32);
    }
}
