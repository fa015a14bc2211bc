//! Sessions through the gateway against the real user-svc (real RabbitMQ and
//! PostgreSQL): refresh rotation and reuse, logout, logout everywhere, password and
//! role changes and disabling, each refused at the gateway within 2 s of the change
//! (polled, the bound asserted); a gateway started afterwards refuses too (snapshot);
//! forged and expired tokens are refused.

use gateway::Config;
use gateway::testing::{Gw, error_code, json_of, sample};
use proto_msgs::Role;
use proto_msgs::testing::TestBus;
use proto_msgs::testing::TestKey;
use proto_msgs::users::{Claims, TOKEN_LEEWAY_SECS};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use svc_kit::testing::TestService;
use uuid::Uuid;

const ADMIN_EMAIL: &str = "admin@shop.test";
const ADMIN_PASSWORD: &str = "admin-password-1";
const PASSWORD: &str = "password-123";
/// The bound: a revoked token is refused within this.
const REVOKED_WITHIN: Duration = Duration::from_secs(2);

struct System {
    gw: Gw,
    users: TestService<user_svc::Config>,
    bus: TestBus,
}

/// Tokens of one session, as the gateway returned them.
#[derive(Debug, Clone)]
struct Session {
    access: String,
    refresh: String,
}

impl System {
    async fn start() -> System {
        let bus = TestBus::new();
        let users = user_svc::testing::spawn(&bus, |c| {
            c.admin_email = Some(ADMIN_EMAIL.into());
            c.admin_password = Some(ADMIN_PASSWORD.into());
        })
        .await;
        let gw = Gw::start(Config::for_tests(bus.config())).await;
        System { gw, users, bus }
    }

    async fn stop(self) {
        self.gw.stop().await;
        self.users.stop().await;
    }

    async fn post(&self, gw: &Gw, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = gw.post(path).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        json_of(req.send().await.unwrap()).await
    }

