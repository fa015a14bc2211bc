//! users.register and users.update with their reply lost right after the commit
//! (svc-kit's `ReplyFault`): redelivered, or retried with the same key, they answer the
//! original result (marked as replayed) instead of `already_exists` / `permission_denied`,
//! and the effect happened once. And `known_orders` rows that can't change any more
//! are pruned after the window.

use crate::common::*;
use proto_msgs::rpc::ReplyFault;
use proto_msgs::rpc::client::decode_reply;
use proto_msgs::users::{User, UserProfile, methods};
use proto_msgs::{ErrorCode, RequestContext};
use sea_orm::ConnectionTrait;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

async fn lost_once<T: DeserializeOwned>(
    app: &TestApp,
    fault: &ReplyFault,
    method: &str,
    body: Value,
    ctx: RequestContext,
    redeliver: bool,
) -> T {
    fault.arm(1);
    let payload = serde_json::to_vec(&body).unwrap();
    let reply = if redeliver {
        app.client.call_reply(method, payload, &ctx).await.unwrap()
    } else {
        let key = format!("key-{}", uuid::Uuid::new_v4());
        let mut first = ctx.clone().with_idempotency_key(key.clone());
        first.deadline = Some(SystemTime::now() + Duration::from_secs(2));
        let lost = app.client.call_reply(method, payload.clone(), &first).await;
        assert_eq!(lost.unwrap_err().code, ErrorCode::DeadlineExceeded);
        let mut retry = ctx.with_idempotency_key(key);
        retry.deadline = None;
        app.client
            .call_reply(method, payload, &retry)
            .await
            .unwrap()
    };
    assert_eq!(fault.remaining(), 0, "{method}: the fault fired");
    assert!(reply.replayed, "{method}: answered from the stored reply");
    decode_reply(&reply.body).unwrap_or_else(|e| panic!("{method}: {e:?}"))
}

async fn register_and_update_once(redeliver: bool) {
    let make = |m: &str| {
        if redeliver {
            ReplyFault::redeliver(m, 0)
        } else {
            ReplyFault::lose(m, 0)
        }
    };
    let (register, update) = (make(methods::REGISTER), make(methods::UPDATE));
    let faults = vec![register.clone(), update.clone()];
    let app = TestApp::spawn_with(|_, c| c.service.reply_faults = faults).await;

    let user: User = lost_once(
        &app,
        &register,
        methods::REGISTER,
        json!({"email": "once@example.com", "password": "first-password", "name": "Once"}),
        RequestContext::new(),
        redeliver,
    )
    .await;
    assert_eq!(user.email, "once@example.com");
    let accounts = db(&app)
        .await
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM users WHERE email = 'once@example.com'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(accounts, 1);

    // A password change whose reply was lost: the retry would fail the (now stale)
    // current-password check if it ran again.
    let me = RequestContext::new().with_actor(actor(&user).unwrap());
    let profile: UserProfile = lost_once(
        &app,
        &update,
        methods::UPDATE,
        json!({"password": "second-password", "current_password": "first-password", "name": "Twice"}),
        me,
        redeliver,
    )
    .await;
    assert_eq!(profile.user.name, "Twice");
    app.try_login("once@example.com", "second-password")
        .await
        .unwrap();
    assert!(
        app.try_login("once@example.com", "first-password")
            .await
            .is_err()
    );
    app.stop().await;
}

#[tokio::test]
async fn redelivered_register_and_update_answer_their_stored_replies() {
    register_and_update_once(true).await;
}

#[tokio::test]
async fn retried_register_and_update_answer_their_stored_replies() {
    register_and_update_once(false).await;
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    let keyed = RequestContext::new().with_idempotency_key("reg-1");
    let body = |email: &str| json!({"email": email, "password": "long-enough", "name": "K"});
    let first: User = app
        .client
        .call(methods::REGISTER, &body("k1@example.com"), &keyed)
        .await
        .unwrap();
    let again: User = app
        .client
        .call(methods::REGISTER, &body("k1@example.com"), &keyed)
        .await
        .unwrap();
    assert_eq!(again, first);
    let err = app
        .client
        .call::<_, User>(methods::REGISTER, &body("k2@example.com"), &keyed)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::FailedPrecondition, "{err:?}");

    let me = RequestContext::new()
        .with_actor(actor(&first).unwrap())
        .with_idempotency_key("upd-1");
    app.client
        .call::<_, UserProfile>(methods::UPDATE, &json!({"name": "A"}), &me)
        .await
        .unwrap();
    let err = app
        .client
        .call::<_, UserProfile>(methods::UPDATE, &json!({"name": "B"}), &me)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::FailedPrecondition, "{err:?}");
    app.stop().await;
}

