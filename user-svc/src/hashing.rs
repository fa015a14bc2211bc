//! bcrypt off the async workers, in a bounded lane.
//!
//! Each hash or verify runs on a blocking thread, at most `concurrency` at once (the
//! cores by default). A request must first be *admitted* to the lane, which holds at
//! most `concurrency + queue` requests (running or waiting); one beyond that is refused
//! at once with `resource_exhausted`, before any database or bcrypt work.
//!
//! Why a lane and not a queue of its own: the RPC server works on every prefetched
//! delivery concurrently, so a request is only stuck behind bcrypt when all prefetch
//! slots are held by requests that wait for bcrypt. With the lane smaller than the
//! prefetch (a start-up rule, see `config::check_bcrypt_lane`), some slots are always
//! left for `users.me`, `users.get`, `users.jwks` and health, and the logins the lane
//! refuses leave their slot within a millisecond. No second queue, consumer or broker
//! permission is needed.
//!
//! A request whose deadline passes while it waits for a slot is answered
//! `deadline_exceeded` without hashing: the caller is gone, and the work would only
//! delay those still waiting. bcrypt's `non_truncating_*` functions are used, so a
//! password is never silently cut at 72 bytes (see [`bcrypt_hash`] for the one
//! exact-72-byte case).

use crate::domain::{MAX_PASSWORD_BYTES, Password};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use proto_msgs::RequestContext;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

/// What a caller refused by a full lane is told to wait, in seconds.
pub const BUSY_RETRY_AFTER_S: u64 = 1;

/// Why a hash could not be computed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("the hashing pool is closed")]
    Closed,
    #[error("the hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The lane is full: refused without waiting.
    #[error("every bcrypt slot is taken and the queue is full")]
    Busy,
    /// The request's deadline passed while it waited for a slot: not hashed.
    #[error("the deadline passed while waiting for a bcrypt slot")]
    DeadlineExceeded,
}

/// Why bcrypt was not run for a request that needed it (the `reason` label).
#[derive(Debug, Clone, Copy)]
pub enum Skipped {
    /// The lane was full.
    Busy,
    /// The deadline passed while waiting for a slot.
    Deadline,
    /// The account (or email) is throttled after failed attempts.
    Throttled,
}

impl Skipped {
    fn as_str(self) -> &'static str {
        match self {
            Skipped::Busy => "busy",
            Skipped::Deadline => "deadline",
            Skipped::Throttled => "throttled",
        }
    }
}

/// Size of the bcrypt lane.
#[derive(Debug, Clone, Copy)]
pub struct LaneSize {
    /// bcrypt computations at once.
    pub concurrency: usize,
    /// Requests that may wait for one of them.
    pub queue: usize,
}

/// Hashes and verifies passwords with a fixed cost.
#[derive(Debug)]
pub struct Hasher {
    cost: u32,
    workers: Arc<Semaphore>,
    /// One permit per request in the lane (running or waiting).
    places: Arc<Semaphore>,
    /// A hash of nothing in particular, with the configured cost: checked against when
    /// the email is unknown, so that case takes as long as a wrong password.
    dummy: String,
    runs: IntCounter,
    skipped: IntCounterVec,
}

impl Hasher {
    /// Computes the dummy hash once, so start-up pays for it and logins don't.
    pub async fn new(cost: u32, size: LaneSize) -> Result<Hasher, HashError> {
        let concurrency = size.concurrency.max(1);
        let dummy = tokio::task::spawn_blocking(move || {
            bcrypt_hash(uuid::Uuid::new_v4().to_string().as_bytes(), cost)
        })
        .await??;
        // Static names and help texts: building these cannot fail.
        let runs = IntCounter::new(
            "password_hashes_total",
            "bcrypt computations run (hash or verify)",
        )
        .map_err(|_| HashError::Closed)?;
        let skipped = IntCounterVec::new(
            Opts::new(
                "password_hashes_skipped_total",
                "Requests that needed bcrypt and did not get it, by reason (busy: the lane \
                 was full; deadline: the caller's deadline passed while waiting; throttled: \
                 too many failed attempts)",
            ),
            &["reason"],
        )
        .map_err(|_| HashError::Closed)?;
        Ok(Hasher {
            cost,
            workers: Arc::new(Semaphore::new(concurrency)),
            places: Arc::new(Semaphore::new(concurrency + size.queue)),
            dummy,
            runs,
            skipped,
        })
    }

    /// Adds the hashing metrics to the service's registry.
    pub fn register_metrics(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.runs.clone()))?;
        registry.register(Box::new(self.skipped.clone()))?;
        for reason in [Skipped::Busy, Skipped::Deadline, Skipped::Throttled] {
            self.skipped.with_label_values(&[reason.as_str()]);
        }
        Ok(())
    }

    /// Counts a request that needed bcrypt and did not get it.
    pub fn skipped(&self, why: Skipped) {
        self.skipped.with_label_values(&[why.as_str()]).inc();
    }

    /// A place in the lane for the request of `ctx`, or [`HashError::Busy`] at once.
    /// Take it before any other work of the request, so a refusal costs nothing.
    pub fn admit(&self, ctx: &RequestContext) -> Result<Admitted<'_>, HashError> {
        match self.places.clone().try_acquire_owned() {
            Ok(place) => Ok(Admitted {
                hasher: self,
                deadline: ctx.deadline,
                _place: place,
            }),
            Err(_) => {
                self.skipped(Skipped::Busy);
                Err(HashError::Busy)
            }
        }
    }
}

