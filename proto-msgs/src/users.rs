//! The user service's contract: methods, request and reply types, event payloads.

use crate::context::Role;
use crate::money::Money;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Service name: queue `users.rpc`, methods `users.*`, inbox `users.events`.
pub const SERVICE: &str = "users";

/// RPC method names (routing keys on the `rpc` exchange).
pub mod methods {
    pub const REGISTER: &str = "users.register";
    pub const LOGIN: &str = "users.login";
    pub const ME: &str = "users.me";
    pub const GET: &str = "users.get";
    pub const UPDATE: &str = "users.update";
    pub const JWKS: &str = "users.jwks";
    pub const REFRESH: &str = "users.refresh";
    pub const LOGOUT: &str = "users.logout";
    pub const LOGOUT_ALL: &str = "users.logout_all";
    pub const ADMIN_UPDATE: &str = "users.admin_update";
    pub const REVOCATIONS: &str = "users.revocations";
    pub const HEALTH: &str = "users.sys.health";
    pub const METRICS: &str = "users.sys.metrics";
}

/// Clock skew tolerated on `exp`/`nbf` by every verifier of access tokens (user-svc's
/// and the gateway's): small, because access tokens are short and revocable.
pub const TOKEN_LEEWAY_SECS: u64 = 5;
/// Longest access-token lifetime user-svc may be configured with: a verifier that
/// does not know the configured one yet keeps revocations this long.
pub const MAX_ACCESS_TTL_SECS: u64 = 86_400;
/// Random bytes in a refresh token (256 bits); it is sent base64url without padding.
pub const REFRESH_TOKEN_BYTES: usize = 32;
/// Length of a refresh token as sent: base64url of [`REFRESH_TOKEN_BYTES`], no padding.
pub const REFRESH_TOKEN_LEN: usize = (REFRESH_TOKEN_BYTES * 4).div_ceil(3);

/// Longest email address (RFC 5321's limit on a path), after trimming.
pub const EMAIL_MAX_LEN: usize = 254;
/// Longest part of an email address before the `@`.
pub const EMAIL_LOCAL_MAX_LEN: usize = 64;
/// Longest label of the domain of an email address (RFC 1035).
pub const EMAIL_DOMAIN_LABEL_MAX_LEN: usize = 63;
/// Longest display name, in characters after trimming.
pub const NAME_MAX_CHARS: usize = 100;
/// Shortest new password, in bytes (UTF-8). Checked when a password is set, never at
/// login (a login says only "incorrect").
pub const PASSWORD_MIN_BYTES: usize = 8;
/// Longest password, in bytes (UTF-8): bcrypt reads no more, and a longer one is
/// refused rather than silently cut.
pub const PASSWORD_MAX_BYTES: usize = 72;

/// A syntactically valid email address, trimmed and lower-cased: two spellings of one
/// address are one account. The local part is a dot-atom (RFC 5322) of at most
/// [`EMAIL_LOCAL_MAX_LEN`] characters; the domain has at least two labels of letters,
/// digits and inner hyphens; at most [`EMAIL_MAX_LEN`] characters in all.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > EMAIL_MAX_LEN {
            return Err(format!("must be at most {EMAIL_MAX_LEN} characters long"));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("must look like name@example.com".into());
        };
        if local.is_empty() || local.len() > EMAIL_LOCAL_MAX_LEN || !valid_local(local) {
            return Err(format!(
                "must have before the @ 1 to {EMAIL_LOCAL_MAX_LEN} letters, digits or !#$%&'*+/=?^_`{{|}}~- in dot-separated runs"
            ));
        }
        if !valid_domain(domain) {
            return Err("must have after the @ a domain like example.com".into());
        }
        Ok(Email(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Dot-atom of RFC 5322: atext runs separated by single dots.
fn valid_local(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
    })
}

/// At least two labels of letters, digits and inner hyphens.
fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= EMAIL_DOMAIN_LABEL_MAX_LEN
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

crate::limits::parsed_string!(Email);

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// A display name: 1 to [`NAME_MAX_CHARS`] characters after trimming, no control
/// characters.
#[derive(Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<UserName, String> {
        crate::limits::trimmed_text(raw, NAME_MAX_CHARS).map(UserName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

crate::limits::parsed_string!(UserName);

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserName({})", self.0)
    }
}

