//! Through the gateway to the real user-svc and order-svc (real RabbitMQ and
//! PostgreSQL, one fresh database per service per test).

use gateway::Config;
use gateway::testing::{Gw, error_code, json_of, sample};
use proto_msgs::Role;
use proto_msgs::testing::TestBus;
use proto_msgs::testing::{TestKey, token_claims as claims};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use svc_kit::testing::TestService;
use uuid::Uuid;

const ADMIN_EMAIL: &str = "admin@shop.test";
const ADMIN_PASSWORD: &str = "admin-password-1";

/// The whole system: both services and a gateway, on a topology of their own.
struct System {
    gw: Gw,
    users: TestService<user_svc::Config>,
    orders: TestService<order_svc::Config>,
    // Dropped last: the topology is deleted when the test ends.
    _bus: TestBus,
}

impl System {
    async fn start() -> System {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut Config)) -> System {
        Self::start_tuned(|_| {}, tweak).await
    }

    /// With user-svc's settings changed by `users` and the gateway's by `tweak`.
    async fn start_tuned(
        users: impl FnOnce(&mut user_svc::Config),
        tweak: impl FnOnce(&mut Config),
    ) -> System {
        let bus = TestBus::new();
        let users = user_svc::testing::spawn(&bus, |c| {
            c.admin_email = Some(ADMIN_EMAIL.into());
            c.admin_password = Some(ADMIN_PASSWORD.into());
            users(c);
        })
        .await;
        let orders = order_svc::testing::spawn_with_demo_catalog(&bus, |_| {}).await;
        let mut config = Config::for_tests(bus.config());
        tweak(&mut config);
        let gw = Gw::start(config).await;
        System {
            gw,
            users,
            orders,
            _bus: bus,
        }
    }

    async fn stop(self) {
        self.gw.stop().await;
        self.users.stop().await;
        self.orders.stop().await;
    }

    async fn register(&self, email: &str, name: &str) -> Value {
        let (status, body) = json_of(
            self.gw
                .post("/users/register")
                .json(&json!({"email": email, "password": "password-123", "name": name}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = json_of(
            self.gw
                .post("/users/login")
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn user(&self, email: &str) -> (Uuid, String) {
        let body = self.register(email, "Someone").await;
        let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
        (id, self.login(email, "password-123").await)
    }

    async fn create_order(&self, token: &str) -> Value {
        let (status, body) = json_of(
            self.gw
                .post("/orders")
                .bearer_auth(token)
                .json(&json!({"items": [{"sku": "BOOK-RUST", "price": 100, "quantity": 2}]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

/// The seeds' checklist, end to end.
#[tokio::test]
async fn the_seed_checklist_through_the_gateway() {
    let sys = System::start().await;
    let gw = &sys.gw;

    let user = sys.register("ada@example.com", "Ada").await;
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["role"], "user");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let token = sys.login("ada@example.com", "password-123").await;

    let res = gw
        .post("/orders")
        .bearer_auth(&token)
        .json(&json!({"items": [{"sku": "BOOK-RUST", "price": 100, "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, order) = json_of(res).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/orders/{order_id}"));
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["total"], "200.00");
    assert_eq!(order["user_id"], user["id"]);

    let (status, page) = json_of(gw.get("/orders").bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["orders"].as_array().unwrap().len(), 1);
    assert_eq!(page["orders"][0]["id"], order["id"]);

    let (status, got) = json_of(gw.get(&location).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((status, &got["id"]), (200, &order["id"]));

    let admin = sys.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, confirmed) = json_of(
        gw.patch(&format!("/orders/{order_id}/status"))
            .bearer_auth(&admin)
            .json(&json!({"status": "CONFIRMED"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["status"], "CONFIRMED");

    // The statistics arrive through events: poll.
    let deadline = Instant::now() + Duration::from_secs(20);
    let profile = loop {
        let (status, profile) = json_of(
            gw.get("/users/profile")
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{profile}");
        if profile["order_stats"]["order_count"] == 1 || Instant::now() > deadline {
            break profile;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(profile["order_stats"]["order_count"], 1, "{profile}");
    assert_eq!(profile["order_stats"]["total_spent"], "200.00", "{profile}");
    assert!(
        profile["order_stats"]["last_order_at"].is_string(),
        "{profile}"
    );
    sys.stop().await;
}

#[tokio::test]
async fn every_route_succeeds_against_the_real_services() {
    let sys = System::start().await;
    let gw = &sys.gw;
    let (me, token) = sys.user("grace@example.com").await;
    let admin = sys.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    for path in ["/users/me", "/users/profile", &format!("/users/{me}")] {
        let (status, body) = json_of(gw.get(path).bearer_auth(&token).send().await.unwrap()).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["id"], json!(me), "{path}");
        assert!(body["order_stats"].is_object(), "{path}");
    }
    let (status, body) = json_of(
        gw.get(&format!("/users/{me}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["email"]), (200, &json!("grace@example.com")));

    let (status, body) = json_of(
        gw.patch("/users/me")
            .bearer_auth(&token)
            .json(&json!({"name": "Grace Hopper"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["name"]),
        (200, &json!("Grace Hopper")),
        "{body}"
    );

    // Idempotent create: the same key gives the same order.
    let create = || {
        gw.post("/orders")
            .bearer_auth(&token)
            .header("Idempotency-Key", "grace-order-1")
            .json(&json!({"items": [{"sku": "WIDGET", "price": "1.50", "quantity": 25}]}))
            .send()
    };
    let (status, first) = json_of(create().await.unwrap()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["total"], "37.50");
    let (_, again) = json_of(create().await.unwrap()).await;
    assert_eq!(again["id"], first["id"]);
    let second = sys.create_order(&token).await;

    let (status, page) = json_of(
        gw.get("/orders?status=PENDING&limit=1")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["orders"][0]["id"], second["id"]);
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let mut next = reqwest::Url::parse(&gw.url("/orders")).unwrap();
    next.query_pairs_mut()
        .append_pair("limit", "1")
        .append_pair("cursor", &cursor);
    let (_, page2) = json_of(gw.http.get(next).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(page2["orders"][0]["id"], first["id"], "{page2}");

    for (who, path) in [
        (&token, format!("/orders/user/{me}")),
        (&admin, format!("/orders/user/{me}")),
        (&admin, format!("/orders?user_id={me}")),
    ] {
        let (status, page) = json_of(gw.get(&path).bearer_auth(who).send().await.unwrap()).await;
        assert_eq!(status, 200, "{path}: {page}");
        assert_eq!(page["orders"].as_array().unwrap().len(), 2, "{path}");
    }

    let id = first["id"].as_str().unwrap();
    let (status, body) = json_of(
        gw.patch(&format!("/orders/{id}/status"))
            .bearer_auth(&token)
            .json(&json!({"status": "CANCELLED"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("CANCELLED")),
        "{body}"
    );
    sys.stop().await;
}

#[tokio::test]
async fn errors_from_the_real_services() {
    let sys = System::start().await;
    let gw = &sys.gw;
    let (alice, alice_token) = sys.user("alice@example.com").await;
    let (_bob, bob_token) = sys.user("bob@example.com").await;
    let admin = sys.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let order = sys.create_order(&alice_token).await;
    let order_id = order["id"].as_str().unwrap();

    // 400: a field the contract refuses, with the field named (the gateway reads the
    // same types as the services, so it answers without a call).
    let (status, body) = json_of(
        gw.post("/users/register")
            .json(&json!({"email": "not-an-email", "password": "password-123", "name": "X"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "invalid_argument"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["field"], "email", "{body}");
    let (status, body) = json_of(
        gw.post("/orders")
            .bearer_auth(&alice_token)
            .json(&json!({"items": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "invalid_argument"),
        "{body}"
    );
    // The bad item field is named by its path.
    let (status, body) = json_of(
        gw.post("/orders")
            .bearer_auth(&alice_token)
            .json(&json!({"items": [{"sku": "WIDGET", "price": "1.005", "quantity": 1}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["details"]["field"], "items[0].price",
        "{body}"
    );

    // 409: duplicate email (case-insensitive).
    let (status, body) = json_of(
        gw.post("/users/register")
            .json(&json!({"email": "ALICE@example.com", "password": "password-123", "name": "A"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "already_exists"),
        "{body}"
    );

    // 401: wrong password; a token for the real kid signed with another key; expired.
    let (status, body) = json_of(
        gw.post("/users/login")
            .json(&json!({"email": "alice@example.com", "password": "wrong-password"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "unauthenticated"),
        "{body}"
    );
    let kid = jsonwebtoken::decode_header(&alice_token)
        .unwrap()
        .kid
        .unwrap();
    let forger = TestKey::new(&kid);
    for token in [
        forger.token(alice, Role::Admin),
        forger.sign(&claims(alice, Role::User, -600)),
    ] {
        let res = gw.get("/users/me").bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers().contains_key("www-authenticate"));
    }

    // 404: another user's order looks like no order; an unknown route.
    let (status, body) = json_of(
        gw.get(&format!("/orders/{order_id}"))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "not_found"),
        "{body}"
    );
    assert_eq!(gw.get("/no/such/route").send().await.unwrap().status(), 404);

    // 403: someone else's order list; an owner confirming their own order.
    let (status, body) = json_of(
        gw.get(&format!("/orders/user/{alice}"))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "permission_denied"),
        "{body}"
    );
    let status_of = |token: &str, status: &str| {
        gw.patch(&format!("/orders/{order_id}/status"))
            .bearer_auth(token.to_owned())
            .json(&json!({"status": status}))
            .send()
    };
    let (status, body) = json_of(status_of(&alice_token, "CONFIRMED").await.unwrap()).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "permission_denied"),
        "{body}"
    );

    // 409: an illegal transition.
    let (status, _) = json_of(status_of(&alice_token, "CANCELLED").await.unwrap()).await;
    assert_eq!(status, 200);
    let (status, body) = json_of(status_of(&admin, "SHIPPED").await.unwrap()).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "failed_precondition"),
        "{body}"
    );
    sys.stop().await;
}

#[tokio::test]
async fn service_metrics_and_readiness_through_the_gateway() {
    let sys = System::start().await;
    let gw = &sys.gw;
    let (_, token) = sys.user("metrics@example.com").await;
    sys.create_order(&token).await;

    let (status, body) = json_of(gw.get("/health/ready").send().await.unwrap()).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");

    let users = gw
        .get("/metrics/users")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sample(
            &users,
            &[
                "rpc_server_requests_total",
                "method=\"users.register\"",
                "service=\"users\""
            ]
        )
        .is_some_and(|v| v >= 1.0),
        "{users}"
    );
    let orders = gw
        .get("/metrics/orders")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sample(
            &orders,
            &[
                "rpc_server_requests_total",
                "method=\"orders.create\"",
                "service=\"orders\""
            ]
        )
        .is_some_and(|v| v >= 1.0),
        "{orders}"
    );
    let own = gw.metrics().await;
    assert!(
        sample(
            &own,
            &[
                "http_requests_total{",
                "route=\"/orders\"",
                "method=\"POST\"",
                "status=\"201\""
            ]
        )
        .is_some_and(|v| v >= 1.0),
        "{own}"
    );
    sys.stop().await;
}

#[tokio::test]
async fn login_brute_force_is_limited_per_address() {
    let sys = System::start_with(|c| c.rate_limits.auth_per_min = 3).await;
    let gw = &sys.gw;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = gw
            .post("/users/login")
            .json(&json!({"email": ADMIN_EMAIL, "password": "guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);
    sys.stop().await;
}

/// Per account, on top of the per-IP limit: a locked account is 429 with `Retry-After`,
/// the same for an email that has no account.
#[tokio::test]
async fn password_guessing_is_throttled_per_account() {
    let sys = System::start_tuned(
        |u| {
            u.throttle = user_svc::config::Policy {
                free_failures: 2,
                base: Duration::from_secs(30),
                max: Duration::from_secs(60),
            }
        },
        |_| {},
    )
    .await;
    for email in [ADMIN_EMAIL, "nobody@shop.test"] {
        let mut statuses = Vec::new();
        for password in ["guess", "guess", ADMIN_PASSWORD] {
            let res = sys
                .gw
                .post("/users/login")
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            statuses.push(res.status().as_u16());
            if res.status() == 429 {
                let retry: u64 = res.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=30).contains(&retry), "{retry}");
                let (_, body) = json_of(res).await;
                assert_eq!(error_code(&body), "resource_exhausted");
                assert_eq!(body["error"]["details"]["retry_after_s"], json!(retry));
            }
        }
        assert_eq!(statuses, vec![401, 401, 429], "{email}");
    }
    sys.stop().await;
}
