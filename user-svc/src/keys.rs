//! The Ed25519 key that signs access tokens: where it comes from, and its public half
//! as a JWK with a stable `kid`.
//!
//! Only user-svc holds the private key; verifiers get the public one from
//! `users.jwks`, so a compromised verifier cannot mint tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use proto_msgs::users::Jwk;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the signing key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// The PEM (PKCS#8) itself: `JWT_PRIVATE_KEY`, or generated in memory by tests.
    Pem(Zeroizing<String>),
    /// A PEM file that must exist: `JWT_PRIVATE_KEY_FILE`.
    File(PathBuf),
    /// Development mode: read this file, or generate a key and write it there first,
    /// so tokens stay valid across restarts.
    DevFile(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Pem(_) => f.write_str("Pem(***)"),
            KeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            KeySource::DevFile(p) => f.debug_tuple("DevFile").field(p).finish(),
        }
    }
}

/// Why no usable key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the token signing key is not an Ed25519 private key in PEM PKCS#8 form: {0}")]
    Parse(String),
    #[error("cannot read the token signing key from {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the generated development key to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the key: {0}")]
    Encode(String),
}

/// A signing key and what verifiers need to know about it.
pub struct KeyPair {
    signing: SigningKey,
    kid: String,
    x: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A fresh key as PEM (PKCS#8).
pub fn generate_pem() -> Zeroizing<String> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    // Encoding 32 bytes of key material into a PEM cannot fail.
    key.to_pkcs8_pem(LineEnding::LF)
        .unwrap_or_else(|_| Zeroizing::new(String::new()))
}

impl KeyPair {
    /// Reads a PEM (PKCS#8) Ed25519 private key.
    pub fn from_pem(pem: &str) -> Result<KeyPair, KeyError> {
        let signing =
            SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Parse(e.to_string()))?;
        Ok(Self::from_signing(signing))
    }

    fn from_signing(signing: SigningKey) -> KeyPair {
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
        KeyPair {
            kid: thumbprint(&x),
            x,
            signing,
        }
    }

    /// Loads the key from `source`; in development creates and persists it when absent.
    pub fn load(source: &KeySource) -> Result<KeyPair, KeyError> {
        match source {
            KeySource::Pem(pem) => Self::from_pem(pem),
            KeySource::File(path) => Self::from_pem(&read(path)?),
            KeySource::DevFile(path) => match std::fs::read_to_string(path) {
                Ok(pem) => {
                    let key = Self::from_pem(&pem)?;
                    tracing::info!(path = %path.display(), kid = %key.kid, "development signing key loaded");
                    Ok(key)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let pem = generate_pem();
                    let key = Self::from_pem(&pem)?;
                    write_private(path, &pem)?;
                    tracing::warn!(
                        path = %path.display(),
                        kid = %key.kid,
                        "no JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE: generated a development signing key and saved it (development mode only)"
                    );
                    Ok(key)
                }
                Err(source) => Err(KeyError::Read {
                    path: path.clone(),
                    source,
                }),
            },
        }
    }

    /// Key id: the RFC 7638 JWK thumbprint, stable for a given key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key, base64url (RFC 8037 `x`).
    pub fn x(&self) -> &str {
        &self.x
    }

    /// The public key as a JWK (RFC 8037).
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: self.x.clone(),
            kid: self.kid.clone(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }

    /// A 32-byte secret for `purpose`, derived from the private key: as secret as the
    /// key, stable with it, and unrelated to what it signs.
    pub(crate) fn derive_secret(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut hasher = Sha256::new();
        hasher.update(b"shop user-svc derived secret\0");
        hasher.update(purpose.as_bytes());
        hasher.update([0]);
        hasher.update(self.signing.to_bytes());
        Zeroizing::new(hasher.finalize().into())
    }

    /// The private key as PKCS#8 DER, what jsonwebtoken's `EncodingKey` takes.
    pub(crate) fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.signing
            .to_pkcs8_der()
            .map(|doc| Zeroizing::new(doc.as_bytes().to_vec()))
            .map_err(|e| KeyError::Encode(e.to_string()))
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn read(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Writes the key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> Result<(), KeyError> {
    use std::io::Write;
    let fail = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    // create_new: two instances starting at once must not overwrite each other's key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(pem.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_stable_and_derived_from_the_public_key() {
        let pem = generate_pem();
        let a = KeyPair::from_pem(&pem).unwrap();
        let b = KeyPair::from_pem(&pem).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.kid().len(), 43);
        let other = KeyPair::from_pem(&generate_pem()).unwrap();
        assert_ne!(a.kid(), other.kid());
        assert_eq!(a.jwk().x.len(), 43);
    }

    #[test]
    fn rfc8037_thumbprint() {
        // RFC 8037 appendix A.3.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn dev_key_is_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("user-svc-keys-{}", uuid::Uuid::new_v4()));
        let path = dir.join("nested").join("key.pem");
        let first = KeyPair::load(&KeySource::DevFile(path.clone())).unwrap();
        let second = KeyPair::load(&KeySource::DevFile(path.clone())).unwrap();
        assert_eq!(first.kid(), second.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let from_file = KeyPair::load(&KeySource::File(path.clone())).unwrap();
        assert_eq!(from_file.kid(), first.kid());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_bad_key_is_a_clear_error() {
        let err = KeyPair::load(&KeySource::File("/nonexistent/key.pem".into())).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key.pem"));
        let err = KeyPair::from_pem("not a key").unwrap_err();
        assert!(err.to_string().contains("PEM PKCS#8"));
    }
}