/// A password being set (register, change): [`PASSWORD_MIN_BYTES`] to
/// [`PASSWORD_MAX_BYTES`] bytes, no NUL, kept as typed (no trimming), wiped from memory
/// when dropped, never printed.
#[derive(Clone)]
pub struct NewPassword(Zeroizing<String>);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<NewPassword, String> {
        let len = raw.len();
        if len < PASSWORD_MIN_BYTES {
            return Err(format!("must be at least {PASSWORD_MIN_BYTES} bytes long"));
        }
        if len > PASSWORD_MAX_BYTES {
            return Err(format!(
                "must be at most {PASSWORD_MAX_BYTES} bytes long (bcrypt's limit; this one is {len} bytes, and we refuse rather than silently ignore the rest)"
            ));
        }
        // Many bcrypt implementations stop at a NUL byte; refusing it keeps hashes
        // portable and the 72-byte case exact.
        if raw.contains('\0') {
            return Err("must not contain NUL characters".into());
        }
        Ok(NewPassword(Zeroizing::new(raw.to_owned())))
    }

    /// [`parse`](Self::parse) for a password from elsewhere (a setting): the error
    /// starts with `field`.
    pub fn parse_field(field: &str, raw: &str) -> Result<NewPassword, String> {
        Self::parse(raw).map_err(|e| format!("{field}: {e}"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password given to be checked (login, `current_password`): 1 to
/// [`PASSWORD_MAX_BYTES`] bytes, anything else goes. The minimum length of new
/// passwords is not checked here: a login never tells more than "incorrect".
#[derive(Clone)]
pub struct PasswordAttempt(Zeroizing<String>);

impl PasswordAttempt {
    pub fn parse(raw: &str) -> Result<PasswordAttempt, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > PASSWORD_MAX_BYTES {
            return Err(format!(
                "must be at most {PASSWORD_MAX_BYTES} bytes long (bcrypt's limit)"
            ));
        }
        Ok(PasswordAttempt(Zeroizing::new(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

crate::limits::parsed_string!(NewPassword);
crate::limits::parsed_string!(PasswordAttempt);

// Passwords never reach a log line through Debug (nor Display: `***`).
impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

impl fmt::Debug for PasswordAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordAttempt(***)")
    }
}

/// `users.register`. Unknown fields (such as `role`) are ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    pub email: Email,
    pub password: NewPassword,
    pub name: UserName,
}

/// `users.login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub email: Email,
    pub password: PasswordAttempt,
}

/// Reply of `users.login` and `users.refresh`: a new access token and the refresh
/// token of the session (a new one on every refresh: the one presented is spent).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// An EdDSA-signed JWT (claims `sub`, `role`, `sid`, `iat`, `exp`, `iss`, `aud`).
    pub access_token: String,
    /// Always `"Bearer"`.
    #[cfg_attr(feature = "openapi", schema(example = "Bearer"))]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[cfg_attr(feature = "openapi", schema(example = 900))]
    pub expires_in: u64,
    /// Opaque; exchanged once at `POST /users/token/refresh` for new tokens.
    pub refresh_token: RefreshToken,
    /// Seconds until the refresh token expires.
    #[cfg_attr(feature = "openapi", schema(example = 1209600))]
    pub refresh_expires_in: u64,
}

// Tokens never reach a log line through Debug.
impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

/// A refresh token: [`REFRESH_TOKEN_LEN`] base64url characters (256 random bits).
/// Only its SHA-256 is stored; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(Zeroizing<String>);

impl RefreshToken {
    pub fn parse(raw: &str) -> Result<RefreshToken, String> {
        if raw.len() != REFRESH_TOKEN_LEN
            || !raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "must be the {REFRESH_TOKEN_LEN}-character refresh_token a login or refresh returned"
            ));
        }
        Ok(RefreshToken(Zeroizing::new(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

crate::limits::parsed_string!(RefreshToken);

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

/// `users.refresh` and `users.logout`: the session's current refresh token. Refresh
/// spends it (presenting a spent one again revokes the whole session); logout revokes
/// the session it belongs to. Possession of the token is the proof: no access token
/// is needed, so an expired session can still be logged out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: RefreshToken,
}

/// Reply of `users.logout` and `users.logout_all`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogoutResponse {
    /// Sessions that were live and are now revoked (0: already logged out).
    pub revoked_sessions: u64,
}

/// `users.admin_update` (admins only): change another account's role and/or disable
/// it. Either change revokes every session of that account. An admin cannot change
/// their own role or disable themselves (`failed_precondition`), so the last admin
/// cannot lock everyone out by mistake.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminUpdateRequest {
    /// The account (the path's id at the gateway).
    pub id: Uuid,
    #[serde(flatten)]
    pub change: AccountChange,
}

/// The change `users.admin_update` asks for, without the account: the body of
/// `PATCH /users/{id}`. Any subset; an empty one changes nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountChange {
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::optional_role_schema))]
    pub role: Option<Role>,
    /// `true`: the account can neither log in nor refresh, and its sessions end.
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub disabled: Option<bool>,
}