#[tokio::test]
async fn finished_known_orders_are_pruned_after_the_window() {
    let app = TestApp::spawn().await;
    let conn = db(&app).await;
    // Old and finished (cancelled after being counted): goes. Old but still waiting for
    // its other event, or not cancelled: stays.
    conn.execute_unprepared(
        "INSERT INTO known_orders (order_id, user_id, total_minor, cancelled, counted, updated_at) VALUES
           (gen_random_uuid(), gen_random_uuid(), 100, true, true, now() - interval '2 days'),
           (gen_random_uuid(), gen_random_uuid(), 100, true, false, now() - interval '2 days'),
           (gen_random_uuid(), gen_random_uuid(), 100, false, true, now() - interval '2 days'),
           (gen_random_uuid(), gen_random_uuid(), 100, true, true, now())",
    )
    .await
    .unwrap();
    let count = || async {
        conn.query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM known_orders",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
    };
    eventually("the finished old row is pruned", || async {
        (count().await == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count().await, 3, "the others stay");
    app.stop().await;
}

/// A refresh whose reply was lost is not taken for reuse of a spent token: redelivered
/// or retried with its key, it answers new tokens of the same session (replayed), and
/// the session lives on; the tokens the lost reply carried are spent.
async fn refresh_once(redeliver: bool) {
    use proto_msgs::users::TokenResponse;
    let fault = if redeliver {
        ReplyFault::redeliver(methods::REFRESH, 0)
    } else {
        ReplyFault::lose(methods::REFRESH, 0)
    };
    let faults = vec![fault.clone()];
    let app = TestApp::spawn_with(|_, c| c.service.reply_faults = faults).await;
    app.register("fresh@example.com", "password123", "Fresh")
        .await;
    let login = app
        .try_login("fresh@example.com", "password123")
        .await
        .unwrap();
    let body = json!({"refresh_token": login.refresh_token.expose()});
    let renewed: TokenResponse = lost_once(
        &app,
        &fault,
        methods::REFRESH,
        body,
        RequestContext::new(),
        redeliver,
    )
    .await;
    // The session was rotated, not revoked: the renewed refresh token works.
    let next: TokenResponse = app
        .call(
            methods::REFRESH,
            &json!({"refresh_token": renewed.refresh_token.expose()}),
            None,
        )
        .await
        .expect("the session survived the lost reply");
    assert_ne!(next.refresh_token.expose(), renewed.refresh_token.expose());
    let sessions = db(&app)
        .await
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM sessions WHERE revoked_at IS NULL",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(sessions, 1, "one live session");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_refresh_rotates_once_and_keeps_the_session() {
    refresh_once(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_refresh_rotates_once_and_keeps_the_session() {
    refresh_once(false).await;
}

/// logout, logout_all and admin_update with their reply lost after the commit: the
/// retry answers what the first run did (1 session ended, the demoted profile), not
/// what running again would say (0 sessions, nothing to change), and the sessions
/// ended once (one `user.sessions_revoked` per change).
async fn session_changes_once(redeliver: bool) {
    use proto_msgs::users::LogoutResponse;
    let make = |m: &str| {
        if redeliver {
            ReplyFault::redeliver(m, 0)
        } else {
            ReplyFault::lose(m, 0)
        }
    };
    let (logout, logout_all, admin_update) = (
        make(methods::LOGOUT),
        make(methods::LOGOUT_ALL),
        make(methods::ADMIN_UPDATE),
    );
    let faults = vec![logout.clone(), logout_all.clone(), admin_update.clone()];
    let app = TestApp::spawn_with(|_, c| c.service.reply_faults = faults).await;
    let mut watch = EventWatch::start(
        &app.bus,
        &[proto_msgs::events::types::USER_SESSIONS_REVOKED],
    )
    .await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let first = app
        .try_login("ada@example.com", "password123")
        .await
        .unwrap();
    let _second = app
        .try_login("ada@example.com", "password123")
        .await
        .unwrap();
    let me = RequestContext::new().with_actor(actor(&ada).unwrap());

    let out: LogoutResponse = lost_once(
        &app,
        &logout,
        methods::LOGOUT,
        json!({"refresh_token": first.refresh_token.expose()}),
        RequestContext::new(),
        redeliver,
    )
    .await;
    assert_eq!(
        out.revoked_sessions, 1,
        "the stored reply, not a second run's 0"
    );

    let all: LogoutResponse = lost_once(
        &app,
        &logout_all,
        methods::LOGOUT_ALL,
        json!({}),
        me,
        redeliver,
    )
    .await;
    assert_eq!(all.revoked_sessions, 1, "the second session, once");

    let root = uuid::Uuid::new_v4();
    let admin = RequestContext::new().with_actor(admin_actor(root).unwrap());
    let promoted: UserProfile = lost_once(
        &app,
        &admin_update,
        methods::ADMIN_UPDATE,
        json!({"id": ada.id, "role": "admin"}),
        admin,
        redeliver,
    )
    .await;
    assert_eq!(promoted.user.role, proto_msgs::Role::Admin);
    // Each change ended sessions once: three revocations, and no fourth.
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let event = watch.next(10).await.expect("a revocation per change");
        reasons.push(event.data["reason"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(reasons, ["logout", "logout_all", "role_changed"]);
    watch.assert_quiet(1000).await;
    watch.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_session_changes_answer_their_stored_replies() {
    session_changes_once(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_session_changes_answer_their_stored_replies() {
    session_changes_once(false).await;
}
