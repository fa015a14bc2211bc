//! The stored-replies table: the first delivery runs, every later one with the same key
//! gets its reply; a different body with that key is refused; old rows are pruned.

use proto_msgs::RequestContext;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use serde_json::{Value, json};
use svc_kit::db::{DbConfig, connect, migrate};
use svc_kit::entities::stored_reply;
use svc_kit::replies::{Idempotent, StoreError};
use svc_kit::testing::TestDb;

struct Migrator;
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        svc_kit::migration::migrations()
    }
}

async fn database() -> (TestDb, DatabaseConnection) {
    let test_db = TestDb::new().await;
    let db = connect(&DbConfig::new(test_db.url.clone())).await.unwrap();
    migrate::<Migrator>(&db).await.unwrap();
    (test_db, db)
}

/// One "call": claims, and if first, saves `reply` and commits.
async fn call(
    db: &DatabaseConnection,
    ctx: &RequestContext,
    body: &Value,
    reply: &Value,
) -> Result<(Value, bool), StoreError> {
    let once = Idempotent::of(ctx, "things.make", body)?;
    let txn = db.begin().await?;
    if let Some(stored) = once.claim::<_, Value>(&txn).await? {
        return Ok((stored, true));
    }
    once.save(&txn, reply).await?;
    txn.commit().await?;
    Ok((reply.clone(), false))
}

#[tokio::test]
async fn a_retry_gets_the_first_reply_and_a_new_body_is_refused() {
    let (_t, db) = database().await;
    let ctx = RequestContext::new().with_idempotency_key("k-1");
    let (first, replayed) = call(&db, &ctx, &json!({"n": 1}), &json!({"id": 1}))
        .await
        .unwrap();
    assert_eq!((first, replayed), (json!({"id": 1}), false));
    assert!(!ctx.replayed.is_set());

    let retry = RequestContext::new().with_idempotency_key("k-1");
    let (again, replayed) = call(&db, &retry, &json!({"n": 1}), &json!({"id": 2}))
        .await
        .unwrap();
    assert_eq!((again, replayed), (json!({"id": 1}), true));
    assert!(retry.replayed.is_set(), "the reply is marked as replayed");

    let other = RequestContext::new().with_idempotency_key("k-1");
    let err = call(&db, &other, &json!({"n": 2}), &json!({"id": 3}))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::KeyReused(_)), "{err:?}");
    assert_eq!(
        proto_msgs::RpcError::from(err).code,
        proto_msgs::ErrorCode::FailedPrecondition
    );

    // Without a client key, the message id is the key.
    let mut by_message = RequestContext::new();
    by_message.message_id = Some("m-1".into());
    call(&db, &by_message, &json!({"n": 1}), &json!({"id": 4}))
        .await
        .unwrap();
    let (redelivered, replayed) = call(&db, &by_message, &json!({"n": 1}), &json!({"id": 5}))
        .await
        .unwrap();
    assert_eq!((redelivered, replayed), (json!({"id": 4}), true));
    assert_eq!(stored_reply::Entity::find().count(&db).await.unwrap(), 2);
}

#[tokio::test]
async fn a_failed_call_stores_nothing() {
    let (_t, db) = database().await;
    let ctx = RequestContext::new().with_idempotency_key("k-2");
    let once = Idempotent::of(&ctx, "things.make", &json!({})).unwrap();
    let txn = db.begin().await.unwrap();
    assert!(once.claim::<_, Value>(&txn).await.unwrap().is_none());
    txn.rollback().await.unwrap();
    let (reply, replayed) = call(&db, &ctx, &json!({}), &json!("ok")).await.unwrap();
    assert_eq!((reply, replayed), (json!("ok"), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_run_once() {
    let (_t, db) = database().await;
    let ctx = RequestContext::new().with_idempotency_key("k-3");
    let once = Idempotent::of(&ctx, "things.make", &json!({})).unwrap();
    let first = db.begin().await.unwrap();
    assert!(once.claim::<_, Value>(&first).await.unwrap().is_none());
    // The duplicate waits on the claimed key until the first commits.
    let db2 = db.clone();
    let dup = tokio::spawn(async move {
        let ctx = RequestContext::new().with_idempotency_key("k-3");
        call(&db2, &ctx, &json!({}), &json!("second")).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!dup.is_finished(), "the duplicate waits");
    once.save(&first, &json!("first")).await.unwrap();
    first.commit().await.unwrap();
    let (reply, replayed) = dup.await.unwrap().unwrap();
    assert_eq!((reply, replayed), (json!("first"), true));
}

#[tokio::test]
async fn prune_deletes_what_is_older_than_the_window() {
    let (_t, db) = database().await;
    for key in ["old", "new"] {
        let ctx = RequestContext::new().with_idempotency_key(key);
        call(&db, &ctx, &json!({}), &json!(key)).await.unwrap();
    }
    db.execute_unprepared(
        "UPDATE stored_replies SET created_at = now() - interval '2 days' WHERE key = 'old';
         INSERT INTO processed_events (event_id, event_type, processed_at) VALUES
           (gen_random_uuid(), 'x', now() - interval '2 days'), (gen_random_uuid(), 'x', now())",
    )
    .await
    .unwrap();
    let pruned = svc_kit::replies::prune(&db, chrono::Utc::now() - chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let left: Vec<String> = stored_reply::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(left, vec!["new".to_owned()]);
    assert_eq!(
        svc_kit::entities::processed_event::Entity::find()
            .count(&db)
            .await
            .unwrap(),
        1
    );
}
