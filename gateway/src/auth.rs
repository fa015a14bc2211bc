//! Bearer tokens, verified here with user-svc's public keys; the gateway holds no
//! signing key.
//!
//! - Keys come from `users.jwks` over the bus (cached; refreshed when a token names an
//!   unknown `kid`, at most once per `jwks_refresh_min_interval`, one refresh at a time)
//!   or from a fixed JWKS document (`JWT_PUBLIC_JWKS`).
//! - Only `EdDSA` is accepted; `exp`, `iss`, `aud` and `sub` are required and checked.
//! - The verified `sub` and `role` become the [`Actor`] of the RPC context; nothing the
//!   client sends in `x-actor-*` headers is ever read.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use proto_msgs::users::{Claims, Empty, Jwks, methods};
use proto_msgs::{Actor, ErrorCode, RequestContext, RpcClient};
use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

/// Realm named in `WWW-Authenticate`.
const REALM: &str = "shop";
/// Least time between two refreshes while no key is known at all (user-svc down).
const EMPTY_CACHE_RETRY: Duration = Duration::from_secs(1);

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token (send Authorization: Bearer <access_token>)")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// No key is known and user-svc cannot be asked: not the client's fault.
    #[error("cannot verify tokens right now: the users service is unavailable")]
    KeysUnavailable,
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match &err {
            AuthError::Missing => ApiError::new(ErrorCode::Unauthenticated, err.to_string())
                .with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"shop\""),
                ),
            AuthError::Invalid(reason) => {
                let challenge = format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{reason}\""
                );
                let mut e = ApiError::new(ErrorCode::Unauthenticated, err.to_string());
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    e = e.with_header(header::WWW_AUTHENTICATE, value);
                }
                e
            }
            AuthError::KeysUnavailable => ApiError::unavailable(err.to_string()),
        }
    }
}

type KeySet = HashMap<String, DecodingKey>;

enum KeySource {
    Fixed,
    Bus { rpc: RpcClient, timeout: Duration },
}

/// Verifies access tokens; shared by every worker.
pub struct Verifier {
    validation: Validation,
    keys: RwLock<Arc<KeySet>>,
    source: KeySource,
    min_refresh_interval: Duration,
    /// When the last refresh was tried; held during a refresh so there is one at a time.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    /// Tokens already verified → (actor, `exp`). An Ed25519 check costs tens of µs of CPU
    /// on every request; the token string includes its signature, so a hit is exactly
    /// as trustworthy, as long as the keys that verified it are still the keys: an entry
    /// from an older key-set generation is never used. Emptied when full.
    verified: RwLock<HashMap<String, (Actor, i64, u64)>>,
    /// Bumped when the key set really changes (not on a refresh that found the same keys,
    /// so unknown-`kid` refreshes cannot keep flushing the cache).
    generation: AtomicU64,
    /// `kid:x` of every key, to tell a real change from the same keys fetched again.
    fingerprint: std::sync::Mutex<String>,
    /// When keys were last fetched from user-svc; older than [`KEYS_MAX_AGE`] → fetched
    /// again, so a key removed at user-svc stops being accepted here.
    loaded_at: std::sync::Mutex<Option<Instant>>,
}

/// How long fetched keys are trusted before they are fetched again.
const KEYS_MAX_AGE: Duration = Duration::from_secs(300);

/// Most tokens kept in the verified cache before it is emptied.
const VERIFIED_CACHE_MAX: usize = 10_000;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.current_keys().len())
            .finish_non_exhaustive()
    }
}

/// Reads a JWKS document and keeps the Ed25519 signing keys it holds.
pub fn parse_jwks(text: &str) -> Result<KeySet, String> {
    let jwks: Jwks = serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let keys = keys_of(&jwks);
    if keys.is_empty() {
        return Err("no Ed25519 (OKP) signing key in the JWKS".to_owned());
    }
    Ok(keys)
}

