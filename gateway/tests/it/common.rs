//! Shared set-up: token minting, stub services on the bus, a gateway per test.

use proto_msgs::testing::TestBus;
use proto_msgs::{CancellationToken, RequestContext, RpcError, RpcServer};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

pub use proto_msgs::testing::{TestKey, token_claims as claims};

/// Ids the stubs answer with an error instead of an echo.
pub mod fail_ids {
    pub const NOT_FOUND: &str = "00000000-0000-0000-0000-000000000404";
    pub const CONFLICT: &str = "00000000-0000-0000-0000-000000000409";
    pub const FORBIDDEN: &str = "00000000-0000-0000-0000-000000000403";
    pub const INTERNAL: &str = "00000000-0000-0000-0000-000000000500";
}

/// An idempotency key the order stubs answer as a replayed request.
pub const REPLAYED_KEY: &str = "seen-before";

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
            "catalog.list",
            "catalog.get",
            "catalog.create",
            "catalog.update",
            "catalog.adjust_stock",
        ] {
            orders = orders.method(m, move |ctx: RequestContext, req: Value| async move {
                scripted_error(&req)?;
                // As a service answering from its stored replies would.
                if ctx.idempotency_key.as_deref() == Some(REPLAYED_KEY) {
                    ctx.replayed.set();
                }
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

pub use gateway::testing::{Gw, error_code, json_of, prometheus_samples, sample};