/// Reply of `users.revocations`: every revocation whose access tokens may still be
/// alive (newer than one access-token lifetime), for a verifier that starts or has
/// missed `user.sessions_revoked` events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Revocations {
    /// The access-token lifetime: an entry older than this (plus the leeway) can be
    /// forgotten, every token it refuses has expired.
    pub access_ttl_secs: u64,
    pub revoked: Vec<SessionsRevoked>,
}

/// Why sessions were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    Logout,
    LogoutAll,
    /// A spent refresh token was presented again: the session is assumed stolen.
    RefreshReuse,
    PasswordChanged,
    RoleChanged,
    Disabled,
}

/// Data of the `user.sessions_revoked` event (and one entry of [`Revocations`]).
/// With `sid`: access tokens of that session are refused. Without: every access token
/// of the user issued before `not_before` is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionsRevoked {
    pub user_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// Unix seconds: tokens with `iat` before this are refused (for the whole user, or
    /// the session `sid`). Tokens issued afterwards carry an `iat` of at least this.
    pub not_before: i64,
    pub reason: RevocationReason,
}

/// `users.get`: self, or anyone for an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetUserRequest {
    pub id: Uuid,
}

/// `users.me`, `users.jwks`, `users.logout_all`, `users.revocations`: no parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

/// `users.update` for the actor: any subset. A new `password` needs
/// `current_password` (else `invalid_argument`, field `current_password`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<UserName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<NewPassword>,
    /// Needed with `password`; a wrong one is `permission_denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<PasswordAttempt>,
}

/// A user as others may see it: never the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(example = "ada@example.com"))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(example = "Ada Lovelace"))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::role_schema))]
    pub role: Role,
    /// A disabled account can neither log in nor refresh (set by an admin).
    #[serde(default)]
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Per-user order statistics, built by user-svc from order events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderStats {
    /// Orders placed (cancelled ones included).
    pub order_count: i64,
    /// Sum of order totals, cancelled orders excluded.
    pub total_spent: Money,
    pub last_order_at: Option<DateTime<Utc>>,
}

impl Default for OrderStats {
    fn default() -> Self {
        OrderStats {
            order_count: 0,
            total_spent: Money::ZERO,
            last_order_at: None,
        }
    }
}

/// Reply of `users.me`, `users.get` and `users.update`: the user with order statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProfile {
    #[serde(flatten)]
    pub user: User,
    pub order_stats: OrderStats,
}

/// Reply of `users.jwks`: the public keys that verify access tokens (RFC 7517).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One Ed25519 public key (RFC 8037): `kty` `OKP`, `crv` `Ed25519`, `x` base64url.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// The `iss` of access tokens unless `JWT_ISSUER` says otherwise (user-svc signs it, the
/// gateway expects it).
pub const DEFAULT_TOKEN_ISSUER: &str = "shop-user-svc";
/// The `aud` of access tokens unless `JWT_AUDIENCE` says otherwise.
pub const DEFAULT_TOKEN_AUDIENCE: &str = "shop";

/// Claims of an access token. `iss` and `aud` are checked by every verifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub role: Role,
    /// The session (refresh-token family) the token belongs to: what logout revokes.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Data of the `user.registered` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// Data of the `user.updated` event: the user as it is after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub updated_at: DateTime<Utc>,
}

