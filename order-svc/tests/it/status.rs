//! `orders.update_status`: the whole transition table for owner and admin, concurrent
//! conflicting updates, unknown statuses.

use crate::common::*;
use proto_msgs::orders::OrderStatus::{self, *};
use proto_msgs::orders::{Order, methods};
use proto_msgs::{Actor, ErrorCode};
use serde_json::{Value, json};

/// The status machine, written out independently of `OrderStatus::can_become`.
const LEGAL: [(OrderStatus, OrderStatus); 5] = [
    (Pending, Confirmed),
    (Confirmed, Shipped),
    (Shipped, Delivered),
    (Pending, Cancelled),
    (Confirmed, Cancelled),
];

/// Admin moves that bring a new order to `status`.
fn path_to(status: OrderStatus) -> &'static [OrderStatus] {
    match status {
        Pending => &[],
        Confirmed => &[Confirmed],
        Shipped => &[Confirmed, Shipped],
        Delivered => &[Confirmed, Shipped, Delivered],
        Cancelled => &[Cancelled],
    }
}

async fn order_in(svc: &Svc, owner: Actor, boss: Actor, status: OrderStatus) -> Order {
    let mut order = svc.create(owner).await;
    for step in path_to(status) {
        order = svc.set_status(boss, order.id, *step).await.unwrap();
    }
    assert_eq!(order.status, status);
    order
}

#[tokio::test]
async fn the_whole_transition_table_for_owner_and_admin() {
    let svc = Svc::start().await;
    let (alice, boss) = (user(), admin());
    let mut checked = 0;
    for from in OrderStatus::ALL {
        for to in OrderStatus::ALL {
            let legal = LEGAL.contains(&(from, to));

            // Admin: every legal move, nothing else.
            let order = order_in(&svc, alice, boss, from).await;
            let result = svc.set_status(boss, order.id, to).await;
            if legal {
                let after = result.unwrap_or_else(|e| panic!("admin {from}→{to}: {e:?}"));
                assert_eq!(after.status, to);
                assert_eq!(after.items, order.items);
                assert!(after.updated_at > order.updated_at);
            } else {
                let err = expect_err(result, ErrorCode::FailedPrecondition);
                assert!(
                    err.message.contains(from.as_str()) && err.message.contains(to.as_str()),
                    "message names both statuses: {}",
                    err.message
                );
            }

            // Owner: may only cancel, and only where cancelling is legal.
            let order = order_in(&svc, alice, boss, from).await;
            let result = svc.set_status(alice, order.id, to).await;
            let expected_status = match (to, legal) {
                (Cancelled, true) => {
                    assert_eq!(result.unwrap().status, Cancelled, "owner {from}→{to}");
                    Cancelled
                }
                (Cancelled, false) => {
                    expect_err(result, ErrorCode::FailedPrecondition);
                    from
                }
                _ => {
                    let err = expect_err(result, ErrorCode::PermissionDenied);
                    assert!(err.message.contains("cancel"), "{}", err.message);
                    from
                }
            };
            let now: Order = svc
                .call(methods::GET, &json!({"id": order.id}), Some(alice))
                .await
                .unwrap();
            assert_eq!(now.status, expected_status, "owner {from}→{to}");
            checked += 1;
        }
    }
    assert_eq!(checked, 25);
    svc.stop().await;
}

#[tokio::test]
async fn concurrent_conflicting_updates_have_one_winner() {
    let svc = Svc::start().await;
    let (alice, boss, other_boss) = (user(), admin(), admin());
    for round in 0..10 {
        let order = order_in(&svc, alice, boss, Confirmed).await;
        // Two admins (SHIPPED vs CANCELLED), or the owner cancelling while an admin ships.
        let (a, b) = if round % 2 == 0 {
            ((boss, Shipped), (other_boss, Cancelled))
        } else {
            ((alice, Cancelled), (boss, Shipped))
        };
        let (ra, rb) = tokio::join!(
            svc.set_status(a.0, order.id, a.1),
            svc.set_status(b.0, order.id, b.1)
        );
        let winner = match (&ra, &rb) {
            (Ok(o), Err(e)) | (Err(e), Ok(o)) => {
                assert_eq!(e.code, ErrorCode::FailedPrecondition, "{e:?}");
                o.status
            }
            _ => panic!("round {round}: exactly one must win: {ra:?} / {rb:?}"),
        };
        let now: Order = svc
            .call(methods::GET, &json!({"id": order.id}), Some(alice))
            .await
            .unwrap();
        assert_eq!(now.status, winner);
    }
    svc.stop().await;
}

#[tokio::test]
async fn unknown_or_missing_status_is_invalid_argument() {
    let svc = Svc::start().await;
    let alice = user();
    let order = svc.create(alice).await;
    for (body, field, says) in [
        (
            json!({"id": order.id, "status": "LOST"}),
            "status",
            "unknown status \"LOST\"",
        ),
        (json!({"id": order.id, "status": 2}), "status", "status"),
        (
            json!({"id": order.id, "status": " shipped"}),
            "status",
            "unknown status",
        ),
        (json!({"id": "x", "status": "CANCELLED"}), "id", "UUID"),
    ] {
        let err = expect_err(
            svc.call::<_, Value>(methods::UPDATE_STATUS, &body, Some(alice))
                .await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(field_of(&err), field, "{body}");
        assert!(err.message.contains(says), "{}", err.message);
    }
    // A missing field has no path of its own: serde's message names it.
    for (body, says) in [
        (json!({"id": order.id}), "missing field `status`"),
        (json!({"status": "CANCELLED"}), "missing field `id`"),
    ] {
        let err = expect_err(
            svc.call::<_, Value>(methods::UPDATE_STATUS, &body, Some(alice))
                .await,
            ErrorCode::InvalidArgument,
        );
        assert!(err.message.contains(says), "{}", err.message);
    }
    let err = expect_err(
        svc.call::<_, Value>(
            methods::UPDATE_STATUS,
            &json!({"id": order.id, "status": "LOST"}),
            Some(alice),
        )
        .await,
        ErrorCode::InvalidArgument,
    );
    assert!(
        err.message
            .contains("PENDING, CONFIRMED, SHIPPED, DELIVERED, CANCELLED")
    );
    // A missing order is not_found for admins too.
    expect_err(
        svc.set_status(admin(), uuid::Uuid::new_v4(), Confirmed)
            .await,
        ErrorCode::NotFound,
    );
    svc.stop().await;
}
