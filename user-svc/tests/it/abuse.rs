//! Abuse that costs the attacker, not us: per-account throttling of password guesses,
//! bcrypt skipped past the deadline, and cheap methods that never wait behind bcrypt.

use crate::common::{TestApp, actor, db, eventually};
use proto_msgs::rpc::MetricsText;
use proto_msgs::users::{Empty, UpdateUserRequest, UserProfile, methods};
use proto_msgs::{ErrorCode, RequestContext, RpcError};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use user_svc::config::{LaneSize, Policy};

/// Three free attempts, then a minute's lock: long enough that no test outruns it.
const POLICY: Policy = Policy {
    free_failures: 3,
    base: Duration::from_secs(60),
    max: Duration::from_secs(600),
};

async fn throttled_app() -> TestApp {
    TestApp::spawn_with(|_, c| c.throttle = POLICY).await
}

/// The value of the first series starting with `series` (name and first labels).
async fn metric(app: &TestApp, series: &str) -> f64 {
    let m: MetricsText = app.call(methods::METRICS, &json!({}), None).await.unwrap();
    m.text
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{}", m.text))
}

const HASHES: &str = "password_hashes_total{";

fn assert_throttled(err: &RpcError) -> u64 {
    assert_eq!(err.code, ErrorCode::ResourceExhausted, "{err:?}");
    assert!(
        err.message
            .starts_with("too many failed password attempts for this account"),
        "{}",
        err.message
    );
    let retry = err.retry_after_s().expect("retry_after_s in details");
    assert!((1..=60).contains(&retry), "{retry}");
    retry
}

#[tokio::test]
async fn failed_logins_lock_the_account_the_same_whether_it_exists_or_not() {
    let app = throttled_app().await;
    app.register("ada@example.com", "correct horse", "Ada")
        .await;
    for email in ["ada@example.com", "nobody@example.com"] {
        for _ in 0..POLICY.free_failures {
            let err = app.try_login(email, "wrong horse").await.unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthenticated, "{email}");
        }
        let hashes = metric(&app, HASHES).await;
        // Locked now: even the right password is not checked, and bcrypt does not run.
        let err = app.try_login(email, "correct horse").await.unwrap_err();
        assert_throttled(&err);
        // Another spelling of the same email is the same account.
        let err = app
            .try_login(&format!("  {} ", email.to_uppercase()), "x")
            .await
            .unwrap_err();
        assert_throttled(&err);
        assert_eq!(metric(&app, HASHES).await, hashes, "{email}: bcrypt ran");
    }
    assert_eq!(
        metric(&app, r#"password_attempts_throttled_total{scope="login""#).await,
        4.0
    );
    // Other accounts are not affected.
    app.register("bob@example.com", "password123", "Bob").await;
    app.try_login("bob@example.com", "password123")
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_success_resets_the_count() {
    let app = throttled_app().await;
    app.register("ada@example.com", "correct horse", "Ada")
        .await;
    for _ in 0..POLICY.free_failures - 1 {
        app.try_login("ada@example.com", "wrong").await.unwrap_err();
    }
    app.try_login("ada@example.com", "correct horse")
        .await
        .unwrap();
    // Counted from zero again: all the free attempts, then the lock.
    for _ in 0..POLICY.free_failures {
        let err = app.try_login("ada@example.com", "wrong").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthenticated);
    }
    let err = app
        .try_login("ada@example.com", "correct horse")
        .await
        .unwrap_err();
    assert_throttled(&err);
    app.stop().await;
}

#[tokio::test]
async fn current_password_guesses_are_throttled_per_account() {
    let app = throttled_app().await;
    let ada = app
        .register("ada@example.com", "correct horse", "Ada")
        .await;
    let change = |current: &str| -> UpdateUserRequest {
        serde_json::from_value(json!({"password": "new password 1", "current_password": current}))
            .unwrap()
    };
    for _ in 0..POLICY.free_failures {
        let err = app
            .call::<_, UserProfile>(methods::UPDATE, &change("guess"), actor(&ada))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PermissionDenied);
    }
    let err = app
        .call::<_, UserProfile>(methods::UPDATE, &change("correct horse"), actor(&ada))
        .await
        .unwrap_err();
    assert_throttled(&err);
    // A name change needs no password and is not throttled; logins have their own count.
    let renamed: UserProfile = app
        .call(methods::UPDATE, &json!({"name": "Ada L."}), actor(&ada))
        .await
        .unwrap();
    assert_eq!(renamed.user.name, "Ada L.");
    app.try_login("ada@example.com", "correct horse")
        .await
        .unwrap();
    assert_eq!(
        metric(
            &app,
            r#"password_attempts_throttled_total{scope="current_password""#
        )
        .await,
        1.0
    );
    app.stop().await;
}

