//! `orders.get`: own orders, someone else's (`not_found`, like a missing one), admins.

use crate::common::*;
use proto_msgs::ErrorCode;
use proto_msgs::orders::{Order, OrderStatus, methods};
use serde_json::json;

#[tokio::test]
async fn only_the_owner_or_an_admin_sees_an_order() {
    let svc = Svc::start().await;
    let (alice, bob, boss) = (user(), user(), admin());
    let order = svc.create(alice).await;

    let mine: Order = svc
        .call(methods::GET, &json!({"id": order.id}), Some(alice))
        .await
        .unwrap();
    assert_eq!(mine, order);
    let seen_by_admin: Order = svc
        .call(methods::GET, &json!({"id": order.id}), Some(boss))
        .await
        .unwrap();
    assert_eq!(seen_by_admin, order);

    // Bob can't tell Alice's order from one that doesn't exist.
    let hidden = expect_err(
        svc.call::<_, Order>(methods::GET, &json!({"id": order.id}), Some(bob))
            .await,
        ErrorCode::NotFound,
    );
    let missing_id = uuid::Uuid::new_v4();
    let missing = expect_err(
        svc.call::<_, Order>(methods::GET, &json!({"id": missing_id}), Some(bob))
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(
        hidden.message.replace(&order.id.to_string(), "ID"),
        missing.message.replace(&missing_id.to_string(), "ID")
    );
    assert_eq!(hidden.details, missing.details);

    // Nor change it.
    let hidden = expect_err(
        svc.set_status(bob, order.id, OrderStatus::Cancelled).await,
        ErrorCode::NotFound,
    );
    assert_eq!(
        hidden.message.replace(&order.id.to_string(), "ID"),
        missing.message.replace(&missing_id.to_string(), "ID")
    );
    let still: Order = svc
        .call(methods::GET, &json!({"id": order.id}), Some(alice))
        .await
        .unwrap();
    assert_eq!(still.status, OrderStatus::Pending);

    let err = expect_err(
        svc.call::<_, Order>(methods::GET, &json!({}), Some(alice))
            .await,
        ErrorCode::InvalidArgument,
    );
    assert!(err.message.contains("missing field `id`"), "{err:?}");
    for bad in [json!({"id": "not-a-uuid"}), json!({"id": 42})] {
        let err = expect_err(
            svc.call::<_, Order>(methods::GET, &bad, Some(alice)).await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(field_of(&err), "id", "{bad}");
    }
    svc.stop().await;
}
