//! The user service's contract: methods, request and reply types, event payloads.

use crate::context::Role;
use crate::money::Money;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

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
    pub const HEALTH: &str = "users.sys.health";
    pub const METRICS: &str = "users.sys.metrics";
}

/// `users.register`. Unknown fields (such as `role`) are ignored.
#[derive(Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// `users.login`.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Reply of `users.login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `"Bearer"`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// `users.get`: self, or anyone for an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetUserRequest {
    pub id: Uuid,
}

/// `users.me`, `users.jwks`: no parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

/// `users.update` for the actor. Changing the password needs `current_password`.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
}

/// A user as others may see it: never the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Per-user order statistics, built by user-svc from order events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Reply of `users.me`, `users.get` and `users.update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Claims of an access token. `iss` and `aud` are checked by every verifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub role: Role,
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

// Passwords never reach a log line through Debug.
impl fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("email", &self.email)
            .field("password", &"***")
            .field("name", &self.name)
            .finish()
    }
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .field("password", &"***")
            .finish()
    }
}

impl fmt::Debug for UpdateUserRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateUserRequest")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "current_password",
                &self.current_password.as_ref().map(|_| "***"),
            )
            .finish()
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