fn keys_of(jwks: &Jwks) -> KeySet {
    jwks.keys
        .iter()
        .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
        .filter(|k| k.alg.is_empty() || k.alg == "EdDSA")
        .filter(|k| k.use_.is_empty() || k.use_ == "sig")
        .filter_map(|k| match DecodingKey::from_ed_components(&k.x) {
            Ok(key) => Some((k.kid.clone(), key)),
            Err(err) => {
                tracing::warn!(kid = %k.kid, error = %err, "unusable key in the JWKS: skipped");
                None
            }
        })
        .collect()
}

impl Verifier {
    /// Keys fetched from user-svc over the bus.
    pub fn from_bus(
        rpc: RpcClient,
        issuer: &str,
        audience: &str,
        min_refresh_interval: Duration,
        timeout: Duration,
    ) -> Self {
        Self::new(
            KeySet::new(),
            KeySource::Bus { rpc, timeout },
            issuer,
            audience,
            min_refresh_interval,
        )
    }

    /// Fixed keys from a JWKS document.
    pub fn from_jwks(jwks: &str, issuer: &str, audience: &str) -> Result<Self, String> {
        Ok(Self::new(
            parse_jwks(jwks)?,
            KeySource::Fixed,
            issuer,
            audience,
            Duration::MAX,
        ))
    }

    fn new(
        keys: KeySet,
        source: KeySource,
        issuer: &str,
        audience: &str,
        min_refresh_interval: Duration,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Verifier {
            validation,
            keys: RwLock::new(Arc::new(keys)),
            source,
            min_refresh_interval,
            last_refresh: tokio::sync::Mutex::new(None),
            verified: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            fingerprint: std::sync::Mutex::new(String::new()),
            loaded_at: std::sync::Mutex::new(None),
        }
    }

    fn current_keys(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The bearer token of a request, if it has one.
    pub fn bearer(req: &HttpRequest) -> Option<&str> {
        let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }

    /// Checks the token and returns who it vouches for.
    pub async fn verify(&self, token: &str, ctx: &RequestContext) -> Result<Actor, AuthError> {
        self.refresh_if_old(ctx).await;
        let now = chrono::Utc::now().timestamp();
        // Read before checking the signature: if the keys change meanwhile, the entry is
        // stored under the old generation and never used.
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some((actor, exp, g)) = self
            .verified
            .read()
            .ok()
            .and_then(|v| v.get(token).copied())
            && exp > now
            && g == generation
        {
            return Ok(actor);
        }
        let (actor, exp) = self.verify_signature(token, ctx).await?;
        if let Ok(mut cache) = self.verified.write() {
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
            cache.insert(token.to_owned(), (actor, exp, generation));
        }
        Ok(actor)
    }

    /// Refetches keys from user-svc when the last fetch is older than [`KEYS_MAX_AGE`].
    async fn refresh_if_old(&self, ctx: &RequestContext) {
        if !matches!(self.source, KeySource::Bus { .. }) {
            return;
        }
        let old = self
            .loaded_at
            .lock()
            .map(|at| at.is_some_and(|at| at.elapsed() > KEYS_MAX_AGE))
            .unwrap_or(false);
        if old {
            // A failure keeps the current keys: user-svc down must not log everyone out.
            let _ = self.refresh(ctx).await;
        }
    }

    async fn verify_signature(
        &self,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<(Actor, i64), AuthError> {
        // The header decides which key to use; its `alg` is checked again by `decode`.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid("algorithm not allowed"));
        }
        let keys = self.keys_for(header.kid.as_deref(), ctx).await?;
        let mut last = AuthError::Invalid("unknown signing key");
        for key in &keys {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return Ok((actor_of(&data.claims)?, data.claims.exp)),
                Err(err) => last = AuthError::Invalid(reason(err.kind())),
            }
        }
        Err(last)
    }

