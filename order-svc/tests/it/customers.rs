//! The customers projection from `user.registered` / `user.updated`.

use crate::common::*;
use chrono::{Duration as Age, Utc};
use order_svc::db::customers::{self, Customer};
use proto_msgs::events::types::{USER_REGISTERED, USER_UPDATED};
use proto_msgs::orders::OrderStatus;
use proto_msgs::users::{UserRegistered, UserUpdated};
use proto_msgs::{CloudEvent, EventPublisher, Role};
use std::time::Duration;
use uuid::Uuid;

/// Waits (up to 20 s) until `check` holds for the projected customer.
async fn until(svc: &Svc, id: Uuid, check: impl Fn(&Option<Customer>) -> bool) -> Option<Customer> {
    let mut last = None;
    for _ in 0..200 {
        last = customers::find(svc.pool(), id).await.unwrap();
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("customer {id} never reached the expected state; last: {last:?}");
}

fn registered(id: Uuid, name: &str, at: chrono::DateTime<Utc>) -> CloudEvent<UserRegistered> {
    CloudEvent::new(
        "user-svc",
        USER_REGISTERED,
        id.to_string(),
        UserRegistered {
            user_id: id,
            email: format!("{name}@example.com").to_lowercase(),
            name: name.into(),
            role: Role::User,
            created_at: at,
        },
    )
}

fn updated(id: Uuid, name: &str, role: Role, at: chrono::DateTime<Utc>) -> CloudEvent<UserUpdated> {
    CloudEvent::new(
        "user-svc",
        USER_UPDATED,
        id.to_string(),
        UserUpdated {
            user_id: id,
            email: format!("{name}@example.com").to_lowercase(),
            name: name.into(),
            role,
            updated_at: at,
        },
    )
}

#[tokio::test]
async fn user_events_build_the_customers_table_once_and_newest_wins() {
    let svc = Svc::start().await;
    let alice = user();
    // An order placed before order-svc heard of Alice is accepted.
    let order = svc.create(alice).await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert!(
        customers::find(svc.pool(), alice.id)
            .await
            .unwrap()
            .is_none()
    );

    let publisher = EventPublisher::new(svc.bus.config(), "test user-svc");
    let t0 = Utc::now() - Age::minutes(10);
    publisher
        .publish(&registered(alice.id, "Alice", t0))
        .await
        .unwrap();
    let c = until(&svc, alice.id, |c| c.is_some()).await.unwrap();
    assert_eq!(
        (c.name.as_str(), c.email.as_str(), c.role),
        ("Alice", "alice@example.com", Role::User)
    );

    let rename = updated(alice.id, "Alicia", Role::Admin, t0 + Age::minutes(5));
    publisher.publish(&rename).await.unwrap();
    let c = until(&svc, alice.id, |c| {
        c.as_ref().is_some_and(|c| c.name == "Alicia")
    })
    .await
    .unwrap();
    assert_eq!(c.role, Role::Admin);
    assert_eq!(
        c.updated_at.timestamp_micros(),
        (t0 + Age::minutes(5)).timestamp_micros()
    );

    // An older update arriving late changes nothing.
    publisher
        .publish(&updated(
            alice.id,
            "Stale",
            Role::User,
            t0 + Age::minutes(1),
        ))
        .await
        .unwrap();
    // A redelivery (same event id) has no second effect, even if its data would win.
    let mut dup = updated(alice.id, "Duplicate", Role::User, t0 + Age::minutes(9));
    dup.id = rename.id;
    publisher.publish(&dup).await.unwrap();
    publisher.publish(&rename).await.unwrap();
    // Events are handled one at a time in queue order: once this marker is projected,
    // everything published before it has been handled.
    let marker = Uuid::new_v4();
    publisher
        .publish(&registered(marker, "Marker", Utc::now()))
        .await
        .unwrap();
    until(&svc, marker, |c| c.is_some()).await;

    let c = customers::find(svc.pool(), alice.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.name, "Alicia");
    assert_eq!(c.role, Role::Admin);
    // registered, rename, stale, marker: four distinct events recorded.
    assert_eq!(svc.count("SELECT count(*) FROM processed_events").await, 4);
    assert_eq!(svc.count("SELECT count(*) FROM customers").await, 2);

    // user.updated before user.registered (out of order): the newer one still wins.
    let bob = Uuid::new_v4();
    let t1 = Utc::now();
    publisher
        .publish(&updated(bob, "Robert", Role::User, t1))
        .await
        .unwrap();
    publisher
        .publish(&registered(bob, "Bob", t1 - Age::hours(1)))
        .await
        .unwrap();
    let marker = Uuid::new_v4();
    publisher
        .publish(&registered(marker, "Marker2", Utc::now()))
        .await
        .unwrap();
    until(&svc, marker, |c| c.is_some()).await;
    assert_eq!(
        customers::find(svc.pool(), bob)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Robert"
    );

    publisher.close().await;
    svc.stop().await;
}
