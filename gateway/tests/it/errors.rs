//! Every error, the framework's own included, in the one shape with the right status.

use crate::common::{Gw, Stubs, TestKey, error_code, fail_ids, json_of};
use gateway::Config;
use proto_msgs::Role;
use proto_msgs::testing::TestBus;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test]
async fn framework_errors_use_the_error_shape() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let token = key.token(Uuid::new_v4(), Role::User);

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "bad JSON",
            gw.post("/users/register")
                .header("content-type", "application/json")
                .body("{\"email\": "),
            400,
            "invalid_argument",
        ),
        (
            "missing field",
            gw.post("/users/register").json(&json!({"email": "a@b.c"})),
            400,
            "invalid_argument",
        ),
        (
            "wrong type",
            gw.patch(&format!("/orders/{}/status", uuid::Uuid::new_v4()))
                .bearer_auth(&token)
                .json(&json!({"status": 5})),
            400,
            "invalid_argument",
        ),
        (
            "wrong content type",
            gw.post("/users/login")
                .header("content-type", "text/plain")
                .body("{\"email\": \"a@b.c\", \"password\": \"x\"}"),
            415,
            "invalid_argument",
        ),
        (
            "no content type",
            gw.post("/users/login").body("{}"),
            415,
            "invalid_argument",
        ),
        (
            "too large",
            gw.post("/users/register")
                .json(&json!({"email": "a@b.c", "password": "x", "name": "n".repeat(70_000)})),
            413,
            "invalid_argument",
        ),
        ("unknown route", gw.get("/nope/nothing"), 404, "not_found"),
        ("wrong method", gw.get("/users/login"), 405, "unimplemented"),
        (
            "wrong method on a protected route",
            gw.http.delete(gw.url("/users/me")).bearer_auth(&token),
            405,
            "unimplemented",
        ),
        (
            "bad path id",
            gw.get("/orders/not-a-uuid").bearer_auth(&token),
            400,
            "invalid_argument",
        ),
        (
            "bad query",
            gw.get("/orders?limit=many").bearer_auth(&token),
            400,
            "invalid_argument",
        ),
        (
            "unknown status",
            gw.get("/orders?status=LOST").bearer_auth(&token),
            400,
            "invalid_argument",
        ),
        (
            "unknown status in body",
            gw.patch(&format!("/orders/{}/status", Uuid::new_v4()))
                .bearer_auth(&token)
                .json(&json!({"status": "LOST"})),
            400,
            "invalid_argument",
        ),
        (
            "bad idempotency key",
            gw.post("/orders")
                .bearer_auth(&token)
                .header("Idempotency-Key", "x".repeat(300))
                .json(&json!({"items": []})),
            400,
            "invalid_argument",
        ),
    ];
    for (what, req, status, code) in cases {
        let res = req.header("X-Request-Id", "err-case").send().await.unwrap();
        assert_eq!(res.headers()["content-type"], "application/json", "{what}");
        let (got, body) = json_of(res).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(error_code(&body), code, "{what}: {body}");
        assert_eq!(body["request_id"], "err-case", "{what}");
    }
    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn service_errors_map_to_statuses_and_internals_stay_inside() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let token = key.token(Uuid::new_v4(), Role::User);
    for (id, status, code) in [
        (fail_ids::NOT_FOUND, 404, "not_found"),
        (fail_ids::CONFLICT, 409, "failed_precondition"),
        (fail_ids::FORBIDDEN, 403, "permission_denied"),
        (fail_ids::INTERNAL, 500, "internal"),
    ] {
        let (got, body) = json_of(
            gw.get(&format!("/orders/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((got, error_code(&body).as_str()), (status, code), "{body}");
        if code == "failed_precondition" {
            assert_eq!(body["error"]["details"], json!({"from": "DELIVERED"}));
        }
        if code == "internal" {
            let text = body.to_string();
            assert!(
                !text.contains("10.1.2.3") && !text.contains("password"),
                "{text}"
            );
        }
    }
    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn nobody_consuming_is_503_fast() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let mut config = Gw::config(&bus, &key);
    config.rpc_timeout = Duration::from_secs(20);
    let gw = Gw::start(config).await;
    let started = Instant::now();
    let (status, body) = json_of(
        gw.post("/users/register")
            .json(&json!({"email": "a@b.c", "password": "secret123", "name": "A"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body).as_str()), (503, "unavailable"));
    let (status, _) = json_of(
        gw.get("/orders")
            .bearer_auth(key.token(Uuid::new_v4(), Role::User))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503);
    // Well under the 20 s deadline: the broker returned the unroutable request.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    gw.stop().await;
}

#[tokio::test]
async fn keys_unknown_and_user_svc_down_is_503_not_401() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let gw = Gw::start(Config::for_tests(bus.config())).await;
    let (status, body) = json_of(
        gw.get("/users/me")
            .bearer_auth(key.token(Uuid::new_v4(), Role::User))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (503, "unavailable"),
        "{body}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_service_that_does_not_answer_in_time_is_504() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start_with(&bus, &key, Duration::from_secs(3)).await;
    let mut config = Gw::config(&bus, &key);
    config.rpc_timeout = Duration::from_millis(300);
    let gw = Gw::start(config).await;
    let (status, body) = json_of(
        gw.post("/users/login")
            .json(&json!({"email": "a@b.c", "password": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (504, "deadline_exceeded"),
        "{body}"
    );
    gw.stop().await;
    stubs.stop().await;
}
