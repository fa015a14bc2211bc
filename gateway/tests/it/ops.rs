//! Health, metrics, OpenAPI and docs, CORS, graceful shutdown.

use crate::common::{Gw, Stubs, TestKey, error_code, json_of, prometheus_samples, sample};
use gateway::Config;
use proto_msgs::Role;
use proto_msgs::testing::TestBus;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn health_and_readiness() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let gw = Gw::with_key(&bus, &key).await;
    let (status, body) = json_of(gw.get("/health").send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    // No service yet: 503 with the report and the error shape.
    let (status, body) = json_of(gw.get("/health/ready").send().await.unwrap()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "unavailable");
    assert_eq!(body["checks"]["broker"]["status"], "ok");
    assert_eq!(body["checks"]["users"]["status"], "unavailable");
    assert_eq!(body["checks"]["orders"]["status"], "unavailable");

    let stubs = Stubs::start(&bus, &key).await;
    let (status, body) = json_of(gw.get("/health/ready").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    for dep in ["users", "orders"] {
        assert_eq!(body["checks"][dep]["status"], "ok");
        assert!(body["checks"][dep]["latency_ms"].as_f64().unwrap() >= 0.0);
    }
    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_and_services_are_exposed() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let token = key.token(Uuid::new_v4(), Role::User);
    let order = Uuid::new_v4();

    let before = gw.metrics().await;
    let count = |text: &str| {
        sample(
            text,
            &[
                "http_requests_total{",
                "route=\"/orders/{id}\"",
                "method=\"GET\"",
                "status=\"200\"",
            ],
        )
        .unwrap_or(0.0)
    };
    for _ in 0..3 {
        let res = gw
            .get(&format!("/orders/{order}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = gw.get("/metrics").send().await.unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let after = res.text().await.unwrap();
    // Every line parses; the route label is the pattern, not the raw path.
    assert!(!prometheus_samples(&after).is_empty());
    assert_eq!(count(&after) - count(&before), 3.0, "{after}");
    assert!(!after.contains(&order.to_string()));
    assert!(
        sample(
            &after,
            &[
                "rpc_client_duration_seconds_count",
                "method=\"orders.get\"",
                "outcome=\"ok\""
            ]
        )
        .unwrap()
            >= 3.0
    );
    assert!(
        sample(
            &after,
            &[
                "http_request_duration_seconds_count",
                "route=\"/orders/{id}\""
            ]
        )
        .is_some()
    );
    assert!(sample(&after, &["http_requests_in_flight", "service=\"gateway\""]).is_some());

    // Tokens refused before any call are counted by reason.
    let refused = |text: &str, reason: &str| {
        sample(
            text,
            &["auth_refused_total", &format!("reason=\"{reason}\"")],
        )
        .unwrap_or(0.0)
    };
    let path = format!("/orders/{order}");
    assert_eq!(gw.get(&path).send().await.unwrap().status(), 401);
    for _ in 0..2 {
        let res = gw
            .get(&path)
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let text = gw.metrics().await;
    assert_eq!(
        refused(&text, "missing") - refused(&after, "missing"),
        1.0,
        "{text}"
    );
    assert_eq!(
        refused(&text, "invalid") - refused(&after, "invalid"),
        2.0,
        "{text}"
    );

    for (path, series) in [
        ("/metrics/users", "stub_users_up"),
        ("/metrics/orders", "stub_orders_up"),
    ] {
        let res = gw.get(path).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = res.text().await.unwrap();
        assert_eq!(sample(&text, &[series]), Some(1.0), "{text}");
    }
    stubs.stop().await;
    let (status, body) = json_of(gw.get("/metrics/orders").send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (503, "unavailable"));
    gw.stop().await;
}

#[tokio::test]
async fn openapi_lists_every_route_and_docs_are_served_locally() {
    let bus = TestBus::new();
    let gw = Gw::start(Config::for_tests(bus.config())).await;
    let (status, doc) = json_of(gw.get("/openapi.json").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    for (path, method) in [
        ("/users/register", "post"),
        ("/users/login", "post"),
        ("/users/me", "get"),
        ("/users/me", "patch"),
        ("/users/profile", "get"),
        ("/users/{id}", "get"),
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{id}", "get"),
        ("/orders/{id}/status", "patch"),
        ("/orders/user/{user_id}", "get"),
        ("/health", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
        ("/metrics/users", "get"),
        ("/metrics/orders", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(op["responses"].is_object(), "{method} {path}");
    }
    // Request and response bodies have schemas.
    let create = &doc["paths"]["/orders"]["post"];
    assert!(create["requestBody"]["content"]["application/json"]["schema"].is_object());
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Order"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // /docs → /docs/ → HTML whose scripts and styles all come from this server.
    let res = gw.get("/docs").send().await.unwrap();
    assert_eq!(res.status(), 308);
    let res = gw.get("/docs/").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    let assets: Vec<String> = html
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
        .map(str::to_owned)
        .collect();
    assert!(!assets.is_empty(), "{html}");
    for asset in assets {
        assert!(!asset.contains("://"), "external asset {asset}");
        let url = format!("/docs/{}", asset.trim_start_matches("./"));
        let res = gw.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let body = res.bytes().await.unwrap();
        assert!(body.len() > 100, "{url}");
    }
    let init = gw
        .get("/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    gw.stop().await;
}

#[tokio::test]
async fn cors_is_off_by_default_and_configurable() {
    let bus = TestBus::new();
    let gw = Gw::start(Config::for_tests(bus.config())).await;
    let res = gw
        .get("/health")
        .header("Origin", "http://shop.test")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    gw.stop().await;

    let mut config = Config::for_tests(bus.config());
    config.cors_allowed_origins = vec!["http://shop.test".into()];
    let gw = Gw::start(config).await;
    let res = gw
        .http
        .request(reqwest::Method::OPTIONS, gw.url("/orders"))
        .header("Origin", "http://shop.test")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://shop.test"
    );
    let res = gw
        .get("/health")
        .header("Origin", "http://shop.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://shop.test"
    );
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start_with(&bus, &key, Duration::from_millis(800)).await;
    let gw = Gw::with_key(&bus, &key).await;
    let http = gw.http.clone();
    let url = gw.url("/users/login");
    let in_flight = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"email": "a@b.c", "password": "x"}))
            .send()
            .await
    });
    // Stop only once the slow request is being handled (the gauge counts the
    // /metrics request itself too).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = gw.metrics().await;
        if sample(&text, &["http_requests_in_flight"]).unwrap_or(0.0) >= 2.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let base = gw.base.clone();
    gw.stop().await;
    let res = in_flight.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["method"], "users.login");
    // Stopped: no longer accepting.
    assert!(reqwest::get(format!("{base}/health")).await.is_err());
    stubs.stop().await;
}

/// With `METRICS_TOKEN`, `/metrics*` answer 401 without it and the text with it, and
/// `/health/ready` tells everyone its status but only the token holder its report; a
/// request on the internal listener needs no token.
#[tokio::test]
async fn the_operations_endpoints_need_the_token_or_the_internal_listener() {
    let bus = TestBus::new();
    let key = TestKey::new("k-ops");
    let stubs = Stubs::start(&bus, &key).await;
    let internal = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = Config::for_tests(bus.config());
    config.ops.token = Some(proc_kit::Secret::new("ops-token-0123456789"));
    config.ops.internal = Some(internal);
    let gw = Gw::start(config).await;

    let res = gw.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    let res = gw
        .get("/metrics/users")
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = gw
        .get("/metrics")
        .bearer_auth("ops-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));

    let (status, body) = json_of(gw.get("/health/ready").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    let (_, body) = json_of(
        gw.get("/health/ready")
            .bearer_auth("ops-token-0123456789")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(body["checks"]["users"]["status"] == "ok", "{body}");
    // /health stays public.
    assert_eq!(gw.get("/health").send().await.unwrap().status(), 200);

    // The internal listener: no token needed.
    let res = gw
        .http
        .get(format!("http://{internal}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    stubs.stop().await;
    gw.stop().await;
}