/// JSON Schemas of the field types, with the rules above (feature `openapi`).
#[cfg(feature = "openapi")]
mod openapi {
    use super::*;
    use crate::limits::schema::{string, string_enum};
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
    use utoipa::{PartialSchema, ToSchema};

    impl PartialSchema for Email {
        fn schema() -> RefOr<Schema> {
            string(&format!(
                "An email address; surrounding whitespace is dropped and it is compared in lower case. \
                 Before the @ a dot-atom of at most {EMAIL_LOCAL_MAX_LEN} characters, after it a domain \
                 of two or more labels (letters, digits, inner hyphens; at most \
                 {EMAIL_DOMAIN_LABEL_MAX_LEN} each)."
            ))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(EMAIL_MAX_LEN))
            .examples(["ada@example.com"])
            .into()
        }
    }
    impl ToSchema for Email {}

    impl PartialSchema for UserName {
        fn schema() -> RefOr<Schema> {
            string(&format!(
                "A display name: 1 to {NAME_MAX_CHARS} characters once surrounding whitespace is \
                 dropped, no control characters."
            ))
            .pattern(Some(crate::limits::trimmed_text_pattern(NAME_MAX_CHARS)))
            .examples(["Ada Lovelace"])
            .into()
        }
    }
    impl ToSchema for UserName {}

    impl PartialSchema for NewPassword {
        fn schema() -> RefOr<Schema> {
            string(&format!(
                "A new password: {PASSWORD_MIN_BYTES} to {PASSWORD_MAX_BYTES} bytes in UTF-8 \
                 (bcrypt's limit; longer is refused, never cut), no NUL, taken as typed. \
                 The lengths here are exact for ASCII; a non-ASCII character counts 2 to 4 bytes."
            ))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .min_length(Some(PASSWORD_MIN_BYTES))
            .max_length(Some(PASSWORD_MAX_BYTES))
            .pattern(Some("^[^\\u0000]*$"))
            .examples(["correct horse battery"])
            .into()
        }
    }
    impl ToSchema for NewPassword {}

    impl PartialSchema for PasswordAttempt {
        fn schema() -> RefOr<Schema> {
            string(&format!(
                "A password to check: 1 to {PASSWORD_MAX_BYTES} bytes in UTF-8 (exact for ASCII)."
            ))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .min_length(Some(1))
            .max_length(Some(PASSWORD_MAX_BYTES))
            .examples(["correct horse battery"])
            .into()
        }
    }
    impl ToSchema for PasswordAttempt {}

    impl PartialSchema for RefreshToken {
        fn schema() -> RefOr<Schema> {
            string(&format!(
                "An opaque refresh token: {REFRESH_TOKEN_LEN} base64url characters."
            ))
            .min_length(Some(REFRESH_TOKEN_LEN))
            .max_length(Some(REFRESH_TOKEN_LEN))
            .pattern(Some("^[A-Za-z0-9_-]+$"))
            .into()
        }
    }
    impl ToSchema for RefreshToken {}

    /// An optional `Role`.
    pub fn optional_role_schema() -> RefOr<Schema> {
        role_schema()
    }

    /// `Role` (in [`crate::context`]) as a schema.
    pub fn role_schema() -> RefOr<Schema> {
        string_enum(
            "Only user-svc decides roles.",
            [Role::User.as_str(), Role::Admin.as_str()],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn register_ignores_role_and_hides_password() {
        let req: RegisterRequest = serde_json::from_value(
            json!({"email": "a@b.c", "password": "secret123", "name": "A", "role": "admin"}),
        )
        .unwrap();
        assert!(!format!("{req:?}").contains("secret123"));
        assert_eq!(serde_json::to_value(&req).unwrap()["password"], "secret123");
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        let e = |s: &str| Email::parse(s).map(Email::into_inner);
        assert_eq!(e("  Ada@Example.COM\t").unwrap(), "ada@example.com");
        assert_eq!(
            e("a.b+tag@sub.example.co").unwrap(),
            "a.b+tag@sub.example.co"
        );
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa mple.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example..com",
            "ada@exam_ple.com",
            "ädä@example.com",
            "ada@example.com\n.x",
        ] {
            assert!(e(bad).is_err(), "{bad:?}");
        }
        assert!(e(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(e(&format!("a@{}.com", "b".repeat(260))).is_err());
        assert!(e(&format!("a@{}.com", "b".repeat(64))).is_err());
        assert!(e(&format!("{}@{}.com", "a".repeat(64), "b".repeat(63))).is_ok());
    }

    #[test]
    fn names_are_trimmed_and_counted_in_characters() {
        assert_eq!(
            UserName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"é".repeat(100)).is_ok());
        assert!(UserName::parse(&"é".repeat(101)).is_err());
        assert!(UserName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn password_lengths_are_counted_in_bytes() {
        assert!(NewPassword::parse("1234567").is_err());
        assert!(NewPassword::parse("12345678").is_ok());
        assert!(NewPassword::parse(&"x".repeat(72)).is_ok());
        let err = NewPassword::parse(&"x".repeat(73)).unwrap_err();
        assert!(err.contains("72 bytes") && err.contains("bcrypt"), "{err}");
        // 24 three-byte characters are 72 bytes; 25 are 75.
        assert!(NewPassword::parse(&"€".repeat(24)).is_ok());
        assert!(NewPassword::parse(&"€".repeat(25)).is_err());
        assert!(NewPassword::parse("pass\0word").is_err());
        assert_eq!(
            NewPassword::parse(" spaced  ").unwrap().expose(),
            " spaced  "
        );
        assert_eq!(
            format!("{:?}", NewPassword::parse("secret123").unwrap()),
            "NewPassword(***)"
        );
        assert!(
            NewPassword::parse_field("ADMIN_PASSWORD", "x")
                .unwrap_err()
                .starts_with("ADMIN_PASSWORD")
        );
        // A login takes any non-empty password up to the bcrypt limit.
        assert!(PasswordAttempt::parse("x").is_ok());
        assert!(PasswordAttempt::parse("").is_err());
        assert!(PasswordAttempt::parse(&"x".repeat(73)).is_err());
        assert_eq!(
            format!("{:?}", PasswordAttempt::parse("hunter2").unwrap()),
            "PasswordAttempt(***)"
        );
    }

    #[test]
    fn a_bad_field_is_refused_while_reading() {
        let err = serde_json::from_value::<RegisterRequest>(
            json!({"email": "a@b.co", "password": "short", "name": "A"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("at least 8 bytes"), "{err}");
        let upd: UpdateUserRequest = serde_json::from_value(json!({"name": " B "})).unwrap();
        assert_eq!(upd.name.unwrap().as_str(), "B");
        assert!(
            serde_json::from_value::<UpdateUserRequest>(json!({"name": null}))
                .unwrap()
                .name
                .is_none()
        );
    }

    #[test]
    fn refresh_tokens_are_exact_and_hidden() {
        let good = "a".repeat(REFRESH_TOKEN_LEN);
        assert_eq!(REFRESH_TOKEN_LEN, 43);
        let t = RefreshToken::parse(&good).unwrap();
        assert_eq!(format!("{t:?}"), "RefreshToken(***)");
        assert!(RefreshToken::parse(&"a".repeat(REFRESH_TOKEN_LEN - 1)).is_err());
        assert!(RefreshToken::parse(&format!("{}=", "a".repeat(REFRESH_TOKEN_LEN - 1))).is_err());
        assert!(serde_json::from_value::<RefreshRequest>(json!({"refresh_token": "x"})).is_err());
        let ev: SessionsRevoked = serde_json::from_value(
            json!({"user_id": Uuid::nil(), "not_before": 5, "reason": "refresh_reuse"}),
        )
        .unwrap();
        assert_eq!(ev.sid, None);
        assert_eq!(ev.reason, RevocationReason::RefreshReuse);
    }

    #[test]
    fn profile_is_flat() {
        let now = Utc::now();
        let p = UserProfile {
            user: User {
                id: Uuid::nil(),
                email: "a@b.c".into(),
                name: "A".into(),
                role: Role::User,
                disabled: false,
                created_at: now,
                updated_at: now,
            },
            order_stats: OrderStats::default(),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["email"], "a@b.c");
        assert_eq!(v["order_stats"]["total_spent"], "0.00");
        assert_eq!(v["order_stats"]["last_order_at"], json!(null));
    }
}
