//! Order statistics from order-svc's events: idempotent, exact, order-insensitive.

use crate::common::{TestApp, actor, db, eventually, eventually_within};
use chrono::{DateTime, TimeZone, Utc};
use lapin::options::BasicGetOptions;
use proto_msgs::orders::{OrderCreated, OrderStatus, OrderUpdated};
use proto_msgs::users::{Empty, OrderStats, UserProfile, methods};
use proto_msgs::{CloudEvent, EventPublisher, Money};
use sea_orm::EntityTrait;
use std::time::Duration;
use user_svc::db::entities::order_stats;
use uuid::Uuid;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, hour, 0, 0).unwrap()
}

fn money(s: &str) -> Money {
    s.parse().unwrap()
}

fn created(
    order_id: Uuid,
    user_id: Uuid,
    total: &str,
    when: DateTime<Utc>,
) -> CloudEvent<OrderCreated> {
    CloudEvent::new(
        "order-svc",
        "order.created",
        order_id.to_string(),
        OrderCreated {
            order_id,
            user_id,
            items: vec![],
            total: money(total),
            status: OrderStatus::Pending,
            created_at: when,
        },
    )
}

fn updated(
    order_id: Uuid,
    user_id: Uuid,
    total: &str,
    old: OrderStatus,
    new: OrderStatus,
) -> CloudEvent<OrderUpdated> {
    CloudEvent::new(
        "order-svc",
        "order.updated",
        order_id.to_string(),
        OrderUpdated {
            order_id,
            user_id,
            old_status: old,
            new_status: new,
            total: money(total),
            updated_at: Utc::now(),
        },
    )
}

