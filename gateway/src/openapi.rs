//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes,
//! and the Swagger UI page at `/docs` (assets compiled into the binary from the
//! `utoipa-swagger-ui` crate's vendored copy: nothing is fetched at build or run time).
//!
//! Response bodies are the services' reply data passed through as bytes, so their
//! schemas are mirrored here (`*Doc`); a test checks each mirror against the contract
//! type it documents (proto-msgs is not changed for the docs).

use crate::routes::{health, metrics, orders, users};
use chrono::{DateTime, Utc};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;
use uuid::Uuid;

/// The error shape of every non-2xx answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDoc {
    pub error: ErrorFieldsDoc,
    /// The request id (also in the `X-Request-Id` response header).
    #[schema(example = "6f1c2a9e-5a41-4a4e-8d0c-3b1e2f9f7d10")]
    pub request_id: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorFieldsDoc {
    pub code: ErrorCodeDoc,
    /// For people; do not parse it.
    #[schema(example = "email is already registered")]
    pub message: String,
    /// Machine-readable extras, e.g. `{"field": "email"}`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Error codes; each has one HTTP status (405, 413 and 415 excepted, see the docs).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ErrorCodeDoc {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    ResourceExhausted,
    Unimplemented,
    Internal,
    Unavailable,
    DeadlineExceeded,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleDoc {
    User,
    Admin,
}

#[derive(ToSchema)]
#[schema(rename_all = "UPPERCASE")]
#[allow(dead_code)]
pub enum OrderStatusDoc {
    Pending,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

/// A user (never the password hash).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UserDoc {
    pub id: Uuid,
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    pub role: RoleDoc,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Order statistics kept by user-svc from order events.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OrderStatsDoc {
    /// Orders placed (cancelled ones included).
    pub order_count: i64,
    /// Sum of totals, cancelled orders excluded (decimal string).
    #[schema(example = "200.00")]
    pub total_spent: String,
    pub last_order_at: Option<DateTime<Utc>>,
}

/// A user with order statistics.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProfileDoc {
    pub id: Uuid,
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    pub role: RoleDoc,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub order_stats: OrderStatsDoc,
}

/// An access token.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenDoc {
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: u64,
}

/// One line of an order.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OrderItemDoc {
    #[schema(example = "Product")]
    pub name: String,
    #[schema(example = "100.00")]
    pub price: String,
    #[schema(example = 2)]
    pub quantity: i64,
    /// `price × quantity`.
    #[schema(example = "200.00")]
    pub subtotal: String,
}

/// An order. Amounts are decimal strings with two places.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OrderDoc {
    pub id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<OrderItemDoc>,
    #[schema(example = "200.00")]
    pub total: String,
    pub status: OrderStatusDoc,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of orders, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OrderPageDoc {
    pub orders: Vec<OrderDoc>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
    pub limit: u32,
}

/// `GET /health`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct HealthDoc {
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /health/ready`: `checks.broker`, `checks.users`, `checks.orders`, each with
/// `status` (`ok` | `unavailable`), and `latency_ms` / `error` for the services.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReadyDoc {
    #[schema(example = "ok")]
    pub status: String,
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
    /// Only when not ready.
    pub error: Option<ErrorFieldsDoc>,
    /// Only when not ready.
    pub request_id: Option<String>,
}

/// The document served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shop gateway",
        description = "The HTTP API of the shop. Errors are `{\"error\": {code, message, details?}, \"request_id\"}`; \
                       see docs/http-api.md for statuses, rate-limit headers and request ids."
    ),
    paths(
        users::register,
        users::login,
        users::me,
        users::profile,
        users::update_me,
        users::get,
        orders::create,
        orders::list,
        orders::get,
        orders::update_status,
        orders::list_for_user,
        health::live,
        health::ready,
        metrics::gateway,
        metrics::users,
        metrics::orders,
    ),
    components(schemas(
        ErrorDoc, ErrorFieldsDoc, ErrorCodeDoc, RoleDoc, OrderStatusDoc, UserDoc,
        OrderStatsDoc, ProfileDoc, TokenDoc, OrderItemDoc, OrderDoc, OrderPageDoc,
        HealthDoc, ReadyDoc
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "users", description = "Accounts, login, profiles"),
        (name = "orders", description = "Orders and their status"),
        (name = "health", description = "Liveness and readiness"),
        (name = "metrics", description = "Prometheus metrics of the gateway and the services"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from `POST /users/login` (EdDSA-signed JWT)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON bytes.
pub fn document() -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ApiDoc::openapi())
}

/// The Swagger UI at `/docs/`, reading `/openapi.json`. Its online spec validator is
/// switched off so the page never calls out.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").config(
        utoipa_swagger_ui::Config::new(["/openapi.json"])
            .validator_url("none")
            .try_it_out_enabled(true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_msgs::Money;
    use proto_msgs::Role;
    use proto_msgs::orders::{Order, OrderItem, OrderPage, OrderStatus};
    use proto_msgs::users::{OrderStats, TokenResponse, User, UserProfile};
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn schema_keys(doc: &Value, name: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name} has no properties"))
            .keys()
            .cloned()
            .collect()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// Each mirror documents exactly the fields its contract type puts on the wire.
    #[test]
    fn mirrors_match_the_contract() {
        let doc: Value = serde_json::from_slice(&document().unwrap()).unwrap();
        let now = Utc::now();
        let user = User {
            id: Uuid::nil(),
            email: "a@b.c".into(),
            name: "A".into(),
            role: Role::User,
            created_at: now,
            updated_at: now,
        };
        let profile = UserProfile {
            user: user.clone(),
            order_stats: OrderStats::default(),
        };
        let item = OrderItem {
            name: "P".into(),
            price: Money::from_minor(100),
            quantity: 1,
            subtotal: Money::from_minor(100),
        };
        let order = Order {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            items: vec![item.clone()],
            total: Money::from_minor(100),
            status: OrderStatus::Pending,
            created_at: now,
            updated_at: now,
        };
        let page = OrderPage {
            orders: vec![],
            next_cursor: None,
            has_more: false,
            limit: 20,
        };
        let token = TokenResponse {
            access_token: "t".into(),
            token_type: "Bearer".into(),
            expires_in: 1,
        };
        for (name, value) in [
            ("UserDoc", serde_json::to_value(&user).unwrap()),
            ("ProfileDoc", serde_json::to_value(&profile).unwrap()),
            (
                "OrderStatsDoc",
                serde_json::to_value(&profile.order_stats).unwrap(),
            ),
            ("OrderItemDoc", serde_json::to_value(&item).unwrap()),
            ("OrderDoc", serde_json::to_value(&order).unwrap()),
            ("OrderPageDoc", serde_json::to_value(&page).unwrap()),
            ("TokenDoc", serde_json::to_value(&token).unwrap()),
        ] {
            assert_eq!(schema_keys(&doc, name), keys(&value), "{name}");
        }
        let statuses: Vec<Value> = OrderStatus::ALL
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        assert_eq!(
            doc["components"]["schemas"]["OrderStatusDoc"]["enum"],
            Value::Array(statuses)
        );
        let codes: Vec<Value> = proto_msgs::ErrorCode::ALL
            .iter()
            .map(|c| Value::from(c.as_str()))
            .collect();
        assert_eq!(
            doc["components"]["schemas"]["ErrorCodeDoc"]["enum"],
            Value::Array(codes)
        );
    }
}