    /// The keys that may have signed a token with this `kid` (all keys when it has
    /// none), refreshing the cache once if none is known.
    async fn keys_for(
        &self,
        kid: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Vec<DecodingKey>, AuthError> {
        let pick = |keys: &KeySet| -> Vec<DecodingKey> {
            match kid {
                Some(kid) => keys.get(kid).cloned().into_iter().collect(),
                None => keys.values().cloned().collect(),
            }
        };
        let found = pick(&self.current_keys());
        if !found.is_empty() {
            return Ok(found);
        }
        self.refresh(ctx).await?;
        let found = pick(&self.current_keys());
        if found.is_empty() {
            return Err(AuthError::Invalid("unknown signing key"));
        }
        Ok(found)
    }

    /// Fetches `users.jwks` unless that was tried too recently. Fails only when no key
    /// is known at all and user-svc cannot be asked.
    async fn refresh(&self, ctx: &RequestContext) -> Result<(), AuthError> {
        let KeySource::Bus { rpc, timeout } = &self.source else {
            return Ok(());
        };
        let before = Arc::as_ptr(&self.current_keys());
        let mut last = self.last_refresh.lock().await;
        let now_empty = self.current_keys().is_empty();
        if Arc::as_ptr(&self.current_keys()) != before {
            // Someone refreshed while we waited for the lock.
            return Ok(());
        }
        let wait = if now_empty {
            EMPTY_CACHE_RETRY.min(self.min_refresh_interval)
        } else {
            self.min_refresh_interval
        };
        if last.is_some_and(|at| at.elapsed() < wait) {
            return if now_empty {
                Err(AuthError::KeysUnavailable)
            } else {
                Ok(())
            };
        }
        *last = Some(Instant::now());
        let mut call_ctx = ctx.clone();
        call_ctx.actor = None;
        call_ctx.deadline = Some(SystemTime::now() + *timeout);
        match rpc
            .call::<_, Jwks>(methods::JWKS, &Empty {}, &call_ctx)
            .await
        {
            Ok(jwks) => {
                let keys = keys_of(&jwks);
                let mut pairs: Vec<String> = jwks
                    .keys
                    .iter()
                    .map(|k| format!("{}:{}", k.kid, k.x))
                    .collect();
                pairs.sort();
                let fingerprint = pairs.join(",");
                if let Ok(mut at) = self.loaded_at.lock() {
                    *at = Some(Instant::now());
                }
                let changed = self
                    .fingerprint
                    .lock()
                    .map(|mut f| {
                        let changed = *f != fingerprint;
                        *f = fingerprint;
                        changed
                    })
                    .unwrap_or(true);
                if changed || self.current_keys().is_empty() {
                    tracing::info!(keys = keys.len(), "token verification keys refreshed");
                    if let Ok(mut slot) = self.keys.write() {
                        *slot = Arc::new(keys);
                    }
                    // Tokens verified with the old keys must be checked again.
                    self.generation.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut cache) = self.verified.write() {
                        cache.clear();
                    }
                }
                Ok(())
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot fetch the token verification keys");
                if now_empty {
                    Err(AuthError::KeysUnavailable)
                } else {
                    Ok(())
                }
            }
        }
    }
}

fn actor_of(claims: &Claims) -> Result<Actor, AuthError> {
    let id = Uuid::parse_str(&claims.sub).map_err(|_| AuthError::Invalid("bad subject"))?;
    Ok(Actor {
        id,
        role: claims.role,
    })
}

fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::MissingRequiredClaim(_) => "missing claim",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not allowed",
        _ => "malformed token",
    }
}

