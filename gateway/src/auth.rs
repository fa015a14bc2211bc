//! Bearer tokens, verified here with user-svc's public keys; the gateway holds no
//! signing key.
//!
//! - Keys come from `users.jwks` over the bus (cached; refreshed in the background when
//!   older than `jwks_max_age`, and when a token names an unknown `kid`: at most once
//!   per `jwks_refresh_min_interval`, one fetch at a time, which only requests with that
//!   unknown `kid` wait for) or from a fixed JWKS document (`JWT_PUBLIC_JWKS`). A request
//!   with a known key never waits on user-svc.
//! - Only `EdDSA` is accepted; `exp`, `iss`, `aud`, `sub` and `sid` are required and
//!   checked, with the leeway user-svc uses ([`TOKEN_LEEWAY_SECS`]).
//! - Revoked sessions ([`Revoked`]): learnt from `user.sessions_revoked` events and a
//!   `users.revocations` snapshot; a revoked token is refused even though it verifies.
//! - The verified `sub` and `role` become the [`Actor`] of the RPC context; nothing the
//!   client sends in `x-actor-*` headers is ever read.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use proto_msgs::users::{
    Claims, Empty, Jwks, MAX_ACCESS_TTL_SECS, Revocations, SessionsRevoked, TOKEN_LEEWAY_SECS,
    methods,
};
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
    /// The token verifies, but its session was revoked.
    #[error(
        "the token has been revoked (logout, a password or role change, or a disabled account): refresh it or log in again"
    )]
    Revoked,
    /// No key is known and user-svc cannot be asked: not the client's fault.
    #[error("cannot verify tokens right now: the users service is unavailable")]
    KeysUnavailable,
}

impl AuthError {
    /// The `reason` label of the `auth_refused_total` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid(_) => "invalid",
            AuthError::Revoked => "revoked",
            AuthError::KeysUnavailable => "keys_unavailable",
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match &err {
            AuthError::Missing => ApiError::new(ErrorCode::Unauthenticated, err.to_string())
                .with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"shop\""),
                ),
            AuthError::Invalid(_) | AuthError::Revoked => {
                let reason = match &err {
                    AuthError::Invalid(reason) => reason,
                    _ => "token revoked",
                };
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
    /// Sessions and users whose tokens are refused although they verify.
    pub revoked: Revoked,
    /// Tokens already verified → what they say. An Ed25519 check costs tens of µs of CPU
    /// on every request; the token string includes its signature, so a hit is exactly
    /// as trustworthy, as long as the keys that verified it are still the keys: an entry
    /// from an older key-set generation is never used. Emptied when full.
    verified: RwLock<HashMap<String, Verified>>,
    /// Bumped when the key set really changes (not on a refresh that found the same keys,
    /// so unknown-`kid` refreshes cannot keep flushing the cache).
    generation: AtomicU64,
    /// `kid:x` of every key, to tell a real change from the same keys fetched again.
    fingerprint: std::sync::Mutex<String>,
}