/// A request's place in the lane: its hashes run one at a time on a free slot, until
/// its deadline.
#[derive(Debug)]
pub struct Admitted<'a> {
    hasher: &'a Hasher,
    deadline: Option<SystemTime>,
    _place: OwnedSemaphorePermit,
}

impl Admitted<'_> {
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = Zeroizing::new(password.expose().to_owned());
        let cost = self.hasher.cost;
        self.run(move || bcrypt_hash(password.as_bytes(), cost))
            .await?
            .map_err(HashError::from)
    }

    /// True when `password` matches `hash`. A password over 72 bytes never matches (it
    /// could not have been set).
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        let password = Zeroizing::new(password.to_owned());
        let hash = hash.to_owned();
        match self
            .run(move || bcrypt_verify(password.as_bytes(), &hash))
            .await?
        {
            Ok(matches) => Ok(matches),
            Err(bcrypt::BcryptError::Truncation(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Spends the time of a real verification and returns false.
    pub async fn verify_dummy(&self, password: &str) -> Result<bool, HashError> {
        self.verify(password, &self.hasher.dummy)
            .await
            .map(|_| false)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let acquire = self.hasher.workers.clone().acquire_owned();
        let permit = match self.deadline {
            None => acquire.await,
            Some(deadline) => {
                let left = deadline
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                match tokio::time::timeout(left, acquire).await {
                    Ok(permit) => permit,
                    Err(_) => return Err(self.too_late()),
                }
            }
        }
        .map_err(|_| HashError::Closed)?;
        // A slot that frees up right at the deadline is no use either.
        if self.deadline.is_some_and(|d| SystemTime::now() >= d) {
            return Err(self.too_late());
        }
        self.hasher.runs.inc();
        let out = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await?;
        Ok(out)
    }

    fn too_late(&self) -> HashError {
        self.hasher.skipped(Skipped::Deadline);
        HashError::DeadlineExceeded
    }
}

// bcrypt hashes the password followed by a NUL byte, within 72 bytes. The crate's
// non-truncating functions count that terminator and so refuse a password of exactly
// 72 bytes, although all 72 of its bytes are used. For that length (never more: the
// callers check) the plain functions drop only the terminator, not a byte of the
// password; every other length goes through the non-truncating ones.
fn bcrypt_hash(password: &[u8], cost: u32) -> bcrypt::BcryptResult<String> {
    if password.len() == MAX_PASSWORD_BYTES {
        bcrypt::hash(password, cost)
    } else {
        bcrypt::non_truncating_hash(password, cost)
    }
}

fn bcrypt_verify(password: &[u8], hash: &str) -> bcrypt::BcryptResult<bool> {
    if password.len() == MAX_PASSWORD_BYTES {
        bcrypt::verify(password, hash)
    } else {
        bcrypt::non_truncating_verify(password, hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(concurrency: usize, queue: usize) -> LaneSize {
        LaneSize { concurrency, queue }
    }

    #[tokio::test]
    async fn hashes_and_verifies() {
        let h = Hasher::new(4, size(2, 2)).await.unwrap();
        let ctx = RequestContext::new();
        let lane = h.admit(&ctx).unwrap();
        let pw = Password::parse("correct horse").unwrap();
        let hash = lane.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(lane.verify("correct horse", &hash).await.unwrap());
        assert!(!lane.verify("wrong horse", &hash).await.unwrap());
        assert!(!lane.verify(&"x".repeat(100), &hash).await.unwrap());

        // 72 bytes: every one of them counts.
        let max = "y".repeat(72);
        let hash = lane.hash(&Password::parse(&max).unwrap()).await.unwrap();
        assert!(lane.verify(&max, &hash).await.unwrap());
        assert!(!lane.verify(&max[..71], &hash).await.unwrap());
        let mut changed = max.clone();
        changed.replace_range(71..72, "z");
        assert!(!lane.verify(&changed, &hash).await.unwrap());
        assert!(!lane.verify(&format!("{max}y"), &hash).await.unwrap());
        assert!(!lane.verify_dummy("correct horse").await.unwrap());
    }

    #[tokio::test]
    async fn a_full_lane_refuses_at_once_and_frees_its_places() {
        let h = Hasher::new(4, size(1, 1)).await.unwrap();
        let ctx = RequestContext::new();
        let a = h.admit(&ctx).unwrap();
        let b = h.admit(&ctx).unwrap();
        assert!(matches!(h.admit(&ctx), Err(HashError::Busy)));
        drop(a);
        let c = h.admit(&ctx).unwrap();
        drop((b, c));
        assert_eq!(h.skipped.with_label_values(&["busy"]).get(), 1);
    }

    #[tokio::test]
    async fn a_passed_deadline_is_not_hashed() {
        let h = Hasher::new(4, size(1, 4)).await.unwrap();
        let mut ctx = RequestContext::new();
        ctx.deadline = Some(SystemTime::now() - Duration::from_millis(1));
        let lane = h.admit(&ctx).unwrap();
        let err = lane.verify_dummy("password").await.unwrap_err();
        assert!(matches!(err, HashError::DeadlineExceeded));
        assert_eq!(h.runs.get(), 0);
        assert_eq!(h.skipped.with_label_values(&["deadline"]).get(), 1);
    }
}
