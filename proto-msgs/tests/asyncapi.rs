//! Keeps docs/asyncapi.yaml true: every method and event of the code is documented,
//! every `$ref` resolves, the error codes match, and the schemas have exactly the
//! fields our types put on the wire.

use chrono::Utc;
use proto_msgs::catalog::{self, Product, ProductPage};
use proto_msgs::money::Money;
use proto_msgs::orders::{
    self, Order, OrderCreated, OrderItem, OrderPage, OrderStatus, OrderUpdated,
};
use proto_msgs::users::{
    self, Jwk, Jwks, OrderStats, TokenResponse, User, UserProfile, UserRegistered, UserUpdated,
};
use proto_msgs::{ErrorCode, Role};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use uuid::Uuid;

fn doc() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/asyncapi.yaml"
    ))
    .expect("docs/asyncapi.yaml");
    serde_norway::from_str(&text).expect("valid YAML")
}

const METHODS: &[&str] = &[
    users::methods::REGISTER,
    users::methods::LOGIN,
    users::methods::ME,
    users::methods::GET,
    users::methods::UPDATE,
    users::methods::JWKS,
    users::methods::REFRESH,
    users::methods::LOGOUT,
    users::methods::LOGOUT_ALL,
    users::methods::ADMIN_UPDATE,
    users::methods::REVOCATIONS,
    users::methods::HEALTH,
    users::methods::METRICS,
    orders::methods::CREATE,
    orders::methods::GET,
    orders::methods::LIST,
    orders::methods::UPDATE_STATUS,
    orders::methods::HEALTH,
    orders::methods::METRICS,
    catalog::methods::LIST,
    catalog::methods::GET,
    catalog::methods::CREATE,
    catalog::methods::UPDATE,
    catalog::methods::ADJUST_STOCK,
];

const EVENTS: &[&str] = &[
    proto_msgs::events::types::USER_REGISTERED,
    proto_msgs::events::types::USER_UPDATED,
    proto_msgs::events::types::USER_SESSIONS_REVOKED,
    proto_msgs::events::types::ORDER_CREATED,
    proto_msgs::events::types::ORDER_UPDATED,
];

#[test]
fn every_method_and_event_has_a_channel_and_operation() {
    let doc = doc();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let channels = doc["channels"].as_object().unwrap();
    let addresses: BTreeSet<&str> = channels
        .values()
        .filter_map(|c| c["address"].as_str())
        .collect();
    for name in METHODS.iter().chain(EVENTS) {
        assert!(
            addresses.contains(name),
            "{name} is missing from docs/asyncapi.yaml"
        );
    }
    let operations = doc["operations"].as_object().unwrap();
    for name in METHODS {
        let op = operations
            .values()
            .find(|op| op["title"] == *name)
            .unwrap_or_else(|| panic!("no operation for {name}"));
        assert_eq!(op["action"], "receive");
        assert!(op["reply"].is_object(), "{name} documents its reply");
    }
}

#[test]
fn error_codes_match() {
    let doc = doc();
    let documented: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ours: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(documented, ours);
}

fn walk_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|v| walk_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| walk_refs(v, out)),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

#[test]
fn every_ref_resolves() {
    let doc = doc();
    let mut refs = Vec::new();
    walk_refs(&doc, &mut refs);
    assert!(refs.len() > 50);
    for r in refs {
        assert!(resolve(&doc, r).is_some(), "unresolved $ref {r}");
    }
}

