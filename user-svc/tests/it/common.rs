//! `TestApp`: user-svc started in process on its own database and bus prefix, with a
//! client, and helpers to call it, watch its events and wait for effects.

use proto_msgs::testing::TestBus;
use proto_msgs::users::{TokenResponse, User, methods};
use proto_msgs::{
    Actor, CancellationToken, CloudEvent, EventConsumer, RequestContext, Role, RpcClient,
    RpcClientConfig, RpcError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Duration;
use svc_kit::testing::TestService;
use tokio::sync::mpsc;
use user_svc::Config;
use user_svc::keys::KeyPair;
use user_svc::tokens::TokenIssuer;

/// Name of the extra consumer that watches what user-svc publishes.
pub const WATCHER: &str = "watcher";

pub struct TestApp {
    pub client: RpcClient,
    /// The service, its config and its database.
    pub svc: TestService<Config>,
    pub bus: TestBus,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_, _| {}).await
    }

    /// Starts the service after `adjust` had a go at its config.
    pub async fn spawn_with(adjust: impl FnOnce(&TestBus, &mut Config)) -> TestApp {
        let bus = TestBus::new();
        bus.track(WATCHER);
        let svc = user_svc::testing::spawn(&bus, |config| adjust(&bus, config)).await;
        let client = RpcClient::connect(bus.config(), RpcClientConfig::default())
            .await
            .unwrap();
        TestApp { client, svc, bus }
    }

    /// Stops the service and starts it again on the same database and bus.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) {
        self.svc.restart_with(adjust).await;
    }

    pub async fn stop(self) {
        self.svc.stop().await;
        self.client.close().await;
    }

    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        req: &Req,
        actor: Option<Actor>,
    ) -> Result<Resp, RpcError> {
        let mut ctx = RequestContext::new().with_request_id(uuid::Uuid::new_v4().to_string());
        if let Some(actor) = actor {
            ctx = ctx.with_actor(actor);
        }
        self.client.call(method, req, &ctx).await
    }

    pub async fn try_register(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> Result<User, RpcError> {
        // Raw JSON: tests send what the contract types would refuse to hold.
        let req = serde_json::json!({"email": email, "password": password, "name": name});
        self.call(methods::REGISTER, &req, None).await
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> User {
        self.try_register(email, password, name).await.unwrap()
    }

    pub async fn try_login(&self, email: &str, password: &str) -> Result<TokenResponse, RpcError> {
        let req = serde_json::json!({"email": email, "password": password});
        self.call(methods::LOGIN, &req, None).await
    }

    /// A signer with the service's own key (to forge expired or odd tokens).
    pub fn issuer(&self, ttl: Duration) -> TokenIssuer {
        let keys = KeyPair::load(&self.svc.config.jwt_key).unwrap();
        TokenIssuer::new(
            &keys,
            &self.svc.config.jwt_issuer,
            &self.svc.config.jwt_audience,
            ttl,
        )
        .unwrap()
    }
}

pub fn actor(user: &User) -> Option<Actor> {
    Some(Actor {
        id: user.id,
        role: user.role,
    })
}

pub fn admin_actor(id: uuid::Uuid) -> Option<Actor> {
    Some(Actor {
        id,
        role: Role::Admin,
    })
}

/// Events of `types` published on the test bus, as they arrive.
pub struct EventWatch {
    pub rx: mpsc::UnboundedReceiver<CloudEvent<serde_json::Value>>,
    stop: CancellationToken,
    running: Option<proto_msgs::events::RunningConsumer>,
}

impl EventWatch {
    pub async fn start(bus: &TestBus, types: &[&str]) -> EventWatch {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let mut consumer = EventConsumer::new(bus.config(), WATCHER);
        for t in types {
            let tx = tx.clone();
            consumer = consumer.on(t, move |ev: CloudEvent<serde_json::Value>| {
                let _ = tx.send(ev);
                async { Ok(()) }
            });
        }
        let running = consumer.start(stop.clone()).await.unwrap();
        EventWatch {
            rx,
            stop,
            running: Some(running),
        }
    }

    /// The next event, waiting at most `secs`.
    pub async fn next(&mut self, secs: u64) -> Option<CloudEvent<serde_json::Value>> {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Nothing more arrives within `millis`.
    pub async fn assert_quiet(&mut self, millis: u64) {
        if let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(millis), self.rx.recv()).await
        {
            panic!("unexpected event {} {:?}", ev.event_type, ev.data);
        }
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(r) = self.running.take() {
            r.stopped().await;
        }
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Polls `check` until it returns `Some`, for at most 10 s.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(10), what, check).await
}

/// Polls `check` until it returns `Some`, for at most `limit`.
pub async fn eventually_within<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A database connection of the test's own (to look at tables directly).
pub async fn db(app: &TestApp) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(app.svc.db.url.as_str())
        .await
        .unwrap()
}