/// Cost 12 with one bcrypt slot: a verification takes a good part of a second here.
fn slow_lane(queue: usize) -> impl FnOnce(&proto_msgs::testing::TestBus, &mut user_svc::Config) {
    move |_, c| {
        c.bcrypt_cost = 12;
        c.bcrypt_lane = LaneSize {
            concurrency: 1,
            queue,
        };
    }
}

#[tokio::test]
async fn a_request_whose_deadline_passes_in_the_lane_is_not_hashed() {
    let app = Arc::new(TestApp::spawn_with(slow_lane(4)).await);
    // The first login takes the only slot...
    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.try_login("first@example.com", "password").await })
    };
    eventually("the first login to start hashing", || async {
        (metric(&app, HASHES).await >= 1.0).then_some(())
    })
    .await;
    // ...so this one, with 100 ms to live, waits behind it and gives up.
    let mut ctx = RequestContext::new();
    ctx.deadline = Some(SystemTime::now() + Duration::from_millis(100));
    let req = json!({"email": "second@example.com", "password": "password"});
    let err = app
        .client
        .call::<_, serde_json::Value>(methods::LOGIN, &req, &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::DeadlineExceeded);
    eventually("the skipped hash to be counted", || async {
        (metric(&app, r#"password_hashes_skipped_total{reason="deadline""#).await >= 1.0)
            .then_some(())
    })
    .await;
    let err = first.await.unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    // One bcrypt ran: the first login's. The second was answered without one.
    assert_eq!(metric(&app, HASHES).await, 1.0);
    let Ok(app) = Arc::try_unwrap(app) else {
        panic!("the app is still shared")
    };
    app.stop().await;
}

/// More logins than the prefetch keep the lane full; `users.me` still answers (before
/// the lane, it waited behind bcrypt until its deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_me_answers_while_a_login_flood_fills_the_lane() {
    let app = Arc::new(TestApp::spawn_with(slow_lane(2)).await);
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..40)
        .map(|_| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    // A fresh email each time: the per-account throttle stays out of it.
                    let email = format!("{}@example.com", uuid::Uuid::new_v4());
                    if let Err(e) = app.try_login(&email, "password").await
                        && e.code == ErrorCode::ResourceExhausted
                    {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            })
        })
        .collect();
    let busy = r#"password_hashes_skipped_total{reason="busy""#;
    eventually("the lane to be full", || async {
        (metric(&app, busy).await >= 1.0).then_some(())
    })
    .await;
    let refused_before = metric(&app, busy).await;
    for _ in 0..10 {
        let me: UserProfile = app
            .call(methods::ME, &Empty {}, actor(&ada))
            .await
            .expect("users.me answers during the flood");
        assert_eq!(me.user.id, ada.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The flood was still being refused meanwhile: the lane stayed full.
    assert!(metric(&app, busy).await > refused_before);
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await.unwrap();
    }
    let Ok(app) = Arc::try_unwrap(app) else {
        panic!("the app is still shared")
    };
    app.stop().await;
}

/// Streaks nobody continued are deleted now and then (the first attempt of an instance
/// prunes), so emails tried once do not pile up; a locked one stays.
#[tokio::test]
async fn forgotten_streaks_are_pruned() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
    use user_svc::db::entities::password_throttle;
    let app = throttled_app().await;
    let conn = db(&app).await;
    let long_ago = chrono::Utc::now() - POLICY.forget_after() - chrono::Duration::minutes(1);
    for (key, locked_until) in [
        (vec![1u8; 32], None),
        (
            vec![2u8; 32],
            Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        ),
    ] {
        password_throttle::ActiveModel {
            key: Set(key),
            failures: Set(2),
            last_attempt_at: Set(long_ago),
            locked_until: Set(locked_until),
        }
        .insert(&conn)
        .await
        .unwrap();
    }
    app.try_login("ada@example.com", "password")
        .await
        .unwrap_err();
    eventually("the quiet row to be pruned", || async {
        password_throttle::Entity::find_by_id(vec![1u8; 32])
            .one(&conn)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        password_throttle::Entity::find_by_id(vec![2u8; 32])
            .one(&conn)
            .await
            .unwrap()
            .is_some()
    );
    let _ = conn.close().await;
    app.stop().await;
}
