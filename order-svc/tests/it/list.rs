//! `orders.list`: cursor and offset paging, status filter, who may list whom, errors.

use crate::common::*;
use proto_msgs::ErrorCode;
use proto_msgs::orders::{Order, OrderPage, OrderStatus, methods};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

fn newest_first(orders: &[Order]) -> Vec<Uuid> {
    let mut sorted: Vec<&Order> = orders.iter().collect();
    sorted.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id)));
    sorted.iter().map(|o| o.id).collect()
}

#[tokio::test]
async fn pages_through_45_orders_each_exactly_once_newest_first() {
    let svc = Svc::start().await;
    let (alice, bob, boss) = (user(), user(), admin());
    let mut created = Vec::new();
    for _ in 0..45 {
        created.push(svc.create(alice).await);
    }
    svc.create(bob).await;
    let expected = newest_first(&created);
    // Sequential creates are also newest-first by creation order.
    let mut by_creation: Vec<Uuid> = created.iter().map(|o| o.id).collect();
    by_creation.reverse();
    assert_eq!(expected, by_creation);

    // Cursor paging with the default limit (20): 20 + 20 + 5.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let mut req = json!({});
        if let Some(c) = &cursor {
            req["cursor"] = json!(c);
        }
        let page: OrderPage = svc.call(methods::LIST, &req, Some(alice)).await.unwrap();
        assert_eq!(page.limit, 20);
        sizes.push(page.orders.len());
        assert_eq!(page.has_more, page.next_cursor.is_some());
        seen.extend(page.orders.iter().map(|o| o.id));
        assert!(
            page.orders
                .iter()
                .all(|o| o.user_id == alice.id && o.items.len() == 1)
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, vec![20, 20, 5]);
    assert_eq!(seen, expected, "each order once, newest first");

    // A new order placed mid-way does not disturb a cursor walk.
    let first: OrderPage = svc
        .call(methods::LIST, &json!({"limit": 30}), Some(alice))
        .await
        .unwrap();
    svc.create(alice).await;
    let rest: OrderPage = svc
        .call(
            methods::LIST,
            &json!({"limit": 30, "cursor": first.next_cursor}),
            Some(alice),
        )
        .await
        .unwrap();
    assert!(!rest.has_more);
    assert_eq!(rest.next_cursor, None);
    let walked: Vec<Uuid> = first
        .orders
        .iter()
        .chain(&rest.orders)
        .map(|o| o.id)
        .collect();
    assert_eq!(walked, expected);

    // Offset paging over the same 45 (skipping the newest, added just above).
    let mut seen = Vec::new();
    for offset in (1..47).step_by(15) {
        let page: OrderPage = svc
            .call(
                methods::LIST,
                &json!({"limit": 15, "offset": offset}),
                Some(alice),
            )
            .await
            .unwrap();
        assert_eq!(page.has_more, offset + 15 < 46, "offset {offset}");
        seen.extend(page.orders.iter().map(|o| o.id));
    }
    assert_eq!(seen, expected);

    // An admin lists Alice's orders through user_id; she may name herself.
    let page: OrderPage = svc
        .call(
            methods::LIST,
            &json!({"user_id": alice.id, "limit": 100}),
            Some(boss),
        )
        .await
        .unwrap();
    assert_eq!(page.orders.len(), 46);
    assert!(!page.has_more);
    let page: OrderPage = svc
        .call(
            methods::LIST,
            &json!({"user_id": alice.id, "limit": 1}),
            Some(alice),
        )
        .await
        .unwrap();
    assert_eq!(page.orders.len(), 1);
    assert!(page.has_more);
    // Without user_id, everyone (admins too) gets their own.
    let page: OrderPage = svc
        .call(methods::LIST, &json!({}), Some(boss))
        .await
        .unwrap();
    assert!(page.orders.is_empty() && !page.has_more && page.next_cursor.is_none());
    let page: OrderPage = svc
        .call(methods::LIST, &json!({}), Some(bob))
        .await
        .unwrap();
    assert_eq!(page.orders.len(), 1);
    // Bob may not list Alice's.
    expect_err(
        svc.call::<_, OrderPage>(methods::LIST, &json!({"user_id": alice.id}), Some(bob))
            .await,
        ErrorCode::PermissionDenied,
    );
    svc.stop().await;
}

#[tokio::test]
async fn filters_by_status() {
    let svc = Svc::start().await;
    let (alice, boss) = (user(), admin());
    let mut orders = Vec::new();
    for _ in 0..10 {
        orders.push(svc.create(alice).await);
    }
    let cancelled: HashSet<Uuid> = orders[..4].iter().map(|o| o.id).collect();
    for o in &orders[..4] {
        svc.set_status(alice, o.id, OrderStatus::Cancelled)
            .await
            .unwrap();
    }
    for o in &orders[4..7] {
        svc.set_status(boss, o.id, OrderStatus::Confirmed)
            .await
            .unwrap();
    }

    // Cursor paging within a filter.
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page: OrderPage = svc
            .call(
                methods::LIST,
                &json!({"status": "CANCELLED", "limit": 3, "cursor": cursor}),
                Some(alice),
            )
            .await
            .unwrap();
        for o in &page.orders {
            assert_eq!(o.status, OrderStatus::Cancelled);
            assert!(seen.insert(o.id));
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, cancelled);

    for (status, n) in [("confirmed", 3), ("PENDING", 3), ("SHIPPED", 0)] {
        let page: OrderPage = svc
            .call(methods::LIST, &json!({"status": status}), Some(alice))
            .await
            .unwrap();
        assert_eq!(page.orders.len(), n, "{status}");
    }
    svc.stop().await;
}

#[tokio::test]
async fn bad_list_requests_are_invalid_argument() {
    let svc = Svc::start().await;
    let alice = user();
    svc.create(alice).await;
    svc.create(alice).await;
    let page: OrderPage = svc
        .call(methods::LIST, &json!({"limit": 1}), Some(alice))
        .await
        .unwrap();
    let cursor = page.next_cursor.unwrap();

    for (body, field) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 101}), "limit"),
        (json!({"limit": -1}), "limit"),
        (json!({"limit": "ten"}), "limit"),
        (json!({"cursor": cursor, "offset": 0}), "cursor"),
        (json!({"cursor": "not a cursor"}), "cursor"),
        (json!({"cursor": format!("{cursor}x")}), "cursor"),
        (json!({"offset": -3}), "offset"),
        (json!({"status": "LOST"}), "status"),
        (json!({"user_id": "me"}), "user_id"),
    ] {
        let err = expect_err(
            svc.call::<_, Value>(methods::LIST, &body, Some(alice))
                .await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(field_of(&err), field, "{body}");
    }
    // Limits at the bounds are fine.
    for limit in [1, 100] {
        let page: OrderPage = svc
            .call(methods::LIST, &json!({"limit": limit}), Some(alice))
            .await
            .unwrap();
        assert_eq!(page.limit, limit);
    }
    svc.stop().await;
}