/// Properties and required fields of an object schema, following `$ref` and `allOf`.
fn shape(doc: &Value, schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        return shape(doc, resolve(doc, r).unwrap());
    }
    let mut props = BTreeSet::new();
    let mut required = BTreeSet::new();
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            let (p, r) = shape(doc, part);
            props.extend(p);
            required.extend(r);
        }
    }
    if let Some(p) = schema["properties"].as_object() {
        props.extend(p.keys().cloned());
    }
    if let Some(r) = schema["required"].as_array() {
        required.extend(r.iter().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    (props, required)
}

fn check(doc: &Value, schema_name: &str, value: Value) {
    let schema = &doc["components"]["schemas"][schema_name];
    assert!(schema.is_object(), "no schema {schema_name}");
    let (props, required) = shape(doc, schema);
    let keys: BTreeSet<String> = value.as_object().unwrap().keys().cloned().collect();
    for k in &keys {
        assert!(
            props.contains(k),
            "{schema_name}: field {k} is on the wire but not documented"
        );
    }
    for r in &required {
        assert!(
            keys.contains(r),
            "{schema_name}: documented as required but not sent: {r}"
        );
    }
}

#[test]
fn schemas_have_the_fields_the_code_sends() {
    let doc = doc();
    let now = Utc::now();
    let user = User {
        id: Uuid::new_v4(),
        email: "a@b.c".into(),
        name: "A".into(),
        role: Role::User,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let item = OrderItem {
        product_id: Some(Uuid::new_v4()),
        name: "P".into(),
        price: Money::from_minor(100),
        quantity: 2,
        subtotal: Money::from_minor(200),
    };
    let order = Order {
        id: Uuid::new_v4(),
        user_id: user.id,
        items: vec![item.clone()],
        total: Money::from_minor(200),
        status: OrderStatus::Pending,
        created_at: now,
        updated_at: now,
    };
    let to = |v: &dyn erased::Ser| v.value();
    check(&doc, "User", to(&user));
    check(&doc, "OrderStats", to(&OrderStats::default()));
    check(
        &doc,
        "UserProfile",
        to(&UserProfile {
            user: user.clone(),
            order_stats: OrderStats::default(),
        }),
    );
    check(
        &doc,
        "TokenResponse",
        to(&TokenResponse {
            access_token: "t".into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_token: users::RefreshToken::parse(&"a".repeat(users::REFRESH_TOKEN_LEN))
                .unwrap(),
            refresh_expires_in: 86_400,
        }),
    );
    let revoked = users::SessionsRevoked {
        user_id: Uuid::new_v4(),
        sid: Some(Uuid::new_v4()),
        not_before: 1,
        reason: users::RevocationReason::RefreshReuse,
    };
    check(&doc, "SessionsRevoked", to(&revoked));
    check(
        &doc,
        "Revocations",
        to(&users::Revocations {
            access_ttl_secs: 900,
            revoked: vec![revoked.clone()],
        }),
    );
    check(
        &doc,
        "LogoutResponse",
        to(&users::LogoutResponse {
            revoked_sessions: 1,
        }),
    );
    let reasons: Vec<Value> = [
        users::RevocationReason::Logout,
        users::RevocationReason::LogoutAll,
        users::RevocationReason::RefreshReuse,
        users::RevocationReason::PasswordChanged,
        users::RevocationReason::RoleChanged,
        users::RevocationReason::Disabled,
    ]
    .iter()
    .map(|r| serde_json::to_value(r).unwrap())
    .collect();
    assert_eq!(
        doc["components"]["schemas"]["RevocationReason"]["enum"],
        Value::Array(reasons)
    );
    let jwk = Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: "x".into(),
        kid: "k".into(),
        alg: "EdDSA".into(),
        use_: "sig".into(),
    };
    let jwks = to(&Jwks { keys: vec![jwk] });
    check(&doc, "Jwks", jwks.clone());
    let key_schema = &doc["components"]["schemas"]["Jwks"]["properties"]["keys"]["items"];
    let (props, _) = shape(&doc, key_schema);
    assert_eq!(
        props,
        jwks["keys"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    );
    check(&doc, "OrderItem", to(&item));
    let product = Product {
        id: Uuid::new_v4(),
        sku: "P-1".into(),
        name: "P".into(),
        description: String::new(),
        category: "c".into(),
        price: Money::from_minor(100),
        stock: 3,
        active: true,
        created_at: now,
        updated_at: now,
    };
    check(&doc, "Product", to(&product));
    check(
        &doc,
        "ProductPage",
        to(&ProductPage {
            products: vec![product.clone()],
            total: 1,
            limit: 20,
            offset: 0,
        }),
    );
    check(&doc, "Order", to(&order));
    check(
        &doc,
        "OrderPage",
        to(&OrderPage {
            orders: vec![order.clone()],
            next_cursor: None,
            has_more: false,
            limit: 20,
        }),
    );
    check(
        &doc,
        "UserRegistered",
        to(&UserRegistered {
            user_id: user.id,
            email: "a@b.c".into(),
            name: "A".into(),
            role: Role::User,
            created_at: now,
        }),
    );
    check(
        &doc,
        "UserUpdated",
        to(&UserUpdated {
            user_id: user.id,
            email: "a@b.c".into(),
            name: "A".into(),
            role: Role::User,
            updated_at: now,
        }),
    );
    check(
        &doc,
        "OrderCreated",
        to(&OrderCreated {
            order_id: order.id,
            user_id: user.id,
            items: vec![item],
            total: order.total,
            status: order.status,
            created_at: now,
        }),
    );
    check(
        &doc,
        "OrderUpdated",
        to(&OrderUpdated {
            order_id: order.id,
            user_id: user.id,
            old_status: OrderStatus::Pending,
            new_status: OrderStatus::Confirmed,
            total: order.total,
            updated_at: now,
        }),
    );
    let event = proto_msgs::CloudEvent::new("order-svc", "order.created", "id", json!({}))
        .with_trace(Some(&proto_msgs::TraceParent::new_root()), Some("k=v"));
    check(&doc, "CloudEvent", serde_json::to_value(&event).unwrap());
    let statuses: Vec<Value> = OrderStatus::ALL.iter().map(|s| json!(s.as_str())).collect();
    assert_eq!(
        doc["components"]["schemas"]["OrderStatus"]["enum"],
        Value::Array(statuses)
    );
    // Request types: everything a client may send is documented.
    check(
        &doc,
        "ListOrdersRequest",
        json!({"user_id": Uuid::nil(), "status": "PENDING", "limit": 1, "cursor": "c", "offset": 0}),
    );
    check(
        &doc,
        "RegisterRequest",
        json!({"email": "e", "password": "p", "name": "n"}),
    );
    check(
        &doc,
        "UpdateUserRequest",
        json!({"name": "n", "password": "p", "current_password": "c"}),
    );
    check(&doc, "CreateOrderRequest", json!({"items": []}));
    check(
        &doc,
        "RefreshRequest",
        json!({"refresh_token": "a".repeat(users::REFRESH_TOKEN_LEN)}),
    );
    check(
        &doc,
        "AdminUpdateRequest",
        to(&users::AdminUpdateRequest {
            id: Uuid::nil(),
            change: users::AccountChange {
                role: Some(Role::Admin),
                disabled: Some(true),
            },
        }),
    );
    check(
        &doc,
        "UpdateStatusRequest",
        json!({"id": Uuid::nil(), "status": "SHIPPED"}),
    );
}

/// The rules in the schemas are the contract types' own: the same limits and patterns.
#[test]
fn schema_rules_are_the_code_s() {
    use proto_msgs::limits;
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let prop = |schema: &str, field: &str| {
        let v = &schemas[schema]["properties"][field];
        match v["$ref"].as_str() {
            Some(r) => resolve(&doc, r).unwrap().clone(),
            None => v.clone(),
        }
    };
    let password = &schemas["NewPassword"];
    assert_eq!(password["minLength"], json!(users::PASSWORD_MIN_BYTES));
    assert_eq!(password["maxLength"], json!(users::PASSWORD_MAX_BYTES));
    assert_eq!(schemas["PasswordAttempt"]["minLength"], json!(1));
    assert_eq!(
        schemas["PasswordAttempt"]["maxLength"],
        json!(users::PASSWORD_MAX_BYTES)
    );
    assert_eq!(schemas["Email"]["maxLength"], json!(users::EMAIL_MAX_LEN));
    assert_eq!(
        schemas["UserName"]["pattern"],
        json!(limits::trimmed_text_pattern(users::NAME_MAX_CHARS))
    );
    assert_eq!(
        schemas["Sku"]["pattern"],
        json!(proto_msgs::catalog::Sku::pattern())
    );
    assert_eq!(
        prop("CreateProductRequest", "name")["pattern"],
        json!(limits::trimmed_text_pattern(
            proto_msgs::catalog::PRODUCT_NAME_MAX_CHARS
        ))
    );
    assert_eq!(
        prop("AdjustStockRequest", "delta")["maximum"],
        json!(proto_msgs::catalog::STOCK_MAX)
    );
    assert_eq!(
        prop("NewItem", "quantity")["maximum"],
        json!(orders::QUANTITY_MAX)
    );
    let price = &schemas["PriceInput"]["oneOf"];
    assert_eq!(price[0]["pattern"], json!(orders::PRICE_STRING_PATTERN));
    assert_eq!(price[1]["maximum"], json!(orders::PRICE_MAX.minor() / 100));
    let items = prop("CreateOrderRequest", "items");
    assert_eq!(items["maxItems"], json!(orders::ITEMS_MAX));
    assert_eq!(
        prop("ListOrdersRequest", "limit")["maximum"],
        json!(orders::PAGE_LIMIT_MAX)
    );
    assert_eq!(
        prop("ListOrdersRequest", "limit")["default"],
        json!(orders::PAGE_LIMIT_DEFAULT)
    );
    assert_eq!(
        prop("ListOrdersRequest", "offset")["maximum"],
        json!(orders::OFFSET_MAX)
    );
    assert_eq!(
        prop("ListOrdersRequest", "cursor")["pattern"],
        json!(orders::PageCursor::pattern())
    );
    assert_eq!(
        schemas["RpcRequestHeaders"]["properties"]["x-idempotency-key"]["pattern"],
        json!(limits::idempotency_key_pattern())
    );
    assert_eq!(
        schemas["Money"]["pattern"],
        json!(proto_msgs::money::MONEY_PATTERN)
    );
}

/// Serialize a value of any contract type to JSON.
mod erased {
    pub trait Ser {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("serialize")
        }
    }
}
