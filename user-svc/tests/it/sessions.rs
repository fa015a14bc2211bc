//! Sessions over the bus: refresh rotation, reuse detection, logout, logout
//! everywhere, and revocation on password change, role change and disabling, each
//! announced as `user.sessions_revoked` and reflected in `users.revocations`.

use crate::common::{EventWatch, TestApp, actor, admin_actor};
use proto_msgs::events::types;
use proto_msgs::users::{
    AccountChange, AdminUpdateRequest, Claims, Empty, LogoutResponse, RefreshRequest, Revocations,
    TokenResponse, UserProfile, methods,
};
use proto_msgs::{Actor, ErrorCode, Role, RpcError};
use serde_json::json;
use std::time::Duration;

const PASSWORD: &str = "correct horse";

fn claims(app: &TestApp, token: &TokenResponse) -> Claims {
    user_svc::tokens::verify(
        &token.access_token,
        app.issuer(Duration::from_secs(1)).jwks(),
        "shop-user-svc",
        "shop",
    )
    .unwrap()
}

async fn refresh(app: &TestApp, token: &TokenResponse) -> Result<TokenResponse, RpcError> {
    let req = RefreshRequest {
        refresh_token: token.refresh_token.clone(),
    };
    app.call(methods::REFRESH, &req, None).await
}

