//! `/products/*` become `catalog.*` calls on order-svc's queue; every POST/PATCH passes
//! its `Idempotency-Key`, and a replayed answer says so in `Idempotent-Replayed`.

use crate::common::{Gw, REPLAYED_KEY, Stubs, TestKey, json_of};
use proto_msgs::Role;
use proto_msgs::testing::TestBus;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn product_routes_map_to_catalog_methods() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let boss = Uuid::new_v4();
    let token = key.token(boss, Role::Admin);
    let id = Uuid::new_v4();

    // Public: no token needed.
    let (status, body) = json_of(
        gw.get("/products?limit=20&offset=40&category=home&q=lamp&min_price=1.50&max_price=20")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["method"]), (200, &json!("catalog.list")));
    assert_eq!(
        body["body"],
        json!({"category": "home", "q": "lamp", "min_price": "1.50", "max_price": "20.00", "limit": 20, "offset": 40})
    );
    assert_eq!(body["actor"], json!(null));
    let (status, body) = json_of(gw.get("/products?min_price=-1").send().await.unwrap()).await;
    assert_eq!(
        (status, &body["error"]["details"]["field"]),
        (400, &json!("min_price"))
    );
    let (status, body) = json_of(gw.get(&format!("/products/{id}")).send().await.unwrap()).await;
    assert_eq!((status, &body["body"]), (200, &json!({"id": id})));

    // Writes need a token; the service decides on the role.
    let res = gw
        .post("/products")
        .json(&json!({"sku": "LAMP-1", "name": "Lamp", "category": "home", "price": "19.99"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = gw
        .post("/products")
        .bearer_auth(&token)
        .header("Idempotency-Key", "create-1")
        .json(&json!({"sku": "LAMP-1", "name": "Lamp", "category": "home", "price": "19.99", "stock": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, body) = json_of(res).await;
    assert_eq!(body["method"], "catalog.create");
    assert_eq!(body["idempotency_key"], "create-1");
    assert_eq!(body["actor"]["role"], "admin");
    assert_eq!(
        location,
        format!("/products/{}", body["id"].as_str().unwrap())
    );

    let (status, body) = json_of(
        gw.patch(&format!("/products/{id}"))
            .bearer_auth(&token)
            .json(&json!({"price": 25}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["method"]), (200, &json!("catalog.update")));
    assert_eq!(body["body"], json!({"id": id, "price": "25.00"}));

    // A replayed answer says so.
    let res = gw
        .post(&format!("/products/{id}/stock"))
        .bearer_auth(&token)
        .header("Idempotency-Key", REPLAYED_KEY)
        .json(&json!({"delta": -2, "reason": "broken in transit"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let (status, body) = json_of(res).await;
    assert_eq!(
        (status, &body["method"]),
        (200, &json!("catalog.adjust_stock"))
    );
    assert_eq!(
        body["body"],
        json!({"id": id, "delta": -2, "reason": "broken in transit"})
    );
    let (status, body) = json_of(
        gw.post(&format!("/products/{id}/stock"))
            .bearer_auth(&token)
            .json(&json!({"delta": 0, "reason": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["details"]["field"]),
        (400, &json!("delta"))
    );

    // Every POST and PATCH checks its key.
    let (status, body) = json_of(
        gw.post("/users/register")
            .header("Idempotency-Key", "has space")
            .json(&json!({"email": "a@b.c", "password": "secret123", "name": "A"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["details"]["field"]),
        (400, &json!("Idempotency-Key"))
    );
    let (_, body) = json_of(
        gw.patch(&format!("/orders/{id}/status"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "cancel-1")
            .json(&json!({"status": "cancelled"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["idempotency_key"], "cancel-1");

    gw.stop().await;
    stubs.stop().await;
}
