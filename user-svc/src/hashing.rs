//! bcrypt off the async workers, on a bounded pool.
//!
//! Each hash or verify runs on a blocking thread, and at most `concurrency` run at once
//! (a semaphore sized to the cores by default): a login storm queues here instead of
//! starving the runtime or the machine. bcrypt's `non_truncating_*` functions are
//! used, so a password is never silently cut at 72 bytes (see [`bcrypt_hash`] for the
//! one exact-72-byte case).

use crate::domain::{MAX_PASSWORD_BYTES, Password};
use std::sync::Arc;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Why a hash could not be computed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("the hashing pool is closed")]
    Closed,
    #[error("the hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Hashes and verifies passwords with a fixed cost.
#[derive(Debug)]
pub struct Hasher {
    cost: u32,
    permits: Arc<Semaphore>,
    /// A hash of nothing in particular, with the configured cost: checked against when
    /// the email is unknown, so that case takes as long as a wrong password.
    dummy: String,
}

impl Hasher {
    /// Computes the dummy hash once, so start-up pays for it and logins don't.
    pub async fn new(cost: u32, concurrency: usize) -> Result<Hasher, HashError> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let dummy = run(&permits, move || {
            bcrypt_hash(uuid::Uuid::new_v4().to_string().as_bytes(), cost)
        })
        .await??;
        Ok(Hasher {
            cost,
            permits,
            dummy,
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = Zeroizing::new(password.expose().to_owned());
        let cost = self.cost;
        Ok(run(&self.permits, move || {
            bcrypt_hash(password.as_bytes(), cost)
        })
        .await??)
    }

    /// True when `password` matches `hash`. A password over 72 bytes never matches (it
    /// could not have been set).
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        let password = Zeroizing::new(password.to_owned());
        let hash = hash.to_owned();
        match run(&self.permits, move || {
            bcrypt_verify(password.as_bytes(), &hash)
        })
        .await?
        {
            Ok(matches) => Ok(matches),
            Err(bcrypt::BcryptError::Truncation(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Spends the time of a real verification and returns false.
    pub async fn verify_dummy(&self, password: &str) -> Result<bool, HashError> {
        self.verify(password, &self.dummy).await.map(|_| false)
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

async fn run<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashError> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| HashError::Closed)?;
    let out = tokio::task::spawn_blocking(move || {
        let out = work();
        drop(permit);
        out
    })
    .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies() {
        let h = Hasher::new(4, 2).await.unwrap();
        let pw = Password::parse("correct horse").unwrap();
        let hash = h.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(h.verify("correct horse", &hash).await.unwrap());
        assert!(!h.verify("wrong horse", &hash).await.unwrap());
        assert!(!h.verify(&"x".repeat(100), &hash).await.unwrap());

        // 72 bytes: every one of them counts.
        let max = "y".repeat(72);
        let hash = h.hash(&Password::parse(&max).unwrap()).await.unwrap();
        assert!(h.verify(&max, &hash).await.unwrap());
        assert!(!h.verify(&max[..71], &hash).await.unwrap());
        let mut changed = max.clone();
        changed.replace_range(71..72, "z");
        assert!(!h.verify(&changed, &hash).await.unwrap());
        assert!(!h.verify(&format!("{max}y"), &hash).await.unwrap());
        assert!(!h.verify_dummy("correct horse").await.unwrap());
    }
}
