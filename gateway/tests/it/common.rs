//! Shared set-up: token minting, stub services on the bus, a gateway per test.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proto_msgs::testing::TestBus;
use proto_msgs::{CancellationToken, RequestContext, Role, RpcError, RpcServer};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// A throwaway Ed25519 key that mints tokens like user-svc does.
pub struct TestKey {
    pub kid: String,
    encoding: EncodingKey,
    pub x: String,
}

impl TestKey {
    pub fn new(kid: &str) -> Self {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        // PKCS#8 v1 for Ed25519: a fixed 16-byte prefix and the 32-byte seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        TestKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(&der),
            x: URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
        }
    }

    pub fn jwks_value(&self) -> Value {
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid,
                         "alg": "EdDSA", "use": "sig"}]})
    }

    pub fn jwks(&self) -> String {
        self.jwks_value().to_string()
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    pub fn token(&self, sub: Uuid, role: Role) -> String {
        self.sign(&claims(sub, role, 600))
    }
}

pub fn claims(sub: Uuid, role: Role, exp_in: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub.to_string(), "role": role, "sid": Uuid::new_v4(), "iat": now,
           "exp": now + exp_in, "iss": "shop-user-svc", "aud": "shop"})
}

/// Ids the stubs answer with an error instead of an echo.
pub mod fail_ids {
    pub const NOT_FOUND: &str = "00000000-0000-0000-0000-000000000404";
    pub const CONFLICT: &str = "00000000-0000-0000-0000-000000000409";
    pub const FORBIDDEN: &str = "00000000-0000-0000-0000-000000000403";
    pub const INTERNAL: &str = "00000000-0000-0000-0000-000000000500";
}

/// What a stub saw: method, body and context.
fn echo(method: &str, ctx: &RequestContext, body: &Value) -> Value {
    json!({
        "id": Uuid::new_v4(),
        "method": method,
        "body": body,
        "actor": ctx.actor.map(|a| json!({"id": a.id, "role": a.role})),
        "request_id": ctx.request_id,
        "trace_id": ctx.trace_id(),
        "idempotency_key": ctx.idempotency_key,
    })
}

fn scripted_error(body: &Value) -> Result<(), RpcError> {
    let id = body["id"].as_str().unwrap_or_default();
    match id {
        fail_ids::NOT_FOUND => Err(RpcError::not_found("no such thing")),
        fail_ids::CONFLICT => Err(RpcError::failed_precondition("cannot move from DELIVERED")
            .with_details(json!({"from": "DELIVERED"}))),
        fail_ids::FORBIDDEN => Err(RpcError::permission_denied("not yours")),
        fail_ids::INTERNAL => Err(RpcError::internal("db at 10.1.2.3 said: password wrong")),
        _ => Ok(()),
    }
}

/// Stub user-svc and order-svc: every method echoes what it received; a few ids
/// produce errors (see [`fail_ids`]); `users.jwks` serves `key` and counts calls;
/// `users.login` sleeps `login_delay` first.
pub struct Stubs {
    pub jwks_calls: Arc<AtomicUsize>,
    /// What `users.jwks` answers (tests rotate keys through it).
    pub jwks: Arc<Mutex<Value>>,
    users: proto_msgs::rpc::RunningServer,
    orders: proto_msgs::rpc::RunningServer,
    stop: CancellationToken,
}

impl Stubs {
    pub async fn start(bus: &TestBus, key: &TestKey) -> Stubs {
        Self::start_with(bus, key, Duration::ZERO).await
    }

    pub async fn start_with(bus: &TestBus, key: &TestKey, login_delay: Duration) -> Stubs {
        let stop = CancellationToken::new();
        let jwks_calls = Arc::new(AtomicUsize::new(0));
        let jwks = Arc::new(Mutex::new(key.jwks_value()));
        let served = jwks.clone();
        let calls = jwks_calls.clone();
        let mut users = RpcServer::new(bus.config(), "users")
            .method("users.jwks", move |_ctx, _req: Value| {
                let jwks = served.lock().unwrap().clone();
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Ok(jwks) }
            })
            .method(
                "users.login",
                move |ctx: RequestContext, req: Value| async move {
                    tokio::time::sleep(login_delay).await;
                    Ok(echo("users.login", &ctx, &req))
                },
            )
            .metrics(|| "# TYPE stub_users_up gauge\nstub_users_up{service=\"users\"} 1\n".into());
        users = users.method("users.revocations", |_ctx, _req: Value| async {
            Ok(json!({"access_ttl_secs": 900, "revoked": []}))
        });
        for m in [
            "users.register",
            "users.me",
            "users.get",
            "users.update",
            "users.refresh",
            "users.logout",
            "users.logout_all",
            "users.admin_update",
        ] {
            users = users.method(m, move |ctx: RequestContext, req: Value| async move {
                scripted_error(&req)?;
                Ok(echo(m, &ctx, &req))
            });
        }
        let mut orders = RpcServer::new(bus.config(), "orders").metrics(|| {
            "# TYPE stub_orders_up gauge\nstub_orders_up{service=\"orders\"} 1\n".into()
        });
        for m in [
            "orders.create",
            "orders.get",
            "orders.list",
            "orders.update_status",
        ] {
            orders = orders.method(m, move |ctx: RequestContext, req: Value| async move {
                scripted_error(&req)?;
                Ok(echo(m, &ctx, &req))
            });
        }
        let users = users.start(stop.clone()).await.unwrap();
        let orders = orders.start(stop.clone()).await.unwrap();
        Stubs {
            jwks_calls,
            jwks,
            users,
            orders,
            stop,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.users.stopped().await;
        self.orders.stopped().await;
    }
}

/// A running gateway and an HTTP client for it.
pub struct Gw {
    pub base: String,
    pub http: reqwest::Client,
    running: Option<gateway::Running>,
    stop: CancellationToken,
}

impl Gw {
    pub async fn start(config: Config) -> Gw {
        let stop = CancellationToken::new();
        let running = gateway::start(config, stop.clone()).await.unwrap();
        assert!(running.wait_connected(Duration::from_secs(20)).await);
        Gw {
            base: format!("http://{}", running.addr),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            running: Some(running),
            stop,
        }
    }

    /// A gateway with fixed verification keys (no `users.jwks` call needed).
    pub async fn with_key(bus: &TestBus, key: &TestKey) -> Gw {
        Self::start(Self::config(bus, key)).await
    }

    pub fn config(bus: &TestBus, key: &TestKey) -> Config {
        let mut config = Config::for_tests(bus.config());
        config.jwks = Some(key.jwks());
        config
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.patch(self.url(path))
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(running) = self.running.take() {
            running.stopped().await;
        }
    }
}

/// Status and JSON body of a response.
pub async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// Asserts the one error shape and returns the code.
pub fn error_code(body: &Value) -> String {
    assert!(body["error"]["message"].is_string(), "error shape: {body}");
    assert!(
        body["request_id"].is_string(),
        "request_id in error: {body}"
    );
    body["error"]["code"].as_str().unwrap().to_owned()
}

/// Parses Prometheus text: `(series with labels, value)` for each sample line.
pub fn prometheus_samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// The value of the first sample whose series contains every fragment.
pub fn sample(text: &str, fragments: &[&str]) -> Option<f64> {
    prometheus_samples(text)
        .into_iter()
        .find(|(s, _)| fragments.iter().all(|f| s.contains(f)))
        .map(|(_, v)| v)
}
