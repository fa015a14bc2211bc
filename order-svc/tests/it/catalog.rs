//! `catalog.*` on order-svc's queue: admin-only writes, public reads, search and paging.

use crate::common::*;
use proto_msgs::ErrorCode;
use proto_msgs::catalog::{Product, ProductPage, methods};
use serde_json::{Value, json};

#[tokio::test]
async fn admins_write_the_catalog_and_everyone_reads_it() {
    let svc = Svc::start().await;
    let (boss, alice) = (admin(), user());
    let lamp: Product = svc
        .call(
            methods::CREATE,
            &json!({"sku": "DESK-LAMP", "name": " Desk lamp ", "description": "LED, warm light",
                    "category": "home", "price": "24.50", "stock": 7}),
            Some(boss),
        )
        .await
        .unwrap();
    assert_eq!(
        (lamp.name.as_str(), lamp.stock, lamp.active),
        ("Desk lamp", 7, true)
    );
    assert_eq!(lamp.price.to_string(), "24.50");

    // Users and anonymous callers may not write.
    let body = json!({"sku": "X-1", "name": "x", "category": "c", "price": 1});
    expect_err(
        svc.call::<_, Product>(methods::CREATE, &body, Some(alice))
            .await,
        ErrorCode::PermissionDenied,
    );
    expect_err(
        svc.call::<_, Product>(methods::CREATE, &body, None).await,
        ErrorCode::Unauthenticated,
    );
    // A SKU is unique.
    let err = expect_err(
        svc.call::<_, Product>(
            methods::CREATE,
            &json!({"sku": "DESK-LAMP", "name": "x", "category": "c", "price": 1}),
            Some(boss),
        )
        .await,
        ErrorCode::AlreadyExists,
    );
    assert_eq!(field_of(&err), "sku");

    // Update: the fields given, nothing else.
    let cheaper: Product = svc
        .call(
            methods::UPDATE,
            &json!({"id": lamp.id, "price": "19.00"}),
            Some(boss),
        )
        .await
        .unwrap();
    assert_eq!(
        (cheaper.price.to_string().as_str(), cheaper.name.as_str()),
        ("19.00", "Desk lamp")
    );
    expect_err(
        svc.call::<_, Product>(methods::UPDATE, &json!({"id": lamp.id}), Some(boss))
            .await,
        ErrorCode::InvalidArgument,
    );
    expect_err(
        svc.call::<_, Product>(
            methods::UPDATE,
            &json!({"id": lamp.id, "price": 1}),
            Some(alice),
        )
        .await,
        ErrorCode::PermissionDenied,
    );
    expect_err(
        svc.call::<_, Product>(
            methods::UPDATE,
            &json!({"id": uuid::Uuid::new_v4(), "price": 1}),
            Some(boss),
        )
        .await,
        ErrorCode::NotFound,
    );

    // Stock: relative, never below 0.
    let more: Product = svc
        .call(
            methods::ADJUST_STOCK,
            &json!({"id": lamp.id, "delta": 5, "reason": "delivery"}),
            Some(boss),
        )
        .await
        .unwrap();
    assert_eq!(more.stock, 12);
    let err = expect_err(
        svc.call::<_, Product>(
            methods::ADJUST_STOCK,
            &json!({"id": lamp.id, "delta": -13, "reason": "count"}),
            Some(boss),
        )
        .await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(err.details.as_ref().unwrap()["stock"], json!(12));
    let none: Product = svc
        .call(
            methods::ADJUST_STOCK,
            &json!({"id": lamp.id, "delta": -12, "reason": "count"}),
            Some(boss),
        )
        .await
        .unwrap();
    assert_eq!(none.stock, 0);
    for bad in [
        json!({"id": lamp.id, "delta": 0, "reason": "x"}),
        json!({"id": lamp.id, "delta": 1}),
    ] {
        expect_err(
            svc.call::<_, Product>(methods::ADJUST_STOCK, &bad, Some(boss))
                .await,
            ErrorCode::InvalidArgument,
        );
    }

    // Reads are public; an inactive product is still there (not listed, not orderable).
    let got: Product = svc
        .call(methods::GET, &json!({"id": lamp.id}), None)
        .await
        .unwrap();
    assert_eq!(got.id, lamp.id);
    svc.call::<_, Product>(
        methods::UPDATE,
        &json!({"id": lamp.id, "active": false}),
        Some(boss),
    )
    .await
    .unwrap();
    let hidden: Product = svc
        .call(methods::GET, &json!({"id": lamp.id}), Some(alice))
        .await
        .unwrap();
    assert!(!hidden.active);
    let page: ProductPage = svc
        .call(methods::LIST, &json!({"q": "desk"}), None)
        .await
        .unwrap();
    assert_eq!(page.total, 0, "inactive products are not listed");
    // `null` is not a value of an optional field.
    expect_err(
        svc.call::<_, Product>(
            methods::UPDATE,
            &json!({"id": lamp.id, "price": null}),
            Some(boss),
        )
        .await,
        ErrorCode::InvalidArgument,
    );
    svc.stop().await;
}

#[tokio::test]
async fn list_filters_searches_and_pages() {
    let svc = Svc::start().await;
    let boss = admin();
    for (sku, name, category, price) in [
        ("TEA-1", "Green tea", "food", "4.20"),
        ("TEA-2", "Black tea 100%", "food", "3.10"),
        ("MUG-1", "Tea mug", "home", "8.00"),
    ] {
        svc.call::<_, Product>(
            methods::CREATE,
            &json!({"sku": sku, "name": name, "category": category, "price": price}),
            Some(boss),
        )
        .await
        .unwrap();
    }
    let svc_ref = &svc;
    let page = |q: Value| async move {
        let page: ProductPage = svc_ref.call(methods::LIST, &q, None).await.unwrap();
        page.products.into_iter().map(|p| p.sku).collect::<Vec<_>>()
    };
    // By name; the test catalog's five products come too.
    assert_eq!(page(json!({"category": "food"})).await, ["TEA-2", "TEA-1"]);
    assert_eq!(page(json!({"q": "tea"})).await, ["TEA-2", "TEA-1", "MUG-1"]);
    assert_eq!(page(json!({"q": "100%"})).await, ["TEA-2"], "% is literal");
    assert_eq!(
        page(json!({"q": "tea", "min_price": "4", "max_price": "8"})).await,
        ["TEA-1", "MUG-1"]
    );
    let first: ProductPage = svc
        .call(methods::LIST, &json!({"limit": 2}), None)
        .await
        .unwrap();
    assert_eq!((first.products.len(), first.total, first.limit), (2, 8, 2));
    let rest: ProductPage = svc
        .call(methods::LIST, &json!({"limit": 100, "offset": 2}), None)
        .await
        .unwrap();
    assert_eq!(rest.products.len(), 6);
    for bad in [
        json!({"limit": 0}),
        json!({"min_price": "-1"}),
        json!({"q": ""}),
        json!({"offset": -1}),
    ] {
        expect_err(
            svc.call::<_, ProductPage>(methods::LIST, &bad, None).await,
            ErrorCode::InvalidArgument,
        );
    }
    svc.stop().await;
}
