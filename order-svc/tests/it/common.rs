//! `Svc::start()`: the service on a fresh database and topology, and a client for it.

use order_svc::Config;
use proto_msgs::catalog::{self, Product};
use proto_msgs::orders::{CreateOrderRequest, Order, OrderStatus, UpdateStatusRequest, methods};
use proto_msgs::testing::TestBus;
use proto_msgs::{Actor, ErrorCode, RequestContext, Role, RpcClient, RpcClientConfig, RpcError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;
use svc_kit::testing::TestService;
use uuid::Uuid;

/// Products every test starts with (SKU, name, price), a million of each in stock.
pub const CATALOG: [(&str, &str, &str); 5] = [
    ("PEN", "Pen", "0.10"),
    ("BOOK", "Book", "100.00"),
    ("LAMP", "Lamp", "19.99"),
    ("CHAIR", "Chair", "45.00"),
    ("WIDGET", "Widget", "12.34"),
];

/// A running service with its own bus prefix and database.
pub struct Svc {
    pub client: RpcClient,
    /// The service, its config and its database (dropped with the test).
    pub svc: TestService<Config>,
    pub bus: TestBus,
}

impl Svc {
    pub async fn start() -> Svc {
        Self::start_with(|_| {}).await
    }

    /// Starts with a config adjusted by `adjust` (e.g. a relay bus through a proxy).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Svc {
        Self::start_on(TestBus::new(), adjust).await
    }

    pub async fn start_on(bus: TestBus, adjust: impl FnOnce(&mut Config)) -> Svc {
        let svc = order_svc::testing::spawn(&bus, adjust).await;
        let client = RpcClient::connect(
            bus.config(),
            RpcClientConfig {
                // Generous: the test box has 2 cores shared with other builds.
                default_timeout: Duration::from_secs(30),
                connection_name: "order-svc test client".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let svc = Svc { client, svc, bus };
        for (sku, name, price) in CATALOG {
            svc.product(json!({"sku": sku, "name": name, "category": "test",
                               "price": price, "stock": 1_000_000}))
                .await;
        }
        svc
    }

    /// Creates a product as an admin.
    pub async fn product(&self, body: Value) -> Product {
        self.call(catalog::methods::CREATE, &body, Some(admin()))
            .await
            .unwrap()
    }

    /// The stock of `sku`, from the database.
    pub async fn stock(&self, sku: &str) -> i64 {
        self.count(&format!("SELECT stock FROM products WHERE sku = '{sku}'"))
            .await
    }

    /// The service's database pool.
    pub fn pool(&self) -> &DatabaseConnection {
        self.svc.running().db()
    }

    /// Graceful stop; the database and the topology are dropped with `self`.
    pub async fn stop(self) {
        self.client.close().await;
        self.svc.stop().await;
    }

    pub async fn call<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        method: &str,
        body: &Req,
        actor: Option<Actor>,
    ) -> Result<Resp, RpcError> {
        self.client.call(method, body, &ctx(actor)).await
    }

    pub async fn call_ctx<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        method: &str,
        body: &Req,
        ctx: &RequestContext,
    ) -> Result<Resp, RpcError> {
        self.client.call(method, body, ctx).await
    }

    /// A simple order of `actor`'s (total 12.34).
    pub async fn create(&self, actor: Actor) -> Order {
        self.call(methods::CREATE, &simple_order(), Some(actor))
            .await
            .unwrap()
    }

    pub async fn set_status(
        &self,
        actor: Actor,
        id: Uuid,
        status: OrderStatus,
    ) -> Result<Order, RpcError> {
        self.call(
            methods::UPDATE_STATUS,
            &UpdateStatusRequest { id, status },
            Some(actor),
        )
        .await
    }

    /// One number from the service's database.
    pub async fn count(&self, sql: &str) -> i64 {
        let row = self
            .pool()
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }
}

pub fn ctx(actor: Option<Actor>) -> RequestContext {
    let ctx = RequestContext::new().with_request_id(Uuid::new_v4().to_string());
    match actor {
        Some(a) => ctx.with_actor(a),
        None => ctx,
    }
}

pub fn user() -> Actor {
    Actor {
        id: Uuid::new_v4(),
        role: Role::User,
    }
}

pub fn admin() -> Actor {
    Actor {
        id: Uuid::new_v4(),
        role: Role::Admin,
    }
}

pub fn simple_order() -> CreateOrderRequest {
    serde_json::from_value(json!({"items": [{"sku": "WIDGET", "price": "12.34", "quantity": 1}]}))
        .unwrap()
}

/// Asserts the error code and returns the error for more checks.
#[track_caller]
pub fn expect_err<T: std::fmt::Debug>(result: Result<T, RpcError>, code: ErrorCode) -> RpcError {
    match result {
        Ok(v) => panic!("expected {code:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.code, code, "{e:?}");
            e
        }
    }
}

/// The `details.field` of a validation error.
pub fn field_of(err: &RpcError) -> &str {
    err.details
        .as_ref()
        .and_then(|d| d["field"].as_str())
        .unwrap_or_else(|| panic!("no details.field in {err:?}"))
}