/// What a verified token says, as cached.
#[derive(Debug, Clone, Copy)]
struct Verified {
    actor: Actor,
    sid: Uuid,
    iat: i64,
    exp: i64,
    /// Key-set generation that verified it.
    generation: u64,
}

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
        validation.leeway = TOKEN_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Verifier {
            validation,
            keys: RwLock::new(Arc::new(keys)),
            source,
            min_refresh_interval,
            last_refresh: tokio::sync::Mutex::new(None),
            revoked: Revoked::default(),
            verified: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            fingerprint: std::sync::Mutex::new(String::new()),
        }
    }

    /// Whether keys come from user-svc (and so are refreshed).
    pub fn fetches_keys(&self) -> bool {
        matches!(self.source, KeySource::Bus { .. })
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

    /// Checks the token and returns who it vouches for. Never waits on user-svc unless
    /// the token names a key this gateway does not know.
    pub async fn verify(&self, token: &str, ctx: &RequestContext) -> Result<Actor, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(TOKEN_LEEWAY_SECS).unwrap_or(0);
        // Read before checking the signature: if the keys change meanwhile, the entry is
        // stored under the old generation and never used.
        let generation = self.generation.load(Ordering::SeqCst);
        let cached = self
            .verified
            .read()
            .ok()
            .and_then(|v| v.get(token).copied())
            .filter(|v| v.exp + leeway > now && v.generation == generation);
        let verified = match cached {
            Some(v) => v,
            None => {
                let claims = self.verify_signature(token, ctx).await?;
                let v = Verified {
                    actor: actor_of(&claims)?,
                    sid: claims.sid,
                    iat: claims.iat,
                    exp: claims.exp,
                    generation,
                };
                if let Ok(mut cache) = self.verified.write() {
                    if cache.len() >= VERIFIED_CACHE_MAX {
                        cache.clear();
                    }
                    cache.insert(token.to_owned(), v);
                }
                v
            }
        };
        if self
            .revoked
            .refuses(verified.actor.id, verified.sid, verified.iat)
        {
            return Err(AuthError::Revoked);
        }
        Ok(verified.actor)
    }

    /// Fetches the keys again if user-svc is asked for them (the background refresh,
    /// so that a key removed at user-svc stops being accepted here). A failure keeps
    /// the current keys: user-svc down must not log everyone out.
    pub async fn refresh_keys(&self, ctx: &RequestContext) {
        let _ = self.refresh(ctx).await;
    }

    async fn verify_signature(
        &self,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<Claims, AuthError> {
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
                Ok(data) => return Ok(data.claims),
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
        let before = self.generation.load(Ordering::SeqCst);
        let mut last = self.last_refresh.lock().await;
        let now_empty = self.current_keys().is_empty();
        if self.generation.load(Ordering::SeqCst) != before {
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

/// Revocations this gateway knows of: per user, a `not_before` (tokens with an older
/// `iat` are refused); per session, its `sid` (all its tokens are refused). Entries are
/// forgotten once every token they refuse has expired (one access-token lifetime
/// plus the leeway), so the maps stay as small as the recent revocations.
#[derive(Debug)]
pub struct Revoked {
    users: RwLock<HashMap<Uuid, i64>>,
    /// `sid` → when it was revoked (unix seconds), for pruning.
    sessions: RwLock<HashMap<Uuid, i64>>,
    /// user-svc's access-token lifetime, from the snapshot; the longest possible
    /// until then.
    access_ttl_secs: AtomicU64,
}

impl Default for Revoked {
    fn default() -> Self {
        Revoked {
            users: RwLock::default(),
            sessions: RwLock::default(),
            access_ttl_secs: AtomicU64::new(MAX_ACCESS_TTL_SECS),
        }
    }
}

impl Revoked {
    /// Whether a token of `user` in session `sid` issued at `iat` is revoked.
    pub fn refuses(&self, user: Uuid, sid: Uuid, iat: i64) -> bool {
        let by_user = self
            .users
            .read()
            .map(|m| m.get(&user).is_some_and(|nb| iat < *nb))
            .unwrap_or(true);
        by_user
            || self
                .sessions
                .read()
                .map(|m| m.contains_key(&sid))
                .unwrap_or(true)
    }

    /// Takes one revocation (an event or a snapshot entry); the later one wins.
    pub fn apply(&self, r: &SessionsRevoked) {
        let (map, key) = match r.sid {
            Some(sid) => (&self.sessions, sid),
            None => (&self.users, r.user_id),
        };
        if let Ok(mut m) = map.write() {
            let at = m.entry(key).or_insert(r.not_before);
            *at = (*at).max(r.not_before);
        }
    }

    /// Takes a `users.revocations` snapshot: its entries join what is known (events
    /// that arrived meanwhile are kept).
    pub fn apply_snapshot(&self, snapshot: &Revocations) {
        self.access_ttl_secs
            .store(snapshot.access_ttl_secs, Ordering::Relaxed);
        for r in &snapshot.revoked {
            self.apply(r);
        }
    }

    /// Forgets entries whose tokens have all expired by `now` (unix seconds).
    pub fn prune(&self, now: i64) {
        let ttl = self.access_ttl_secs.load(Ordering::Relaxed);
        let keep = i64::try_from(ttl + TOKEN_LEEWAY_SECS).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(keep);
        for map in [&self.users, &self.sessions] {
            if let Ok(mut m) = map.write() {
                m.retain(|_, at| *at > cutoff);
            }
        }
    }

    /// Entries held (users, sessions).
    pub fn len(&self) -> (usize, usize) {
        let n = |m: &RwLock<HashMap<Uuid, i64>>| m.read().map(|m| m.len()).unwrap_or(0);
        (n(&self.users), n(&self.sessions))
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

    #[tokio::test]
    async fn expiry_has_the_shared_small_leeway_and_a_session_is_required() {
        let key = TestKey::new("k1");
        let v = verifier(&key);
        let id = Uuid::new_v4();
        let leeway = i64::try_from(TOKEN_LEEWAY_SECS).unwrap();
        assert!(leeway <= 5);
        assert!(
            check(&v, &key.sign(&claims(id, Role::User, 2 - leeway)))
                .await
                .is_ok()
        );
        assert_eq!(
            check(&v, &key.sign(&claims(id, Role::User, -leeway - 2))).await,
            Err(AuthError::Invalid("token expired"))
        );
        let mut no_sid = claims(id, Role::User, 60);
        no_sid.as_object_mut().unwrap().remove("sid");
        assert!(check(&v, &key.sign(&no_sid)).await.is_err());
    }

    #[tokio::test]
    async fn revoked_sessions_and_users_are_refused_until_pruned() {
        let key = TestKey::new("k1");
        let v = verifier(&key);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let a1 = claims(alice, Role::User, 600);
        let a2 = claims(alice, Role::User, 600);
        let b1 = claims(bob, Role::Admin, 600);
        let (t_a1, t_a2, t_b1) = (key.sign(&a1), key.sign(&a2), key.sign(&b1));
        for t in [&t_a1, &t_a2, &t_b1] {
            assert!(check(&v, t).await.is_ok(), "cached as verified");
        }
        let sid = |c: &serde_json::Value| Uuid::parse_str(c["sid"].as_str().unwrap()).unwrap();
        let now = chrono::Utc::now().timestamp();
        // One session of alice: only that one, even from the cache.
        v.revoked.apply(&SessionsRevoked {
            user_id: alice,
            sid: Some(sid(&a1)),
            not_before: now,
            reason: proto_msgs::users::RevocationReason::Logout,
        });
        assert_eq!(check(&v, &t_a1).await, Err(AuthError::Revoked));
        assert!(check(&v, &t_a2).await.is_ok());
        // Every token of bob issued before the next second.
        v.revoked.apply_snapshot(&Revocations {
            access_ttl_secs: 600,
            revoked: vec![SessionsRevoked {
                user_id: bob,
                sid: None,
                not_before: now + 1,
                reason: proto_msgs::users::RevocationReason::RoleChanged,
            }],
        });
        assert_eq!(check(&v, &t_b1).await, Err(AuthError::Revoked));
        let mut later = claims(bob, Role::User, 600);
        later["iat"] = json!(now + 1);
        assert!(check(&v, &key.sign(&later)).await.is_ok());
        // An older event does not undo a newer revocation.
        v.revoked.apply(&SessionsRevoked {
            user_id: bob,
            sid: None,
            not_before: now - 100,
            reason: proto_msgs::users::RevocationReason::LogoutAll,
        });
        assert_eq!(check(&v, &t_b1).await, Err(AuthError::Revoked));
        assert_eq!(v.revoked.len(), (1, 1));
        // Kept while a token it refuses may be alive, forgotten after.
        v.revoked.prune(now + 600);
        assert_eq!(v.revoked.len(), (1, 1));
        v.revoked.prune(now + 1 + 600 + leeway_secs() + 1);
        assert_eq!(v.revoked.len(), (0, 0));
        let res = {
            use actix_web::ResponseError;
            ApiError::from(AuthError::Revoked).error_response()
        };
        assert_eq!(res.status(), 401);
        assert!(
            res.headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("token revoked")
        );
    }

    fn leeway_secs() -> i64 {
        i64::try_from(TOKEN_LEEWAY_SECS).unwrap()
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
