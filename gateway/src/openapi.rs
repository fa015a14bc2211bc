//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes and
//! the contract types of proto-msgs (feature `openapi`: each request and reply type
//! carries its JSON Schema, with every rule the services check), and the Swagger UI
//! page at `/docs` (assets compiled into the binary from the `utoipa-swagger-ui` crate's
//! vendored copy: nothing is fetched at build or run time).
//!
//! Every status a route can answer is listed: its own, and the ones the gateway itself
//! produces ([`TokenErrors`], [`BodyErrors`], [`PublicErrors`], [`ServiceErrors`]).
//! `system-tests/tests/openapi_conformance.rs` runs schemathesis against the document
//! and the running system.

use crate::routes::{health, metrics, orders, products, users};
use proto_msgs::ErrorCode;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

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
    /// Each code has one HTTP status (405, 413 and 415 excepted, see docs/http-api.md).
    #[schema(schema_with = error_code_schema)]
    pub code: ErrorCode,
    /// For people; do not parse it.
    #[schema(example = "email is already registered")]
    pub message: String,
    /// Machine-readable extras, e.g. `{"field": "items[2].price"}`, or `policy` and
    /// `retry_after_s` on a 429.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// [`ErrorCode`] as a schema: its values, from the code.
fn error_code_schema() -> RefOr<Schema> {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .into()
}

fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorDoc"))),
        )
        .build()
        .into()
}

fn responses(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error(description)))
        .collect()
}

/// What the gateway answers on a route that needs a token, before any service.
pub struct TokenErrors;

impl IntoResponses for TokenErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            (
                401,
                "Missing, malformed, expired, badly signed or revoked token (with `WWW-Authenticate`)",
            ),
            (
                429,
                "Rate limited (policy `user`, or `anon` for a bad token; with `Retry-After`)",
            ),
        ])
    }
}

/// What the gateway answers on a public route that is rate limited.
pub struct PublicErrors;

impl IntoResponses for PublicErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(429, "Rate limited (with `Retry-After`)")])
    }
}

/// What our JSON extractor answers before the body is read.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            (413, "Body larger than `BODY_LIMIT_BYTES`"),
            (415, "Body not sent as `Content-Type: application/json`"),
        ])
    }
}

/// What any route that calls a service may answer.
pub struct ServiceErrors;

impl IntoResponses for ServiceErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            (500, "Unexpected failure (details only in the logs)"),
            (
                503,
                "The service is not running, its database or the broker is down, or the token keys cannot be fetched",
            ),
            (504, "The service did not answer in time"),
        ])
    }
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
    /// Each dependency's report; only for a caller allowed to read it (the operations
    /// token, when the gateway has one).
    #[schema(value_type = Option<Object>)]
    pub checks: Option<serde_json::Value>,
    /// Only when not ready (and allowed to read the report).
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
        users::refresh,
        users::logout,
        users::logout_all,
        users::admin_update,
        orders::create,
        orders::list,
        orders::get,
        orders::update_status,
        orders::list_for_user,
        products::list,
        products::get,
        products::create,
        products::update,
        products::adjust_stock,
        health::live,
        health::ready,
        metrics::gateway,
        metrics::users,
        metrics::orders,
    ),
    components(schemas(ErrorDoc, ErrorFieldsDoc, HealthDoc, ReadyDoc)),
    modifiers(&BearerAuth),
    tags(
        (name = "users", description = "Accounts, login, profiles"),
        (name = "orders", description = "Orders and their status"),
        (name = "products", description = "The catalog: products, prices, stock"),
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
            "ops",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operations token (`METRICS_TOKEN`), when the gateway has one",
                    ))
                    .build(),
            ),
        );
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
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    add_field_rules(&mut doc);
    serde_json::to_vec(&doc)
}

