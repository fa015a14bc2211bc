//! Events leave through the outbox: a registration commits even when the publisher
//! can't reach the broker, and its event goes out once, when it can.

use crate::common::{EventWatch, TestApp, db};
use proto_msgs::testing::BrokerProxy;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_succeeds_while_the_broker_is_unreachable_for_the_relay() {
    let proxy = BrokerProxy::start().await;
    proxy.cut();
    let app =
        TestApp::spawn_with(|bus, c| c.service.events_bus = Some(proxy.bus(&bus.config()))).await;
    let mut watch = EventWatch::start(&app.bus, &["user.registered"]).await;

    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let conn = db(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        svc_kit::outbox::pending(&conn).await.unwrap(),
        1,
        "the event waits in the outbox"
    );
    watch.assert_quiet(200).await;

    proxy.restore();
    let ev = watch
        .next(20)
        .await
        .expect("user.registered after the broker is back");
    assert_eq!(ev.event_type, "user.registered");
    assert_eq!(ev.source, "user-svc");
    assert_eq!(ev.subject.as_deref(), Some(ada.id.to_string().as_str()));
    assert_eq!(
        ev.data,
        json!({
            "user_id": ada.id,
            "email": "ada@example.com",
            "name": "Ada",
            "role": "user",
            "created_at": ada.created_at,
        })
    );
    watch.assert_quiet(1500).await;
    assert_eq!(svc_kit::outbox::pending(&conn).await.unwrap(), 0);
    conn.close().await.unwrap();
    watch.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn request_trace_flows_into_the_event() {
    let app = TestApp::spawn().await;
    let mut watch = EventWatch::start(&app.bus, &["user.registered"]).await;
    let tp = proto_msgs::TraceParent::new_root();
    let ctx = proto_msgs::RequestContext::new().with_traceparent(tp.clone());
    let _: proto_msgs::users::User = app
        .client
        .call(
            proto_msgs::users::methods::REGISTER,
            &json!({"email": "t@example.com", "password": "password123", "name": "T"}),
            &ctx,
        )
        .await
        .unwrap();
    let ev = watch.next(10).await.unwrap();
    assert_eq!(ev.trace().unwrap().trace_id(), tp.trace_id());
    watch.stop().await;
    app.stop().await;
}
