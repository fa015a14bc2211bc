//! 429 with `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy` headers.

use crate::common::{Gw, Stubs, TestKey, error_code, json_of, sample};
use gateway::RateLimits;
use proto_msgs::Role;
use proto_msgs::testing::TestBus;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn tiny_limits_give_429_with_headers() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let mut config = Gw::config(&bus, &key);
    config.rate_limits = RateLimits {
        auth_per_min: 2,
        anon_per_min: 3,
        user_per_min: 3,
    };
    let gw = Gw::start(config).await;

    let login = || {
        gw.post("/users/login")
            .json(&json!({"email": "a@b.c", "password": "x"}))
    };
    let first = login().send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["ratelimit-policy"], "\"auth\";q=2;w=60");
    assert_eq!(first.headers()["ratelimit"], "\"auth\";r=1;t=30");
    assert_eq!(login().send().await.unwrap().status(), 200);
    let refused = login().send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(refused.headers()["ratelimit-policy"], "\"auth\";q=2;w=60");
    assert_eq!(
        refused.headers()["ratelimit"].to_str().unwrap(),
        format!("\"auth\";r=0;t={retry}")
    );
    let (_, body) = json_of(refused).await;
    assert_eq!(error_code(&body), "resource_exhausted");
    assert_eq!(body["error"]["details"]["policy"], "auth");

    // Per user: another user still passes.
    let alice = key.token(Uuid::new_v4(), Role::User);
    for expected in [200, 200, 200, 429] {
        let res = gw
            .get("/users/me")
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected);
        assert!(
            res.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with("\"user\"")
        );
    }
    let bob = key.token(Uuid::new_v4(), Role::User);
    assert_eq!(
        gw.get("/users/me")
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Anonymous routes per IP (liveness is never limited).
    for _ in 0..3 {
        assert_eq!(gw.get("/openapi.json").send().await.unwrap().status(), 200);
    }
    assert_eq!(gw.get("/openapi.json").send().await.unwrap().status(), 429);
    assert_eq!(gw.get("/health").send().await.unwrap().status(), 200);
    // Bad tokens are charged to the IP too: this one's budget is spent.
    assert_eq!(
        gw.get("/users/me")
            .bearer_auth("junk")
            .send()
            .await
            .unwrap()
            .status(),
        429
    );

    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn refusals_are_counted() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let mut config = Gw::config(&bus, &key);
    config.rate_limits.auth_per_min = 1;
    let gw = Gw::start(config).await;
    for _ in 0..3 {
        gw.post("/users/register")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
    }
    let text = gw.metrics().await;
    assert_eq!(
        sample(&text, &["rate_limited_total", "policy=\"auth\""]),
        Some(2.0)
    );
    gw.stop().await;
}