/// The verified caller of a route that needs a token. The guard middleware verifies
/// the token and stores the actor; a route listed as public never gets one.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Actor);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Actor>()
                .copied()
                .map(Authenticated)
                .ok_or_else(|| AuthError::Missing.into()),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use proto_msgs::Role;
    pub use proto_msgs::testing::{TestKey, token_claims as claims};
    use proto_msgs::users::{DEFAULT_TOKEN_AUDIENCE, DEFAULT_TOKEN_ISSUER};
    use serde_json::json;

    fn verifier(key: &TestKey) -> Verifier {
        Verifier::from_jwks(&key.jwks(), DEFAULT_TOKEN_ISSUER, DEFAULT_TOKEN_AUDIENCE).unwrap()
    }

    async fn check(v: &Verifier, token: &str) -> Result<Actor, AuthError> {
        v.verify(token, &RequestContext::new()).await
    }

    #[tokio::test]
    async fn accepts_a_good_token() {
        let key = TestKey::new("k1");
        let id = Uuid::new_v4();
        let actor = check(&verifier(&key), &key.sign(&claims(id, Role::Admin, 60)))
            .await
            .unwrap();
        assert_eq!(
            actor,
            Actor {
                id,
                role: Role::Admin
            }
        );
    }

    #[tokio::test]
    async fn refuses_bad_tokens() {
        let key = TestKey::new("k1");
        let v = verifier(&key);
        let id = Uuid::new_v4();
        let expired = key.sign(&claims(id, Role::User, -3600));
        assert_eq!(
            check(&v, &expired).await,
            Err(AuthError::Invalid("token expired"))
        );

        let mut wrong_aud = claims(id, Role::User, 60);
        wrong_aud["aud"] = json!("elsewhere");
        assert_eq!(
            check(&v, &key.sign(&wrong_aud)).await,
            Err(AuthError::Invalid("wrong audience"))
        );
        let mut wrong_iss = claims(id, Role::User, 60);
        wrong_iss["iss"] = json!("mallory");
        assert_eq!(
            check(&v, &key.sign(&wrong_iss)).await,
            Err(AuthError::Invalid("wrong issuer"))
        );
        let mut no_exp = claims(id, Role::User, 60);
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(check(&v, &key.sign(&no_exp)).await.is_err());

        // Same kid, another key: the signature does not match.
        let other = TestKey::new("k1");
        assert_eq!(
            check(&v, &other.sign(&claims(id, Role::User, 60))).await,
            Err(AuthError::Invalid("bad signature"))
        );
        // Unknown kid with fixed keys: no refresh, refused.
        let stranger = TestKey::new("k9");
        assert!(
            check(&v, &stranger.sign(&claims(id, Role::User, 60)))
                .await
                .is_err()
        );

        // Tampered payload: role flipped to admin.
        let good = key.sign(&claims(id, Role::User, 60));
        let parts: Vec<&str> = good.split('.').collect();
        let mut payload = claims(id, Role::Admin, 60);
        payload["iat"] = json!(0);
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        assert!(check(&v, &forged).await.is_err());

        // alg none, HS256.
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let none = format!("{none_header}.{}.", parts[1]);
        assert!(check(&v, &none).await.is_err());
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(id, Role::User, 60),
            &EncodingKey::from_secret(b"x"),
        )
        .unwrap();
        assert_eq!(
            check(&v, &hs).await,
            Err(AuthError::Invalid("algorithm not allowed"))
        );
        assert!(check(&v, "garbage").await.is_err());

        // sub must be a user id.
        let mut bad_sub = claims(id, Role::User, 60);
        bad_sub["sub"] = json!("root");
        assert_eq!(
            check(&v, &key.sign(&bad_sub)).await,
            Err(AuthError::Invalid("bad subject"))
        );
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        use actix_web::ResponseError;
        let res = ApiError::from(AuthError::Invalid("token expired")).error_response();
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers().get("www-authenticate").unwrap(),
            "Bearer realm=\"shop\", error=\"invalid_token\", error_description=\"token expired\""
        );
        let res = ApiError::from(AuthError::Missing).error_response();
        assert_eq!(
            res.headers().get("www-authenticate").unwrap(),
            "Bearer realm=\"shop\""
        );
        assert_eq!(
            ApiError::from(AuthError::KeysUnavailable)
                .error_response()
                .status(),
            503
        );
    }

    #[test]
    fn jwks_without_usable_keys_is_refused() {
        assert!(parse_jwks(r#"{"keys": []}"#).is_err());
        assert!(
            parse_jwks(
                r#"{"keys": [{"kty":"RSA","crv":"","x":"","kid":"a","alg":"RS256","use":"sig"}]}"#
            )
            .is_err()
        );
    }
}
