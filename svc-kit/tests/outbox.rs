//! Outbox relay and inbox against real PostgreSQL and RabbitMQ.

use proto_msgs::events::EventConsumer;
use proto_msgs::testing::{BrokerProxy, TestBus};
use proto_msgs::{CancellationToken, CloudEvent};
use sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use std::time::Duration;
use svc_kit::outbox::{OutboxRelay, OutboxSignal, enqueue, pending};
use svc_kit::testing::TestDb;
use tokio::sync::mpsc;

struct Migrator;
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        svc_kit::migration::migrations()
    }
}

async fn db(test_db: &TestDb) -> DatabaseConnection {
    let db = svc_kit::db::connect(&svc_kit::db::DbConfig::new(test_db.url.clone()))
        .await
        .unwrap();
    Migrator::up(&db, None).await.unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_while_the_broker_is_unreachable_then_arrive_exactly_once() {
    let bus = TestBus::new();
    bus.track("svc");
    let test_db = TestDb::new().await;
    let db = db(&test_db).await;
    let stop = CancellationToken::new();

    // The consumer records (id, n) in its own inbox table to prove dedup works too.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let inbox_db = db.clone();
    let consumer = EventConsumer::new(bus.config(), "svc")
        .on("thing.done", move |ev: CloudEvent<u32>| {
            let tx = tx.clone();
            let db = inbox_db.clone();
            async move {
                let txn = db.begin().await.map_err(svc_kit::db::handler_error)?;
                let first = svc_kit::inbox::first_delivery(&txn, &ev)
                    .await
                    .map_err(svc_kit::db::handler_error)?;
                txn.commit().await.map_err(svc_kit::db::handler_error)?;
                if first {
                    tx.send(ev.data).unwrap();
                }
                Ok(())
            }
        })
        .start(stop.clone())
        .await
        .unwrap();

    let proxy = BrokerProxy::start().await;
    proxy.cut();
    let signal = OutboxSignal::default();
    let relay = OutboxRelay::new(db.clone(), proxy.bus(&bus.config()), "svc", signal.clone())
        .poll_interval(Duration::from_millis(100))
        .spawn(stop.clone());

    for n in 0..5u32 {
        let txn = db.begin().await.unwrap();
        enqueue(
            &txn,
            &CloudEvent::new("svc", "thing.done", n.to_string(), n),
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
        signal.notify();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pending(&db).await.unwrap(), 5, "events wait in the outbox");
    assert!(rx.try_recv().is_err());

    proxy.restore();
    for n in 0..5u32 {
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(15), rx.recv())
                .await
                .unwrap(),
            Some(n),
            "in order"
        );
    }
    // Deliver a duplicate of an already handled event by hand: no second effect.
    let dup = CloudEvent::new("svc", "thing.done", "dup", 42u32);
    let txn = db.begin().await.unwrap();
    enqueue(&txn, &dup).await.unwrap();
    txn.commit().await.unwrap();
    signal.notify();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap(),
        Some(42)
    );
    proto_msgs::EventPublisher::new(bus.config(), "dup")
        .publish(&dup)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        rx.try_recv().is_err(),
        "redelivered event had no second effect"
    );
    assert_eq!(pending(&db).await.unwrap(), 0);

    stop.cancel();
    relay.await.unwrap();
    consumer.stopped().await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_waits_in_the_outbox_until_its_consumer_exists() {
    let bus = TestBus::new();
    bus.track("late");
    let test_db = TestDb::new().await;
    let db = db(&test_db).await;
    let stop = CancellationToken::new();
    let signal = OutboxSignal::default();
    let relay = OutboxRelay::new(db.clone(), bus.config(), "svc", signal.clone())
        .poll_interval(Duration::from_millis(100))
        .spawn(stop.clone());
    let txn = db.begin().await.unwrap();
    enqueue(&txn, &CloudEvent::new("svc", "thing.early", "1", 7u32))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    signal.notify();
    // No queue is bound yet (a fresh broker, the consumer not started): the event stays.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(pending(&db).await.unwrap(), 1, "kept, not dropped");

    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = EventConsumer::new(bus.config(), "late")
        .on("thing.early", move |ev: CloudEvent<u32>| {
            let tx = tx.clone();
            async move {
                tx.send(ev.data).unwrap();
                Ok(())
            }
        })
        .start(stop.clone())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .unwrap(),
        Some(7)
    );
    stop.cancel();
    relay.await.unwrap();
    consumer.stopped().await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbound_event_does_not_hold_up_the_ones_behind_it() {
    let bus = TestBus::new();
    bus.track("svc");
    let test_db = TestDb::new().await;
    let db = db(&test_db).await;
    let stop = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = EventConsumer::new(bus.config(), "svc")
        .on("thing.after", move |ev: CloudEvent<u32>| {
            let tx = tx.clone();
            async move {
                tx.send(ev.data).unwrap();
                Ok(())
            }
        })
        .start(stop.clone())
        .await
        .unwrap();
    let txn = db.begin().await.unwrap();
    enqueue(&txn, &CloudEvent::new("svc", "nobody.binds", "1", 1u32))
        .await
        .unwrap();
    enqueue(&txn, &CloudEvent::new("svc", "thing.after", "2", 2u32))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let signal = OutboxSignal::default();
    let relay = OutboxRelay::new(db.clone(), bus.config(), "svc", signal.clone())
        .poll_interval(Duration::from_millis(100))
        .spawn(stop.clone());
    signal.notify();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap(),
        Some(2)
    );
    // The unbound one stays (delivered later, when something binds it). The routed one
    // is deleted once the relay commits, a moment after the consumer got it.
    let mut left = pending(&db).await.unwrap();
    for _ in 0..50 {
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = pending(&db).await.unwrap();
    }
    assert_eq!(left, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "no duplicate of the routed event");
    stop.cancel();
    relay.await.unwrap();
    consumer.stopped().await;
    db.close().await.unwrap();
}