    async fn register(&self, email: &str) -> Uuid {
        let (status, body) = self
            .post(
                &self.gw,
                "/users/register",
                json!({"email": email, "password": PASSWORD, "name": "Someone"}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
    }

    async fn login(&self, email: &str, password: &str) -> Session {
        let (status, body) = self
            .post(
                &self.gw,
                "/users/login",
                json!({"email": email, "password": password}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        session_of(&body)
    }

    async fn refresh(&self, s: &Session) -> (u16, Value) {
        self.post(
            &self.gw,
            "/users/token/refresh",
            json!({"refresh_token": s.refresh}),
            None,
        )
        .await
    }

    /// `GET /users/me` with `token` on `gw`: the status and the error code, if any.
    async fn me(gw: &Gw, token: &str) -> (u16, Value) {
        json_of(gw.get("/users/me").bearer_auth(token).send().await.unwrap()).await
    }

    /// A signer with user-svc's own key (to forge expired tokens the way it would).
    fn issuer(&self) -> user_svc::tokens::TokenIssuer {
        let keys = user_svc::keys::KeyPair::load(&self.users.config.jwt_key).unwrap();
        user_svc::tokens::TokenIssuer::new(
            &keys,
            &self.users.config.jwt_issuer,
            &self.users.config.jwt_audience,
            Duration::from_secs(60),
        )
        .unwrap()
    }
}

fn session_of(body: &Value) -> Session {
    Session {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// Polls `/users/me` on `gw` with `token` until it is refused as revoked; asserts that
/// took at most [`REVOKED_WITHIN`] from `since`.
async fn refused_within_bound(gw: &Gw, token: &str, since: Instant, what: &str) {
    loop {
        let (status, body) = System::me(gw, token).await;
        if status == 401 {
            assert_eq!(error_code(&body), "unauthenticated");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("revoked"),
                "{body}"
            );
            let took = since.elapsed();
            assert!(
                took <= REVOKED_WITHIN,
                "{what}: refused only after {took:?}"
            );
            return;
        }
        assert_eq!(status, 200, "{what}: {body}");
        assert!(
            since.elapsed() <= REVOKED_WITHIN,
            "{what}: still accepted after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_ends_the_session_at_the_gateway() {
    let sys = System::start().await;
    sys.register("ada@example.com").await;
    let first = sys.login("ada@example.com", PASSWORD).await;
    assert_eq!(System::me(&sys.gw, &first.access).await.0, 200);

    let (status, body) = sys.refresh(&first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 900);
    let second = session_of(&body);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(System::me(&sys.gw, &second.access).await.0, 200);

    // The first refresh token is spent: presenting it again ends the session.
    let (status, body) = sys.refresh(&first).await;
    let revoked_at = Instant::now();
    assert_eq!(status, 401, "{body}");
    assert_eq!(error_code(&body), "unauthenticated");
    // The newest refresh token of the family is dead too, and so are its access tokens.
    let (status, _) = sys.refresh(&second).await;
    assert_eq!(status, 401);
    refused_within_bound(&sys.gw, &second.access, revoked_at, "refresh reuse").await;
    refused_within_bound(&sys.gw, &first.access, revoked_at, "refresh reuse").await;

    // Malformed: 400 naming the field.
    let (status, body) = sys
        .post(
            &sys.gw,
            "/users/token/refresh",
            json!({"refresh_token": "x"}),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    sys.stop().await;
}

#[tokio::test]
async fn logout_and_logout_all_take_effect_at_the_gateway() {
    let sys = System::start().await;
    sys.register("ada@example.com").await;
    let one = sys.login("ada@example.com", PASSWORD).await;
    let two = sys.login("ada@example.com", PASSWORD).await;
    let three = sys.login("ada@example.com", PASSWORD).await;

    let (status, body) = sys
        .post(
            &sys.gw,
            "/users/logout",
            json!({"refresh_token": one.refresh}),
            None,
        )
        .await;
    let revoked_at = Instant::now();
    assert_eq!(
        (status, body["revoked_sessions"].clone()),
        (200, json!(1)),
        "{body}"
    );
    refused_within_bound(&sys.gw, &one.access, revoked_at, "logout").await;
    let metrics = sys.gw.metrics().await;
    assert!(
        sample(&metrics, &["auth_refused_total", "reason=\"revoked\""]).unwrap_or(0.0) >= 1.0,
        "a token refused as revoked is counted: {metrics}"
    );
    assert_eq!(sys.refresh(&one).await.0, 401, "its refresh token is dead");
    // The other sessions go on.
    assert_eq!(System::me(&sys.gw, &two.access).await.0, 200);

    let (status, body) = sys
        .post(&sys.gw, "/users/logout/all", json!({}), Some(&two.access))
        .await;
    let revoked_at = Instant::now();
    assert_eq!(
        (status, body["revoked_sessions"].clone()),
        (200, json!(2)),
        "{body}"
    );
    refused_within_bound(&sys.gw, &two.access, revoked_at, "logout all").await;
    refused_within_bound(&sys.gw, &three.access, revoked_at, "logout all").await;
    assert_eq!(sys.refresh(&three).await.0, 401);
    // Logging in again works at once.
    let again = sys.login("ada@example.com", PASSWORD).await;
    assert_eq!(System::me(&sys.gw, &again.access).await.0, 200);
    // Without a token: 401 before anything reaches user-svc.
    let (status, _) = sys
        .post(&sys.gw, "/users/logout/all", json!({}), None)
        .await;
    assert_eq!(status, 401);
    sys.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_every_session_at_the_gateway() {
    let sys = System::start().await;
    sys.register("ada@example.com").await;
    let other_device = sys.login("ada@example.com", PASSWORD).await;
    let this_device = sys.login("ada@example.com", PASSWORD).await;
    let res = sys
        .gw
        .patch("/users/me")
        .bearer_auth(&this_device.access)
        .json(&json!({"password": "a new password", "current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let revoked_at = Instant::now();
    assert_eq!(res.status(), 200);
    refused_within_bound(&sys.gw, &other_device.access, revoked_at, "password change").await;
    refused_within_bound(&sys.gw, &this_device.access, revoked_at, "password change").await;
    assert_eq!(sys.refresh(&other_device).await.0, 401);
    let fresh = sys.login("ada@example.com", "a new password").await;
    assert_eq!(System::me(&sys.gw, &fresh.access).await.0, 200);
    sys.stop().await;
}

#[tokio::test]
async fn demotion_and_disabling_take_effect_at_the_gateway() {
    let sys = System::start().await;
    let root = sys.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let bob = sys.register("bob@example.com").await;
    let as_user = sys.login("bob@example.com", PASSWORD).await;
    let patch = |token: &str, body: Value| {
        sys.gw
            .patch(&format!("/users/{bob}"))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };

    // A user cannot promote themselves.
    let (status, body) = json_of(
        patch(&as_user.access, json!({"role": "admin"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "permission_denied".into()),
        "{body}"
    );

    // Promoted by the admin, bob logs in again as an admin.
    let (status, body) =
        json_of(patch(&root.access, json!({"role": "admin"})).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "admin");
    let as_admin = sys.login("bob@example.com", PASSWORD).await;
    let (status, _) = json_of(
        sys.gw
            .get(&format!("/users/{}", Uuid::new_v4()))
            .bearer_auth(&as_admin.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "an admin may look up anyone (none here)");

    // Demoted: the admin token is refused within the bound.
    let (status, body) = json_of(patch(&root.access, json!({"role": "user"})).await.unwrap()).await;
    let revoked_at = Instant::now();
    assert_eq!(status, 200, "{body}");
    refused_within_bound(&sys.gw, &as_admin.access, revoked_at, "demotion").await;
    assert_eq!(sys.refresh(&as_admin).await.0, 401);

    // Disabled: refused within the bound, and no login or refresh any more.
    let again = sys.login("bob@example.com", PASSWORD).await;
    let (status, body) = json_of(
        patch(&root.access, json!({"disabled": true}))
            .await
            .unwrap(),
    )
    .await;
    let revoked_at = Instant::now();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], true);
    refused_within_bound(&sys.gw, &again.access, revoked_at, "disable").await;
    assert_eq!(sys.refresh(&again).await.0, 401);
    let (status, body) = sys
        .post(
            &sys.gw,
            "/users/login",
            json!({"email": "bob@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "permission_denied".into())
    );

    // The admin cannot disable themselves; the admin's own token still works.
    let root_id = {
        let (_, me) = System::me(&sys.gw, &root.access).await;
        me["id"].as_str().unwrap().to_owned()
    };
    let (status, body) = json_of(
        sys.gw
            .patch(&format!("/users/{root_id}"))
            .bearer_auth(&root.access)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (409, "failed_precondition".into())
    );
    assert_eq!(System::me(&sys.gw, &root.access).await.0, 200);
    sys.stop().await;
}

#[tokio::test]
async fn a_gateway_started_after_the_revocation_refuses_too() {
    let sys = System::start().await;
    sys.register("ada@example.com").await;
    let s = sys.login("ada@example.com", PASSWORD).await;
    let kept = sys.login("ada@example.com", PASSWORD).await;
    let (status, _) = sys
        .post(
            &sys.gw,
            "/users/logout",
            json!({"refresh_token": s.refresh}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // A gateway that never saw the event: the snapshot at its start tells it.
    let late = Gw::start(Config::for_tests(sys.bus.config())).await;
    let started = Instant::now();
    refused_within_bound(&late, &s.access, started, "snapshot").await;
    assert_eq!(System::me(&late, &kept.access).await.0, 200);
    late.stop().await;
    sys.stop().await;
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    let sys = System::start().await;
    let id = sys.register("ada@example.com").await;
    // A key of its own, even with user-svc's kid: refused.
    let forger = TestKey::new("forged");
    let (status, body) = System::me(&sys.gw, &forger.token(id, Role::Admin)).await;
    assert_eq!(status, 401, "{body}");
    let real = sys.login("ada@example.com", PASSWORD).await;
    let kid = jsonwebtoken::decode_header(&real.access)
        .unwrap()
        .kid
        .unwrap();
    let same_kid = TestKey::new(&kid);
    assert_eq!(
        System::me(&sys.gw, &same_kid.token(id, Role::Admin))
            .await
            .0,
        401
    );

    // user-svc's own key, expired beyond the leeway: refused; within it: accepted.
    let issuer = sys.issuer();
    let now = chrono::Utc::now().timestamp();
    let leeway = i64::try_from(TOKEN_LEEWAY_SECS).unwrap();
    let claims = |exp: i64| Claims {
        sub: id.to_string(),
        role: Role::User,
        sid: Uuid::new_v4(),
        iat: now - 600,
        exp,
        iss: "shop-user-svc".into(),
        aud: "shop".into(),
    };
    let expired = issuer.sign(&claims(now - leeway - 2)).unwrap();
    let (status, body) = System::me(&sys.gw, &expired).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let barely = issuer.sign(&claims(now - 1)).unwrap();
    assert_eq!(System::me(&sys.gw, &barely).await.0, 200);
    sys.stop().await;
}
