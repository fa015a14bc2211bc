//! Each route becomes exactly one RPC with the right method, body and context.

use crate::common::{Gw, Stubs, TestKey, json_of};
use proto_msgs::Role;
use proto_msgs::testing::TestBus;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn every_route_maps_to_its_method() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let me = Uuid::new_v4();
    let token = key.token(me, Role::User);
    let other = Uuid::new_v4();
    let order = Uuid::new_v4();

    let res = gw
        .post("/users/register")
        .json(&json!({"email": "a@b.c", "password": "secret123", "name": "A", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, body) = json_of(res).await;
    assert_eq!(body["method"], "users.register");
    assert_eq!(
        body["body"],
        json!({"email": "a@b.c", "password": "secret123", "name": "A"})
    );
    assert_eq!(body["actor"], json!(null));
    assert_eq!(location, format!("/users/{}", body["id"].as_str().unwrap()));

    let (status, body) = json_of(
        gw.post("/users/login")
            .json(&json!({"email": "a@b.c", "password": "secret123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["method"].as_str()),
        (200, Some("users.login"))
    );
    assert_eq!(body["body"]["email"], "a@b.c");

    let actor = json!({"id": me, "role": "user"});
    for path in ["/users/me", "/users/profile"] {
        let (status, body) = json_of(gw.get(path).bearer_auth(&token).send().await.unwrap()).await;
        assert_eq!(
            (status, &body["method"]),
            (200, &json!("users.me")),
            "{path}"
        );
        assert_eq!(body["actor"], actor);
    }
    let (status, body) = json_of(
        gw.patch("/users/me")
            .bearer_auth(&token)
            .json(&json!({"name": "B"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["method"]), (200, &json!("users.update")));
    assert_eq!(body["body"], json!({"name": "B"}));
    assert_eq!(body["actor"], actor);

    let (status, body) = json_of(
        gw.get(&format!("/users/{other}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["method"]), (200, &json!("users.get")));
    assert_eq!(body["body"], json!({"id": other}));

    let res = gw
        .post("/orders")
        .bearer_auth(&token)
        .header("Idempotency-Key", "retry-me-1")
        .json(&json!({"items": [{"sku": "P-1", "price": 100, "quantity": 2}], "user_id": other}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, body) = json_of(res).await;
    assert_eq!(body["method"], "orders.create");
    // Items go on as the contract type (read and checked here, written in its form:
    // the price as a decimal string); the client's user_id does not.
    assert_eq!(
        body["body"],
        json!({"items": [{"sku": "P-1", "quantity": 2, "price": "100.00"}]})
    );
    assert_eq!(body["idempotency_key"], "retry-me-1");
    assert_eq!(body["actor"], actor);
    assert_eq!(
        location,
        format!("/orders/{}", body["id"].as_str().unwrap())
    );

    let res = gw
        .post("/orders")
        .bearer_auth(&token)
        .header("X-Idempotency-Key", "retry-me-2")
        .json(&json!({"items": [{"sku": "P", "price": "1.50", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    let (_, body) = json_of(res).await;
    assert_eq!(body["idempotency_key"], "retry-me-2");

    let cursor = format!("v1.1790000000123456.{}", Uuid::nil().simple());
    let (status, body) = json_of(
        gw.get(&format!(
            "/orders?status=confirmed&limit=5&cursor={cursor}&ignored=1"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, &body["method"]), (200, &json!("orders.list")));
    assert_eq!(
        body["body"],
        json!({"status": "CONFIRMED", "limit": 5, "cursor": cursor})
    );

    let (_, body) = json_of(
        gw.get(&format!("/orders?user_id={other}&offset=20"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["body"], json!({"user_id": other, "offset": 20}));

    let (_, body) = json_of(
        gw.get(&format!("/orders/user/{other}?limit=3"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["method"], "orders.list");
    assert_eq!(body["body"], json!({"user_id": other, "limit": 3}));

    let (status, body) = json_of(
        gw.get(&format!("/orders/{order}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["method"]), (200, &json!("orders.get")));
    assert_eq!(body["body"], json!({"id": order}));

    let (status, body) = json_of(
        gw.patch(&format!("/orders/{order}/status"))
            .bearer_auth(&token)
            .json(&json!({"status": "cancelled"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["method"]),
        (200, &json!("orders.update_status"))
    );
    assert_eq!(body["body"], json!({"id": order, "status": "CANCELLED"}));

    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn actor_comes_from_the_token_only() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let me = Uuid::new_v4();
    let (status, body) = json_of(
        gw.get("/users/me")
            .bearer_auth(key.token(me, Role::User))
            .header("x-actor-id", Uuid::new_v4().to_string())
            .header("x-actor-role", "admin")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["actor"], json!({"id": me, "role": "user"}));

    // Headers alone vouch for nobody.
    let res = gw
        .get("/users/me")
        .header("x-actor-id", me.to_string())
        .header("x-actor-role", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Login and register never carry an actor, even with a token.
    let (_, body) = json_of(
        gw.post("/users/login")
            .bearer_auth(key.token(me, Role::Admin))
            .json(&json!({"email": "a@b.c", "password": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["actor"], json!(null));
    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn request_ids_and_traces_travel_to_the_service() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let token = key.token(Uuid::new_v4(), Role::User);

    let res = gw
        .get("/users/me")
        .bearer_auth(&token)
        .header("X-Request-Id", "client-req-42")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-req-42");
    let (_, body) = json_of(res).await;
    assert_eq!(body["request_id"], "client-req-42");
    assert_eq!(body["trace_id"], "0af7651916cd43dd8448eb211c80319c");

    // An unsafe id is replaced by one of ours; a bad traceparent starts a new trace.
    let res = gw
        .get("/users/me")
        .bearer_auth(&token)
        .header("X-Request-Id", "bad id with spaces")
        .header("traceparent", "00-nonsense")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(Uuid::parse_str(&id).is_ok(), "{id}");
    let (_, body) = json_of(res).await;
    assert_eq!(body["request_id"], id.as_str());
    assert_eq!(body["trace_id"].as_str().unwrap().len(), 32);

    // Errors carry the id too.
    let res = gw
        .get("/nowhere")
        .header("X-Request-Id", "client-req-43")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-req-43");
    let (status, body) = json_of(res).await;
    assert_eq!(
        (status, &body["request_id"]),
        (404, &json!("client-req-43"))
    );
    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn session_routes_map_to_their_methods() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let me = Uuid::new_v4();
    let refresh = "r".repeat(proto_msgs::users::REFRESH_TOKEN_LEN);

    // The refresh token is the credential: no actor is sent, no bearer needed.
    for (path, method) in [
        ("/users/token/refresh", "users.refresh"),
        ("/users/logout", "users.logout"),
    ] {
        let (status, body) = json_of(
            gw.post(path)
                .json(&json!({"refresh_token": refresh}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, &body["method"]), (200, &json!(method)), "{path}");
        assert_eq!(body["body"], json!({"refresh_token": refresh}));
        assert_eq!(body["actor"], json!(null));
        // A body that is not a refresh token never reaches the service.
        let res = gw
            .post(path)
            .json(&json!({"refresh_token": "short"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
    }

    let admin = key.token(me, Role::Admin);
    let (status, body) = json_of(
        gw.post("/users/logout/all")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["method"]), (200, &json!("users.logout_all")));
    assert_eq!(body["actor"], json!({"id": me, "role": "admin"}));
    assert_eq!(
        gw.post("/users/logout/all").send().await.unwrap().status(),
        401
    );

    let target = Uuid::new_v4();
    let (status, body) = json_of(
        gw.patch(&format!("/users/{target}"))
            .bearer_auth(&admin)
            .json(&json!({"role": "user", "disabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["method"]),
        (200, &json!("users.admin_update"))
    );
    assert_eq!(
        body["body"],
        json!({"id": target, "role": "user", "disabled": true})
    );
    let res = gw
        .patch(&format!("/users/{target}"))
        .bearer_auth(&admin)
        .json(&json!({"role": "root"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    gw.stop().await;
    stubs.stop().await;
}