/// Rules the derived schemas cannot say: a new `password` needs `current_password`
/// (JSON Schema `if`/`then`; user-svc answers 400 without it); a product change changes
/// at least one field; a stock adjustment is not 0.
fn add_field_rules(doc: &mut serde_json::Value) {
    if let Some(item) = doc
        .pointer_mut("/components/schemas/NewItem")
        .and_then(serde_json::Value::as_object_mut)
    {
        item.insert(
            "oneOf".into(),
            json!([{"required": ["product_id"]}, {"required": ["sku"]}]),
        );
    }
    if let Some(changes) = doc
        .pointer_mut("/components/schemas/ProductChanges")
        .and_then(serde_json::Value::as_object_mut)
    {
        changes.insert("minProperties".into(), json!(1));
    }
    if let Some(delta) = doc
        .pointer_mut("/components/schemas/StockAdjustment/properties/delta")
        .and_then(serde_json::Value::as_object_mut)
    {
        delta.insert("not".into(), json!({"const": 0}));
    }
    let update = doc
        .pointer_mut("/components/schemas/UpdateUserRequest")
        .and_then(serde_json::Value::as_object_mut);
    if let Some(update) = update {
        update.insert(
            "if".into(),
            json!({"required": ["password"], "properties": {"password": {"type": "string"}}}),
        );
        update.insert(
            "then".into(),
            json!({
                "required": ["current_password"],
                "properties": {"current_password": {"type": "string"}}
            }),
        );
    }
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
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_slice(&document().unwrap()).unwrap()
    }

    /// Resolves `$ref`s one level (enough for the component schemas).
    fn schema<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("unresolved {r}")),
            None => v,
        }
    }

    #[test]
    fn the_rules_are_in_the_document() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let new_item = &schemas["NewItem"];
        assert_eq!(new_item["oneOf"][1]["required"], json!(["sku"]));
        let item = &new_item["properties"];
        assert_eq!(item["sku"]["pattern"], proto_msgs::catalog::Sku::pattern());
        let quantity = schema(&doc, &item["quantity"]);
        assert_eq!(
            (quantity["minimum"].clone(), quantity["maximum"].clone()),
            (1.into(), 10000.into())
        );
        let price = schema(&doc, &item["price"]);
        assert_eq!(price["oneOf"][1]["maximum"], 1000000);
        let items = schema(&doc, &schemas["CreateOrderRequest"]["properties"]["items"]);
        assert_eq!(
            (items["minItems"].clone(), items["maxItems"].clone()),
            (1.into(), 100.into())
        );
        let password = schema(&doc, &schemas["RegisterRequest"]["properties"]["password"]);
        assert_eq!(password["minLength"], 8);
        assert_eq!(password["maxLength"], 72);
        // A login does not tell the minimum of new passwords.
        let login = schema(&doc, &schemas["LoginRequest"]["properties"]["password"]);
        assert_eq!(login["minLength"], 1);
        let status = schema(&doc, &schemas["Order"]["properties"]["status"]);
        let statuses: Vec<Value> = proto_msgs::orders::OrderStatus::ALL
            .iter()
            .map(|s| Value::from(s.as_str()))
            .collect();
        assert_eq!(status["enum"], Value::Array(statuses));
        let codes: Vec<Value> = ErrorCode::ALL
            .iter()
            .map(|c| Value::from(c.as_str()))
            .collect();
        assert_eq!(
            schemas["ErrorFieldsDoc"]["properties"]["code"]["enum"],
            Value::Array(codes)
        );
        let params = doc["paths"]["/orders"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["maximum"], 100);
        assert_eq!(limit["schema"]["default"], 20);
        let user_params = doc["paths"]["/orders/user/{user_id}"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert_eq!(
            user_params
                .iter()
                .filter(|p| p["name"] == "user_id")
                .count(),
            1
        );
        let refresh = schema(
            &doc,
            &schemas["RefreshRequest"]["properties"]["refresh_token"],
        );
        assert_eq!(refresh["minLength"], proto_msgs::users::REFRESH_TOKEN_LEN);
        assert_eq!(refresh["maxLength"], proto_msgs::users::REFRESH_TOKEN_LEN);
        let change = &schemas["AccountChange"]["properties"];
        assert_eq!(
            schema(&doc, &change["role"])["enum"],
            json!(["user", "admin"])
        );
        for (path, method) in [
            ("/users/token/refresh", "post"),
            ("/users/logout", "post"),
            ("/users/logout/all", "post"),
            ("/users/{id}", "patch"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
        let update = &schemas["UpdateUserRequest"];
        assert_eq!(update["then"]["required"], json!(["current_password"]));
        // Every POST and PATCH takes an idempotency key.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["post", "patch"] {
                let Some(op) = item.get(method) else { continue };
                let key = op["parameters"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["name"] == "Idempotency-Key"))
                    .unwrap_or_else(|| panic!("{method} {path}: no Idempotency-Key"));
                assert_eq!(
                    key["schema"]["pattern"],
                    proto_msgs::limits::idempotency_key_pattern()
                );
            }
        }
        let stock = schema(&doc, &schemas["Product"]["properties"]["stock"]);
        assert_eq!(stock["minimum"], 0);
    }

    /// The statuses the gateway produces itself are documented on every route concerned.
    #[test]
    fn gateway_statuses_are_documented() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let statuses: Vec<&str> = op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                let schemes = |name: &str| {
                    op["security"]
                        .as_array()
                        .is_some_and(|reqs| reqs.iter().any(|r| r.get(name).is_some()))
                };
                let protected = schemes("bearer");
                let body = op.get("requestBody").is_some();
                let mut wanted: Vec<&str> = match (protected, body) {
                    (true, true) => vec!["400", "401", "413", "415", "429", "500", "503", "504"],
                    (true, false) => vec!["401", "429", "500", "503", "504"],
                    (false, true) => vec!["400", "413", "415", "429", "500", "503", "504"],
                    (false, false) => vec![],
                };
                // The operations token refuses with 401, except on /health/ready, which
                // only leaves the report out.
                if schemes("ops") && path != "/health/ready" {
                    wanted.push("401");
                }
                for status in &wanted {
                    assert!(
                        statuses.contains(status),
                        "{method} {path}: no {status} in {statuses:?}"
                    );
                }
            }
        }
    }
}
