//! Access tokens: EdDSA-signed JWTs with a `kid`, claims [`Claims`].
//!
//! [`TokenIssuer`] signs (only user-svc can); [`verify`] checks a token against a JWKS
//! the way a verifier should (known `kid`, EdDSA only, `iss`, `aud`, `exp`). The
//! gateway has its own verifier; this one serves tests and documents the rules.

use crate::keys::{KeyError, KeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use proto_msgs::Role;
use proto_msgs::users::{Claims, Jwks, TOKEN_LEEWAY_SECS};
use std::time::Duration;
use uuid::Uuid;

/// Why a token could not be made or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("signing key: {0}")]
    Key(#[from] KeyError),
    #[error("cannot sign the token: {0}")]
    Sign(jsonwebtoken::errors::Error),
    #[error("the token has no kid, or a kid not in the key set")]
    UnknownKey,
    #[error("the token is not signed with EdDSA")]
    WrongAlgorithm,
    #[error("invalid token: {0}")]
    Invalid(jsonwebtoken::errors::Error),
}

/// Signs access tokens with the service's key.
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
    jwks: Jwks,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(
        keys: &KeyPair,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, TokenError> {
        Ok(TokenIssuer {
            key: EncodingKey::from_ed_der(&keys.pkcs8_der()?),
            kid: keys.kid().to_owned(),
            jwks: Jwks {
                keys: vec![keys.jwk()],
            },
            issuer: issuer.into(),
            audience: audience.into(),
            ttl,
        })
    }

    /// The public keys that verify this issuer's tokens.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// The lifetime of the access tokens this issuer signs.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// An access token for `user_id` with `role` in session `sid`, valid for the
    /// configured lifetime. Its `iat` is at least `not_before` (the user's last
    /// revocation, which may be up to a second ahead of the clock): verifiers refuse
    /// `iat < not_before`, so a token issued right after a revocation still works.
    pub fn issue(
        &self,
        user_id: Uuid,
        role: Role,
        sid: Uuid,
        not_before: Option<i64>,
    ) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let iat = not_before.map_or(now, |nb| nb.max(now));
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            sid,
            iat,
            exp: now.saturating_add(ttl),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims with this key and `kid` (tests forge expired tokens with it).
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(TokenError::Sign)
    }
}

/// Verifies `token` against `jwks`: the header's `kid` must name one of the keys, the
/// algorithm must be EdDSA (so `alg: none` and HMAC tricks fail), and `iss`, `aud`,
/// `exp` (within [`TOKEN_LEEWAY_SECS`], the gateway's leeway too) must hold.
pub fn verify(token: &str, jwks: &Jwks, iss: &str, aud: &str) -> Result<Claims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(TokenError::Invalid)?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::WrongAlgorithm);
    }
    let kid = header.kid.ok_or(TokenError::UnknownKey)?;
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid == kid && k.kty == "OKP" && k.crv == "Ed25519")
        .ok_or(TokenError::UnknownKey)?;
    let key = DecodingKey::from_ed_components(&jwk.x).map_err(TokenError::Invalid)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = TOKEN_LEEWAY_SECS;
    validation.set_issuer(&[iss]);
    validation.set_audience(&[aud]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(TokenError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_pem;

    fn issuer(pem: &str) -> TokenIssuer {
        TokenIssuer::new(
            &KeyPair::from_pem(pem).unwrap(),
            "iss",
            "aud",
            Duration::from_secs(60),
        )
        .unwrap()
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_claims() {
        let issuer = issuer(&generate_pem());
        let id = Uuid::new_v4();
        let sid = Uuid::new_v4();
        let t = issuer.issue(id, Role::Admin, sid, None).unwrap();
        let c = verify(&t, issuer.jwks(), "iss", "aud").unwrap();
        assert_eq!(c.sub, id.to_string());
        assert_eq!(c.role, Role::Admin);
        assert_eq!(c.sid, sid);
        assert_eq!(c.exp - c.iat, 60);
        assert!(verify(&t, issuer.jwks(), "other", "aud").is_err());
        assert!(verify(&t, issuer.jwks(), "iss", "other").is_err());
        let stranger = self::issuer(&generate_pem());
        assert!(matches!(
            verify(&t, stranger.jwks(), "iss", "aud"),
            Err(TokenError::UnknownKey)
        ));
    }

    #[test]
    fn iat_is_never_before_the_users_last_revocation() {
        let issuer = issuer(&generate_pem());
        let now = chrono::Utc::now().timestamp();
        let t = issuer
            .issue(Uuid::new_v4(), Role::User, Uuid::new_v4(), Some(now + 1))
            .unwrap();
        let c = verify(&t, issuer.jwks(), "iss", "aud").unwrap();
        assert!(c.iat > now);
        // The lifetime still counts from now.
        assert!(c.exp <= now + 61);
    }

    #[test]
    fn expiry_is_checked_with_the_shared_small_leeway() {
        let issuer = issuer(&generate_pem());
        let now = chrono::Utc::now().timestamp();
        let claims = |exp: i64| Claims {
            sub: Uuid::new_v4().to_string(),
            role: Role::User,
            sid: Uuid::new_v4(),
            iat: now - 100,
            exp,
            iss: "iss".into(),
            aud: "aud".into(),
        };
        let leeway = TOKEN_LEEWAY_SECS as i64;
        assert!(leeway <= 5);
        let within = issuer.sign(&claims(now - leeway + 2)).unwrap();
        assert!(verify(&within, issuer.jwks(), "iss", "aud").is_ok());
        let beyond = issuer.sign(&claims(now - leeway - 2)).unwrap();
        assert!(verify(&beyond, issuer.jwks(), "iss", "aud").is_err());
    }
}
