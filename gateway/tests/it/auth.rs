//! Bearer tokens: every way a token can be wrong is 401 with a challenge; keys come
//! from `users.jwks`, refreshed on unknown key ids but not more often than allowed.

use crate::common::{Gw, Stubs, TestKey, claims, error_code, json_of};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proto_msgs::Role;
use proto_msgs::testing::TestBus;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn bad_tokens_are_401_with_a_challenge() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let gw = Gw::with_key(&bus, &key).await;
    let id = Uuid::new_v4();

    let good = key.token(id, Role::User);
    let parts: Vec<&str> = good.split('.').collect();
    let mut admin_claims = claims(id, Role::Admin, 600);
    admin_claims["iat"] = json!(1);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(admin_claims.to_string()),
        parts[2]
    );
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(id, Role::User, 600),
        &EncodingKey::from_secret(key.x.as_bytes()),
    )
    .unwrap();
    let other_key = TestKey::new("k1").token(id, Role::Admin);
    let mut wrong_aud = claims(id, Role::User, 600);
    wrong_aud["aud"] = json!("another-app");

    let cases = [
        ("expired", Some(key.sign(&claims(id, Role::User, -3600)))),
        ("tampered", Some(tampered)),
        ("alg none", Some(alg_none)),
        ("hs256 with the public key as secret", Some(hs256)),
        ("signed with another key", Some(other_key)),
        ("wrong audience", Some(key.sign(&wrong_aud))),
        ("garbage", Some("not.a.token".to_owned())),
        ("missing", None),
    ];
    for (what, token) in cases {
        let mut req = gw.get("/users/me");
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let (status, body) = json_of(res).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (401, "unauthenticated"),
            "{what}"
        );
        assert!(
            challenge.starts_with("Bearer realm=\"shop\""),
            "{what}: {challenge}"
        );
        if token.is_some() {
            assert!(
                challenge.contains("error=\"invalid_token\""),
                "{what}: {challenge}"
            );
        }
    }
    // Basic auth is not a bearer token.
    let res = gw
        .get("/orders")
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn keys_come_from_user_svc_and_refreshes_are_rate_limited() {
    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &key).await;
    let mut config = Config::for_tests(bus.config());
    config.jwks_refresh_min_interval = Duration::from_secs(3600);
    let gw = Gw::start(config).await;
    let id = Uuid::new_v4();
    let me = |token: String| gw.get("/users/me").bearer_auth(token).send();

    let (status, body) = json_of(me(key.token(id, Role::User)).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["actor"]["id"], json!(id));
    assert_eq!(stubs.jwks_calls.load(Ordering::SeqCst), 1);

    // Cached: no fetch for a known kid.
    for _ in 0..3 {
        assert_eq!(me(key.token(id, Role::User)).await.unwrap().status(), 200);
    }
    // Garbage kids: refused, and user-svc is not asked again within the interval.
    for n in 0..10 {
        let stranger = TestKey::new(&format!("garbage-{n}"));
        assert_eq!(
            me(stranger.token(id, Role::Admin)).await.unwrap().status(),
            401
        );
    }
    assert_eq!(stubs.jwks_calls.load(Ordering::SeqCst), 1);
    gw.stop().await;
    stubs.stop().await;
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_its_first_token() {
    let bus = TestBus::new();
    let old = TestKey::new("k1");
    let stubs = Stubs::start(&bus, &old).await;
    let mut config = Config::for_tests(bus.config());
    config.jwks_refresh_min_interval = Duration::from_millis(1);
    let gw = Gw::start(config).await;
    let id = Uuid::new_v4();
    let me = |token: String| gw.get("/users/me").bearer_auth(token).send();
    // The same token string twice: the second answer comes from the verified cache.
    let old_token = old.token(id, Role::User);
    assert_eq!(me(old_token.clone()).await.unwrap().status(), 200);
    assert_eq!(me(old_token.clone()).await.unwrap().status(), 200);

    let new = TestKey::new("k2");
    *stubs.jwks.lock().unwrap() = new.jwks_value();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, body) = json_of(me(new.token(id, Role::User)).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stubs.jwks_calls.load(Ordering::SeqCst), 2);
    // The old key was retired with the refresh: even the token accepted (and cached)
    // before is refused now.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(me(old_token).await.unwrap().status(), 401);
    gw.stop().await;
    stubs.stop().await;
}

/// Key refresh never blocks a request: with user-svc slow to answer `users.jwks`
/// after the first time, requests with a known key keep being served at once while the
/// background refresh (every second here) and an unknown `kid`'s fetch wait on it.
#[tokio::test]
async fn a_slow_user_svc_does_not_stall_requests_with_a_known_key() {
    use proto_msgs::{CancellationToken, RequestContext, RpcServer};
    use serde_json::Value;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    let bus = TestBus::new();
    let key = TestKey::new("k1");
    let stop = CancellationToken::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let (jwks, counted) = (key.jwks_value(), calls.clone());
    let users = RpcServer::new(bus.config(), "users")
        .method("users.jwks", move |_ctx, _req: Value| {
            let (jwks, n) = (jwks.clone(), counted.fetch_add(1, Ordering::SeqCst));
            async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                Ok(jwks)
            }
        })
        .method("users.revocations", |_ctx, _req: Value| async {
            Ok(json!({"access_ttl_secs": 900, "revoked": []}))
        })
        .start(stop.clone())
        .await
        .unwrap();
    let orders = RpcServer::new(bus.config(), "orders")
        .method(
            "orders.list",
            |_ctx: RequestContext, _req: Value| async move {
                Ok(json!({"orders": [], "next_cursor": null, "has_more": false, "limit": 20}))
            },
        )
        .start(stop.clone())
        .await
        .unwrap();
    let mut config = Config::for_tests(bus.config());
    config.jwks_max_age = Duration::from_secs(1);
    config.jwks_refresh_min_interval = Duration::from_millis(1);
    let gw = Gw::start(config).await;
    let token = key.token(Uuid::new_v4(), Role::User);
    let list = || gw.get("/orders").bearer_auth(&token).send();
    assert_eq!(list().await.unwrap().status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // An unknown kid waits for the (slow) fetch; meanwhile known keys keep working.
    let stranger = TestKey::new("k2").token(Uuid::new_v4(), Role::User);
    let unknown = gw.get("/orders").bearer_auth(stranger).send();
    let unknown = tokio::spawn(unknown);
    let until = Instant::now() + Duration::from_millis(3500);
    let mut slowest = Duration::ZERO;
    while Instant::now() < until {
        let started = Instant::now();
        assert_eq!(list().await.unwrap().status(), 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        calls.load(Ordering::SeqCst) >= 2,
        "the keys were being fetched again meanwhile"
    );
    assert!(
        slowest < Duration::from_millis(1000),
        "a request with a known key waited {slowest:?} for user-svc"
    );
    assert_eq!(unknown.await.unwrap().unwrap().status(), 401);
    gw.stop().await;
    stop.cancel();
    users.stopped().await;
    orders.stopped().await;
}