/// Polls `users.me` until the stats are `want`.
async fn wait_for_stats(app: &TestApp, who: &proto_msgs::users::User, want: OrderStats) {
    eventually(&format!("stats {want:?}"), || async {
        let p: UserProfile = app.call(methods::ME, &Empty {}, actor(who)).await.unwrap();
        (p.order_stats == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn orders_are_counted_once_and_cancellations_subtract_once() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let publisher = EventPublisher::new(app.bus.config(), "test order-svc");
    let (o1, o2, o3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    // The same event twice (one id): counted once.
    let first = created(o1, ada.id, "100.10", at(10));
    publisher.publish(&first).await.unwrap();
    publisher.publish(&first).await.unwrap();
    // An older order: last_order_at stays the latest.
    publisher
        .publish(&created(o2, ada.id, "50.00", at(9)))
        .await
        .unwrap();
    wait_for_stats(
        &app,
        &ada,
        OrderStats {
            order_count: 2,
            total_spent: money("150.10"),
            last_order_at: Some(at(10)),
        },
    )
    .await;

    // A status change that is not a cancellation changes nothing.
    publisher
        .publish(&updated(
            o1,
            ada.id,
            "100.10",
            OrderStatus::Pending,
            OrderStatus::Confirmed,
        ))
        .await
        .unwrap();
    // Cancelling o2: delivered twice, and once more as a different event.
    let cancel = updated(
        o2,
        ada.id,
        "50.00",
        OrderStatus::Pending,
        OrderStatus::Cancelled,
    );
    publisher.publish(&cancel).await.unwrap();
    publisher.publish(&cancel).await.unwrap();
    publisher
        .publish(&updated(
            o2,
            ada.id,
            "50.00",
            OrderStatus::Pending,
            OrderStatus::Cancelled,
        ))
        .await
        .unwrap();
    // A later order, as a marker: once it shows, everything before it was applied.
    publisher
        .publish(&created(o3, ada.id, "1.00", at(11)))
        .await
        .unwrap();
    wait_for_stats(
        &app,
        &ada,
        OrderStats {
            order_count: 3,
            total_spent: money("101.10"),
            last_order_at: Some(at(11)),
        },
    )
    .await;

    let p: UserProfile = app.call(methods::ME, &Empty {}, actor(&ada)).await.unwrap();
    assert_eq!(
        serde_json::to_value(&p.order_stats).unwrap(),
        serde_json::json!({"order_count": 3, "total_spent": "101.10", "last_order_at": "2026-11-23T11:00:00Z"})
    );
    publisher.close().await;
    app.stop().await;
}

#[tokio::test]
async fn out_of_order_events_and_unknown_users_still_add_up() {
    let app = TestApp::spawn().await;
    let publisher = EventPublisher::new(app.bus.config(), "test order-svc");
    let stranger = Uuid::new_v4(); // no such user here (yet)
    let (o1, o2) = (Uuid::new_v4(), Uuid::new_v4());

    // The cancellation arrives before the order it cancels.
    publisher
        .publish(&updated(
            o1,
            stranger,
            "20.00",
            OrderStatus::Pending,
            OrderStatus::Cancelled,
        ))
        .await
        .unwrap();
    publisher
        .publish(&created(o1, stranger, "20.00", at(8)))
        .await
        .unwrap();
    publisher
        .publish(&created(o2, stranger, "5.00", at(7)))
        .await
        .unwrap();

    let conn = db(&app).await;
    let row = eventually("stats of an unknown user", || async {
        order_stats::Entity::find_by_id(stranger)
            .one(&conn)
            .await
            .unwrap()
            .filter(|r| r.order_count == 2)
    })
    .await;
    assert_eq!(
        row.total_spent_minor, 500,
        "the cancelled order adds nothing"
    );
    assert_eq!(row.last_order_at, Some(at(8)));
    conn.close().await.unwrap();
    publisher.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_undecodable_order_event_goes_to_the_dead_letter_queue() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let publisher = EventPublisher::new(app.bus.config(), "test order-svc");
    let poison = CloudEvent::new(
        "order-svc",
        "order.created",
        "x",
        serde_json::json!({"order_id": "not-a-uuid", "total": "lots"}),
    );
    publisher.publish(&poison).await.unwrap();
    // The queue moves on: a good event behind the poison one is applied.
    publisher
        .publish(&created(Uuid::new_v4(), ada.id, "3.50", at(12)))
        .await
        .unwrap();
    wait_for_stats(
        &app,
        &ada,
        OrderStats {
            order_count: 1,
            total_spent: money("3.50"),
            last_order_at: Some(at(12)),
        },
    )
    .await;

    let conn = proto_msgs::testing::lapin_connect(&app.bus.config(), "dlq reader").await;
    let ch = conn.create_channel().await.unwrap();
    let dlq = app.bus.topology().events_dlq("users");
    let msg = eventually("the poison event in the DLQ", || {
        let ch = ch.clone();
        let dlq = dlq.clone();
        async move {
            ch.basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
        }
    })
    .await;
    let body: serde_json::Value = serde_json::from_slice(&msg.delivery.data).unwrap();
    assert_eq!(body["id"], serde_json::json!(poison.id));
    let _ = conn.close(200, "bye".into()).await;
    publisher.close().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    app.stop().await;
}

/// While the database is down, requests answer `unavailable` and order events wait
/// (retried, not dead-lettered); once it is back, they are applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_delays_events_without_losing_them() {
    let proxy = proto_msgs::testing::TcpProxy::start("127.0.0.1:5432").await;
    let app = TestApp::spawn_with(|_, c| {
        c.service.db.url = proxy.via(&c.service.db.url);
        c.service.db.acquire_timeout = Duration::from_millis(500);
    })
    .await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let publisher = EventPublisher::new(app.bus.config(), "test order-svc");

    proxy.cut();
    let err = app
        .call::<_, UserProfile>(methods::ME, &Empty {}, actor(&ada))
        .await
        .unwrap_err();
    assert_eq!(err.code, proto_msgs::ErrorCode::Unavailable, "{err:?}");
    publisher
        .publish(&created(Uuid::new_v4(), ada.id, "7.00", at(13)))
        .await
        .unwrap();
    // More attempts than a non-transient failure gets before the DLQ (5).
    let limit = Duration::from_secs(30);
    eventually_within(
        limit,
        "the event handler retrying past the DLQ limit",
        || async {
            let m: proto_msgs::rpc::MetricsText = app
                .call(methods::METRICS, &serde_json::json!({}), None)
                .await
                .unwrap();
            let retries = m
                .text
                .lines()
                .find(|l| l.starts_with("events_retried_total{") && l.contains("order.created"))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0);
            (retries >= 6.0).then_some(())
        },
    )
    .await;

    proxy.restore();
    wait_for_stats(
        &app,
        &ada,
        OrderStats {
            order_count: 1,
            total_spent: money("7.00"),
            last_order_at: Some(at(13)),
        },
    )
    .await;
    let conn = proto_msgs::testing::lapin_connect(&app.bus.config(), "dlq reader").await;
    let ch = conn.create_channel().await.unwrap();
    let dlq = app.bus.topology().events_dlq("users");
    let dead = ch
        .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(dead.is_none(), "nothing was dead-lettered");
    let _ = conn.close(200, "bye".into()).await;
    publisher.close().await;
    app.stop().await;
}
