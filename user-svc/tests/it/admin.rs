//! Admin bootstrap from `ADMIN_EMAIL` / `ADMIN_PASSWORD`.

use crate::common::{EventWatch, TestApp, actor, eventually};
use proto_msgs::Role;
use proto_msgs::users::{Empty, GetUserRequest, UserProfile, methods};
use sea_orm::{EntityTrait, PaginatorTrait};

async fn count_users(app: &TestApp) -> u64 {
    let conn = crate::common::db(app).await;
    let n = user_svc::db::entities::user::Entity::find()
        .count(&conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n
}

#[tokio::test]
async fn creates_the_admin_once() {
    let mut app = TestApp::spawn().await;
    // Events wait in the outbox until some queue is bound for them, so the watcher
    // binds first, takes Ada's event, and then sees only what the bootstrap causes.
    let mut watch = EventWatch::start(&app.bus, &["user.registered", "user.updated"]).await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let first = watch.next(10).await.expect("Ada's user.registered");
    assert_eq!(first.data["email"], "ada@example.com");
    let conn = crate::common::db(&app).await;
    eventually("an empty outbox", || async {
        (svc_kit::outbox::pending(&conn).await.unwrap() == 0).then_some(())
    })
    .await;
    conn.close().await.unwrap();

    app.restart_with(|c| {
        c.admin_email = Some(" Root@Example.com ".into());
        c.admin_password = Some("admin password".into());
    })
    .await;
    let token = app
        .try_login("root@example.com", "admin password")
        .await
        .unwrap();
    let claims = user_svc::tokens::verify(
        &token.access_token,
        app.issuer(std::time::Duration::from_secs(1)).jwks(),
        "shop-user-svc",
        "shop",
    )
    .unwrap();
    assert_eq!(claims.role, Role::Admin);
    let admin = proto_msgs::Actor {
        id: claims.sub.parse().unwrap(),
        role: Role::Admin,
    };
    let me: UserProfile = app.call(methods::ME, &Empty {}, Some(admin)).await.unwrap();
    assert_eq!(me.user.role, Role::Admin);
    assert_eq!(me.user.email, "root@example.com");
    assert_eq!(me.user.name, "Administrator");

    let ev = watch.next(10).await.expect("user.registered for the admin");
    assert_eq!(ev.event_type, "user.registered");
    assert_eq!(ev.data["user_id"], serde_json::json!(admin.id));
    assert_eq!(ev.data["role"], "admin");

    // It can read other users.
    let seen: UserProfile = app
        .call(methods::GET, &GetUserRequest { id: ada.id }, Some(admin))
        .await
        .unwrap();
    assert_eq!(seen.user, ada);

    // Restarting with the same settings changes nothing and emits nothing.
    app.restart_with(|_| {}).await;
    assert_eq!(count_users(&app).await, 2);
    let again: UserProfile = app.call(methods::ME, &Empty {}, Some(admin)).await.unwrap();
    assert_eq!(again, me);
    watch.assert_quiet(1000).await;
    watch.stop().await;
    app.stop().await;
}

/// What the gateway's tests do: admin settings on the very first start.
#[tokio::test]
async fn creates_the_admin_on_a_fresh_database() {
    let app = TestApp::spawn_with(|_, c| {
        c.admin_email = Some("root@example.com".into());
        c.admin_password = Some("admin password".into());
    })
    .await;
    let token = app
        .try_login("root@example.com", "admin password")
        .await
        .unwrap();
    let claims = user_svc::tokens::verify(
        &token.access_token,
        app.issuer(std::time::Duration::from_secs(1)).jwks(),
        "shop-user-svc",
        "shop",
    )
    .unwrap();
    assert_eq!(claims.role, Role::Admin);
    assert_eq!(count_users(&app).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn promotes_an_existing_user() {
    let mut app = TestApp::spawn().await;
    let mut watch = EventWatch::start(&app.bus, &["user.registered", "user.updated"]).await;
    let ada = app.register("ada@example.com", "ada password", "Ada").await;
    let ev = watch.next(10).await.expect("user.registered");
    assert_eq!(ev.event_type, "user.registered");
    assert_eq!(ev.data["role"], "user");
    // ADMIN_PASSWORD must be the account's own password to promote it.
    app.restart_with(|c| {
        c.admin_email = Some("ADA@example.com".into());
        c.admin_password = Some("ada password".into());
    })
    .await;

    let me: UserProfile = app.call(methods::ME, &Empty {}, actor(&ada)).await.unwrap();
    assert_eq!(me.user.role, Role::Admin);
    assert_eq!(me.user.id, ada.id);
    assert!(
        app.try_login("ada@example.com", "ada password")
            .await
            .is_ok()
    );

    let ev = watch
        .next(10)
        .await
        .expect("user.updated for the promotion");
    assert_eq!(ev.event_type, "user.updated");
    assert_eq!(ev.data["user_id"], serde_json::json!(ada.id));
    assert_eq!(ev.data["role"], "admin");

    app.restart_with(|_| {}).await;
    watch.assert_quiet(1000).await;
    assert_eq!(count_users(&app).await, 1);
    watch.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn an_account_registered_by_someone_else_is_not_promoted() {
    let app = TestApp::spawn().await;
    let mallory = app
        .register("boss@example.com", "mallory's password", "Mallory")
        .await;
    // A second instance configured with that email as admin, but another password.
    let mut config = app.svc.config.clone();
    config.admin_email = Some("boss@example.com".into());
    config.admin_password = Some("the real admin password".into());
    let err = user_svc::start(config, proto_msgs::CancellationToken::new())
        .await
        .err()
        .expect("start-up refuses to promote an account whose password differs");
    assert!(err.to_string().contains("ADMIN_EMAIL"), "{err}");
    let me: UserProfile = app
        .call(methods::ME, &Empty {}, actor(&mallory))
        .await
        .unwrap();
    assert_eq!(me.user.role, Role::User, "still a plain user");
    app.stop().await;
}

#[tokio::test]
async fn bad_admin_settings_stop_start_up() {
    let bus = proto_msgs::testing::TestBus::new();
    let db = svc_kit::testing::TestDb::new().await;
    let mut config = user_svc::Config::for_tests(bus.config(), &db.url);
    config.admin_email = Some("root@example.com".into());
    config.admin_password = Some("short".into());
    let err = user_svc::start(config.clone(), proto_msgs::CancellationToken::new())
        .await
        .err()
        .expect("start-up fails");
    assert!(err.to_string().contains("ADMIN_PASSWORD"), "{err}");
    config.admin_email = Some("not an email".into());
    config.admin_password = Some("long enough".into());
    let err = user_svc::start(config, proto_msgs::CancellationToken::new())
        .await
        .err()
        .expect("start-up fails");
    assert!(err.to_string().contains("ADMIN_EMAIL"), "{err}");
}