async fn revocations(app: &TestApp) -> Revocations {
    app.call(methods::REVOCATIONS, &Empty {}, None)
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_rotates_within_the_session() {
    let app = TestApp::spawn().await;
    let user = app.register("ada@example.com", PASSWORD, "Ada").await;
    let first = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    let c1 = claims(&app, &first);
    assert_eq!(c1.sub, user.id.to_string());
    assert_eq!(first.refresh_expires_in, 14 * 86_400);

    let second = refresh(&app, &first).await.unwrap();
    let c2 = claims(&app, &second);
    assert_eq!(c2.sid, c1.sid, "same session");
    assert_ne!(second.refresh_token.expose(), first.refresh_token.expose());
    let third = refresh(&app, &second).await.unwrap();
    assert_eq!(claims(&app, &third).sid, c1.sid);

    // A second login is another session.
    let other = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    assert_ne!(claims(&app, &other).sid, c1.sid);

    // Garbage and well-formed unknown tokens alike: refused.
    let err = app
        .call::<_, TokenResponse>(methods::REFRESH, &json!({"refresh_token": "nope"}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    let forged = json!({"refresh_token": "A".repeat(proto_msgs::users::REFRESH_TOKEN_LEN)});
    let err = app
        .call::<_, TokenResponse>(methods::REFRESH, &forged, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let mut watch = EventWatch::start(&app.bus, &[types::USER_SESSIONS_REVOKED]).await;
    let user = app.register("ada@example.com", PASSWORD, "Ada").await;
    let stolen = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    let sid = claims(&app, &stolen).sid;
    let newest = refresh(&app, &stolen).await.unwrap();

    // The thief replays the old token: refused, and the session is over.
    let err = refresh(&app, &stolen).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    // The newest token of the family no longer works either.
    let err = refresh(&app, &newest).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);

    let ev = watch.next(10).await.expect("user.sessions_revoked");
    assert_eq!(ev.data["user_id"], json!(user.id));
    assert_eq!(ev.data["sid"], json!(sid));
    assert_eq!(ev.data["reason"], "refresh_reuse");
    let snapshot = revocations(&app).await;
    assert_eq!(snapshot.access_ttl_secs, 900);
    assert!(snapshot.revoked.iter().any(|r| r.sid == Some(sid)));
    watch.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn logout_ends_one_session_and_logout_all_every_one() {
    let app = TestApp::spawn().await;
    let mut watch = EventWatch::start(&app.bus, &[types::USER_SESSIONS_REVOKED]).await;
    let user = app.register("ada@example.com", PASSWORD, "Ada").await;
    let a = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    let b = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    let c = app.try_login("ada@example.com", PASSWORD).await.unwrap();

    let req = RefreshRequest {
        refresh_token: a.refresh_token.clone(),
    };
    let out: LogoutResponse = app.call(methods::LOGOUT, &req, None).await.unwrap();
    assert_eq!(out.revoked_sessions, 1);
    let ev = watch.next(10).await.expect("logout event");
    assert_eq!(ev.data["sid"], json!(claims(&app, &a).sid));
    assert_eq!(ev.data["reason"], "logout");
    assert_eq!(
        refresh(&app, &a).await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );
    // Twice is not an error; the other sessions still refresh.
    let again: LogoutResponse = app.call(methods::LOGOUT, &req, None).await.unwrap();
    assert_eq!(again.revoked_sessions, 0);
    let b = refresh(&app, &b).await.unwrap();

    let all: LogoutResponse = app
        .call(methods::LOGOUT_ALL, &Empty {}, actor(&user))
        .await
        .unwrap();
    assert_eq!(all.revoked_sessions, 2);
    let ev = watch.next(10).await.expect("logout_all event");
    assert_eq!(ev.data["sid"], json!(null));
    assert_eq!(ev.data["reason"], "logout_all");
    let not_before = ev.data["not_before"].as_i64().unwrap();
    assert!(
        not_before > claims(&app, &b).iat,
        "older tokens are refused"
    );
    for t in [&b, &c] {
        assert_eq!(
            refresh(&app, t).await.unwrap_err().code,
            ErrorCode::Unauthenticated
        );
    }
    // A login right afterwards is not caught by the revocation.
    let fresh = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    assert!(claims(&app, &fresh).iat >= not_before);
    assert!(refresh(&app, &fresh).await.is_ok());
    // A second revocation at once (likely the same second) still covers it.
    let _: LogoutResponse = app
        .call(methods::LOGOUT_ALL, &Empty {}, actor(&user))
        .await
        .unwrap();
    let ev = watch.next(10).await.expect("second logout_all event");
    let second = ev.data["not_before"].as_i64().unwrap();
    assert!(second > claims(&app, &fresh).iat, "{second}");
    let snapshot = revocations(&app).await;
    assert!(
        snapshot
            .revoked
            .iter()
            .any(|r| r.user_id == user.id && r.sid.is_none() && r.not_before == second)
    );
    // Without an actor: refused.
    let err = app
        .call::<_, LogoutResponse>(methods::LOGOUT_ALL, &Empty {}, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    watch.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_new_password_revokes_every_session() {
    let app = TestApp::spawn().await;
    let mut watch = EventWatch::start(&app.bus, &[types::USER_SESSIONS_REVOKED]).await;
    let user = app.register("ada@example.com", PASSWORD, "Ada").await;
    let t = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    // A name change revokes nothing.
    let _: UserProfile = app
        .call(methods::UPDATE, &json!({"name": "Ada L"}), actor(&user))
        .await
        .unwrap();
    let _: UserProfile = app
        .call(
            methods::UPDATE,
            &json!({"password": "new password 1", "current_password": PASSWORD}),
            actor(&user),
        )
        .await
        .unwrap();
    let ev = watch.next(10).await.expect("event");
    assert_eq!(ev.data["reason"], "password_changed");
    assert_eq!(ev.data["user_id"], json!(user.id));
    assert_eq!(
        refresh(&app, &t).await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );
    watch.assert_quiet(300).await;
    watch.stop().await;
    app.stop().await;
}

fn change(id: uuid::Uuid, role: Option<Role>, disabled: Option<bool>) -> AdminUpdateRequest {
    AdminUpdateRequest {
        id,
        change: AccountChange { role, disabled },
    }
}

#[tokio::test]
async fn admins_change_roles_and_disable_accounts_and_sessions_end() {
    let app = TestApp::spawn().await;
    let mut watch = EventWatch::start(&app.bus, &[types::USER_SESSIONS_REVOKED]).await;
    let root = uuid::Uuid::new_v4();
    let bob = app.register("bob@example.com", PASSWORD, "Bob").await;
    let t = app.try_login("bob@example.com", PASSWORD).await.unwrap();
    assert_eq!(claims(&app, &t).role, Role::User);

    // Only an admin may.
    let err = app
        .call::<_, UserProfile>(
            methods::ADMIN_UPDATE,
            &change(bob.id, Some(Role::Admin), None),
            actor(&bob),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied);

    // Promotion: sessions end; a new login carries the new role.
    let p: UserProfile = app
        .call(
            methods::ADMIN_UPDATE,
            &change(bob.id, Some(Role::Admin), None),
            admin_actor(root),
        )
        .await
        .unwrap();
    assert_eq!(p.user.role, Role::Admin);
    assert_eq!(watch.next(10).await.unwrap().data["reason"], "role_changed");
    assert!(refresh(&app, &t).await.is_err());
    let t = app.try_login("bob@example.com", PASSWORD).await.unwrap();
    assert_eq!(claims(&app, &t).role, Role::Admin);

    // An admin cannot demote or disable themselves.
    let bob_admin = Some(Actor {
        id: bob.id,
        role: Role::Admin,
    });
    for c in [
        change(bob.id, Some(Role::User), None),
        change(bob.id, None, Some(true)),
    ] {
        let err = app
            .call::<_, UserProfile>(methods::ADMIN_UPDATE, &c, bob_admin)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::FailedPrecondition);
    }

    // Demotion, then disabling: each ends the sessions; disabled cannot log in.
    let _: UserProfile = app
        .call(
            methods::ADMIN_UPDATE,
            &change(bob.id, Some(Role::User), None),
            admin_actor(root),
        )
        .await
        .unwrap();
    assert_eq!(watch.next(10).await.unwrap().data["reason"], "role_changed");
    assert!(refresh(&app, &t).await.is_err());
    let t = app.try_login("bob@example.com", PASSWORD).await.unwrap();
    assert_eq!(claims(&app, &t).role, Role::User);
    let p: UserProfile = app
        .call(
            methods::ADMIN_UPDATE,
            &change(bob.id, None, Some(true)),
            admin_actor(root),
        )
        .await
        .unwrap();
    assert!(p.user.disabled);
    assert_eq!(watch.next(10).await.unwrap().data["reason"], "disabled");
    assert!(refresh(&app, &t).await.is_err());
    let err = app
        .try_login("bob@example.com", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied);

    // Enabled again: logs in, and that revoked nothing.
    let _: UserProfile = app
        .call(
            methods::ADMIN_UPDATE,
            &change(bob.id, None, Some(false)),
            admin_actor(root),
        )
        .await
        .unwrap();
    assert!(app.try_login("bob@example.com", PASSWORD).await.is_ok());
    watch.assert_quiet(300).await;

    let err = app
        .call::<_, UserProfile>(
            methods::ADMIN_UPDATE,
            &change(uuid::Uuid::new_v4(), None, Some(true)),
            admin_actor(root),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    watch.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn logins_forget_what_no_session_needs_any_more() {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use user_svc::db::entities::{refresh_token, session};
    let app = TestApp::spawn().await;
    let user = app.register("ada@example.com", PASSWORD, "Ada").await;
    let ended = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    let stale = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    let live = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    let _: LogoutResponse = app
        .call(
            methods::LOGOUT,
            &RefreshRequest {
                refresh_token: ended.refresh_token.clone(),
            },
            None,
        )
        .await
        .unwrap();
    let db = crate::common::db(&app).await;
    let long_ago = chrono::Utc::now() - chrono::Duration::days(2);
    // The ended session was revoked long ago; the stale one's token has expired.
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(long_ago))
        .filter(session::Column::Id.eq(claims(&app, &ended).sid))
        .exec(&db)
        .await
        .unwrap();
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::ExpiresAt, Expr::value(long_ago))
        .filter(refresh_token::Column::SessionId.eq(claims(&app, &stale).sid))
        .exec(&db)
        .await
        .unwrap();
    assert_eq!(session::Entity::find().count(&db).await.unwrap(), 3);

    let next = app.try_login("ada@example.com", PASSWORD).await.unwrap();
    let left: Vec<_> = session::Entity::find()
        .filter(session::Column::UserId.eq(user.id))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&claims(&app, &live).sid));
    assert!(left.contains(&claims(&app, &next).sid));
    // The live session is untouched; the expired token is refused as before.
    assert!(refresh(&app, &live).await.is_ok());
    assert_eq!(
        refresh(&app, &stale).await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );
    app.stop().await;
}
