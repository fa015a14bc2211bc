//! `users.me`, `users.get`, `users.update`.

use crate::common::{EventWatch, TestApp, actor, admin_actor};
use proto_msgs::users::{Empty, GetUserRequest, UpdateUserRequest, UserProfile, methods};
use proto_msgs::{Actor, ErrorCode, Role};
use serde_json::json;

#[tokio::test]
async fn me_needs_an_actor_and_returns_the_profile() {
    let app = TestApp::spawn().await;
    let err = app
        .call::<_, UserProfile>(methods::ME, &Empty {}, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);

    let user = app.register("ada@example.com", "password123", "Ada").await;
    let me: UserProfile = app
        .call(methods::ME, &Empty {}, actor(&user))
        .await
        .unwrap();
    assert_eq!(me.user, user);
    assert_eq!(me.order_stats, Default::default());
    let v = serde_json::to_value(&me).unwrap();
    assert_eq!(
        v["order_stats"],
        json!({"order_count": 0, "total_spent": "0.00", "last_order_at": null})
    );

    // A verified actor whose account is gone.
    let ghost = Some(Actor {
        id: uuid::Uuid::new_v4(),
        role: Role::User,
    });
    let err = app
        .call::<_, UserProfile>(methods::ME, &Empty {}, ghost)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn get_is_for_oneself_or_an_admin() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let bob = app.register("bob@example.com", "password123", "Bob").await;
    let get = |id| GetUserRequest { id };

    let own: UserProfile = app
        .call(methods::GET, &get(ada.id), actor(&ada))
        .await
        .unwrap();
    assert_eq!(own.user, ada);

    let other = app
        .call::<_, UserProfile>(methods::GET, &get(bob.id), actor(&ada))
        .await
        .unwrap_err();
    let missing = app
        .call::<_, UserProfile>(methods::GET, &get(uuid::Uuid::new_v4()), actor(&ada))
        .await
        .unwrap_err();
    assert_eq!(other.code, ErrorCode::NotFound);
    assert_eq!(other, missing, "someone else's id looks like a missing one");

    let as_admin: UserProfile = app
        .call(
            methods::GET,
            &get(bob.id),
            admin_actor(uuid::Uuid::new_v4()),
        )
        .await
        .unwrap();
    assert_eq!(as_admin.user, bob);
    let err = app
        .call::<_, UserProfile>(
            methods::GET,
            &get(uuid::Uuid::new_v4()),
            admin_actor(ada.id),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);

    let err = app
        .call::<_, UserProfile>(methods::GET, &get(bob.id), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    let err = app
        .call::<_, UserProfile>(methods::GET, &json!({"id": "not-a-uuid"}), actor(&ada))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn update_changes_the_name_and_emits_user_updated() {
    let app = TestApp::spawn().await;
    let mut watch = EventWatch::start(&app.bus, &["user.updated"]).await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    // Raw JSON: the contract type could not hold the bad names sent below.
    let upd = |name: &str| json!({ "name": name });

    let p: UserProfile = app
        .call(methods::UPDATE, &upd("  Ada King "), actor(&ada))
        .await
        .unwrap();
    assert_eq!(p.user.name, "Ada King");
    assert!(p.user.updated_at > ada.updated_at);
    assert_eq!(p.user.created_at, ada.created_at);
    let me: UserProfile = app.call(methods::ME, &Empty {}, actor(&ada)).await.unwrap();
    assert_eq!(me, p);

    let ev = watch.next(10).await.expect("user.updated");
    assert_eq!(ev.event_type, "user.updated");
    assert_eq!(ev.source, "user-svc");
    assert_eq!(ev.subject.as_deref(), Some(ada.id.to_string().as_str()));
    assert_eq!(ev.data["user_id"], json!(ada.id));
    assert_eq!(ev.data["name"], "Ada King");
    assert_eq!(ev.data["role"], "user");

    for bad in ["", "   ", &"x".repeat(101)] {
        let err = app
            .call::<_, UserProfile>(methods::UPDATE, &upd(bad), actor(&ada))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.details, Some(json!({"field": "name"})));
    }
    // Nothing to change: the profile as it is, and no event.
    let same: UserProfile = app
        .call(methods::UPDATE, &UpdateUserRequest::default(), actor(&ada))
        .await
        .unwrap();
    assert_eq!(same, p);
    watch.assert_quiet(500).await;

    let err = app
        .call::<_, UserProfile>(methods::UPDATE, &upd("X"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    let ghost = Some(Actor {
        id: uuid::Uuid::new_v4(),
        role: Role::User,
    });
    let err = app
        .call::<_, UserProfile>(methods::UPDATE, &upd("X"), ghost)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    watch.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com", "old password", "Ada").await;
    let change = |current: Option<&str>, new: &str| match current {
        Some(current) => json!({"password": new, "current_password": current}),
        None => json!({ "password": new }),
    };

    let err = app
        .call::<_, UserProfile>(methods::UPDATE, &change(None, "new password"), actor(&ada))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert_eq!(err.details, Some(json!({"field": "current_password"})));

    let err = app
        .call::<_, UserProfile>(
            methods::UPDATE,
            &change(Some("not my password"), "new password"),
            actor(&ada),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied);

    for bad in ["short", &"x".repeat(73)] {
        let err = app
            .call::<_, UserProfile>(
                methods::UPDATE,
                &change(Some("old password"), bad),
                actor(&ada),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.details, Some(json!({"field": "password"})));
    }
    // Nothing changed so far.
    assert!(
        app.try_login("ada@example.com", "old password")
            .await
            .is_ok()
    );

    let p: UserProfile = app
        .call(
            methods::UPDATE,
            &change(Some("old password"), "new password"),
            actor(&ada),
        )
        .await
        .unwrap();
    assert_eq!(p.user.name, "Ada");
    assert_eq!(
        app.try_login("ada@example.com", "old password")
            .await
            .unwrap_err()
            .code,
        ErrorCode::Unauthenticated
    );
    assert!(
        app.try_login("ada@example.com", "new password")
            .await
            .is_ok()
    );
    app.stop().await;
}
