//! Event publisher and consumer against the real broker: delivery, DLQ, retries.

use lapin::options::BasicGetOptions;
use proto_msgs::events::{EventConsumer, EventPublisher, HandlerError, RetryPolicy};
use proto_msgs::testing::TestBus;
use proto_msgs::{CancellationToken, CloudEvent};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Thing {
    n: u32,
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

/// Reads one message from a queue, polling for up to 5 s.
async fn get_one(bus: &TestBus, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    let conn = proto_msgs::testing::lapin_connect(&bus.config(), "dlq reader").await;
    let ch = conn.create_channel().await.unwrap();
    for _ in 0..50 {
        if let Some(msg) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            return Some(msg);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn published_events_reach_the_consumer_in_order() {
    let bus = TestBus::new();
    bus.track("svc");
    let stop = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = EventConsumer::new(bus.config(), "svc")
        .on("thing.happened", move |ev: CloudEvent<Thing>| {
            let tx = tx.clone();
            async move {
                tx.send((ev.id, ev.data.n, ev.traceparent)).unwrap();
                Ok(())
            }
        })
        .start(stop.clone())
        .await
        .unwrap();
    let publisher = EventPublisher::new(bus.config(), "test publisher");
    let tp = proto_msgs::TraceParent::new_root();
    let mut ids = Vec::new();
    for n in 0..20 {
        let ev = CloudEvent::new("test", "thing.happened", n.to_string(), Thing { n })
            .with_trace(Some(&tp), None);
        ids.push(ev.id);
        publisher.publish(&ev).await.unwrap();
    }
    for (n, id) in ids.iter().enumerate() {
        let (got_id, got_n, got_tp) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got_id, got_n), (*id, n as u32));
        assert_eq!(got_tp, Some(tp.to_string()));
    }
    publisher.close().await;
    stop.cancel();
    consumer.stopped().await;
}

#[tokio::test]
async fn poison_events_go_straight_to_the_dlq() {
    let bus = TestBus::new();
    bus.track("svc");
    let stop = CancellationToken::new();
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let consumer = EventConsumer::new(bus.config(), "svc")
        .retry_policy(fast_retry())
        .on("thing.happened", move |_ev: CloudEvent<Thing>| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .start(stop.clone())
        .await
        .unwrap();

    let conn = proto_msgs::testing::lapin_connect(&bus.config(), "raw publisher").await;
    let ch = conn.create_channel().await.unwrap();
    let exchange = bus.topology().events_exchange();
    for body in [&b"not json at all"[..], br#"{"specversion":"1.0","id":"x"}"#, br#"{"specversion":"1.0","id":"6f1e1c3c-8f0e-4a43-9d55-7d2f5b1f0a11","source":"t","type":"thing.happened","time":"2026-01-01T00:00:00Z","data":{"n":"not a number"}}"#] {
        ch.basic_publish(exchange.as_str().into(), "thing.happened".into(), Default::default(), body, Default::default())
            .await
            .unwrap();
    }
    let dlq = bus.topology().events_dlq("svc");
    for _ in 0..3 {
        let msg = get_one(&bus, &dlq)
            .await
            .expect("poison message in the DLQ");
        assert!(
            msg.delivery
                .properties
                .headers()
                .as_ref()
                .is_some_and(|h| h.contains_key("x-death"))
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the handler never saw them"
    );
    let _ = conn.close(200, "bye".into()).await;
    stop.cancel();
    consumer.stopped().await;
}

#[tokio::test]
async fn failing_handler_is_retried_then_dead_lettered() {
    let bus = TestBus::new();
    bus.track("svc");
    let stop = CancellationToken::new();
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let consumer = EventConsumer::new(bus.config(), "svc")
        .retry_policy(fast_retry())
        .on("thing.happened", move |_ev: CloudEvent<Thing>| {
            a.fetch_add(1, Ordering::SeqCst);
            async { Err(HandlerError::Failed("always broken".into())) }
        })
        .start(stop.clone())
        .await
        .unwrap();
    let publisher = EventPublisher::new(bus.config(), "test publisher");
    let ev = CloudEvent::new("test", "thing.happened", "1", Thing { n: 1 });
    publisher.publish(&ev).await.unwrap();
    let msg = get_one(&bus, &bus.topology().events_dlq("svc"))
        .await
        .expect("dead-lettered");
    let back: CloudEvent<Thing> = serde_json::from_slice(&msg.delivery.data).unwrap();
    assert_eq!(back.id, ev.id);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "exactly max_attempts tries"
    );
    publisher.close().await;
    stop.cancel();
    consumer.stopped().await;
}

#[tokio::test]
async fn transient_failures_retry_until_the_handler_succeeds() {
    let bus = TestBus::new();
    bus.track("svc");
    let stop = CancellationToken::new();
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = EventConsumer::new(bus.config(), "svc")
        .retry_policy(fast_retry())
        .on("thing.happened", move |ev: CloudEvent<Thing>| {
            let n = a.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            async move {
                // More failures than max_attempts: transient ones never dead-letter.
                if n < 6 {
                    return Err(HandlerError::Transient("database is down".into()));
                }
                tx.send(ev.data.n).unwrap();
                Ok(())
            }
        })
        .start(stop.clone())
        .await
        .unwrap();
    let publisher = EventPublisher::new(bus.config(), "test publisher");
    publisher
        .publish(&CloudEvent::new(
            "test",
            "thing.happened",
            "1",
            Thing { n: 5 },
        ))
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap(),
        Some(5)
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 7);
    publisher.close().await;
    stop.cancel();
    consumer.stopped().await;
}

#[tokio::test]
async fn an_event_nobody_is_bound_to_is_an_error_not_a_silent_drop() {
    let bus = TestBus::new();
    let publisher = EventPublisher::new(bus.config(), "test publisher");
    let err = publisher
        .publish(&CloudEvent::new(
            "test",
            "nobody.listens",
            "1",
            Thing { n: 1 },
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, proto_msgs::BusError::Unroutable(ref t) if t == "nobody.listens"),
        "{err}"
    );
    publisher.close().await;
}

/// A listener gets the events of its types while it runs, on a queue of its own that
/// the broker names and deletes with the connection; `on_subscribed` runs once the
/// binding is in place, so what is published after it is seen.
#[tokio::test]
async fn a_listener_sees_events_after_it_subscribed_and_leaves_no_queue() {
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscribed = Arc::new(AtomicU32::new(0));
    let counted = subscribed.clone();
    let listener = EventConsumer::listener(bus.config(), "test listener")
        .on("thing.happened", move |ev: CloudEvent<Thing>| {
            let tx = tx.clone();
            async move {
                tx.send(ev.data.n).unwrap();
                Ok(())
            }
        })
        .on_subscribed(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .start(stop.clone())
        .await
        .unwrap();
    assert_eq!(subscribed.load(Ordering::SeqCst), 1);
    let publisher = EventPublisher::new(bus.config(), "test publisher");
    for n in 0..3 {
        let ev = CloudEvent::new("test", "thing.happened", n.to_string(), Thing { n });
        publisher.publish(&ev).await.unwrap();
    }
    // Another type is not bound: not delivered.
    let other = CloudEvent::new("test", "thing.other", "x", Thing { n: 99 });
    assert!(publisher.publish(&other).await.is_err());
    for n in 0..3 {
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, n);
    }
    publisher.close().await;
    stop.cancel();
    listener.stopped().await;
    // Its queue went with its connection: an event now reaches nobody.
    let publisher = EventPublisher::new(bus.config(), "test publisher");
    let late = CloudEvent::new("test", "thing.happened", "late", Thing { n: 7 });
    let mut unroutable = false;
    for _ in 0..50 {
        if publisher.publish(&late).await.is_err() {
            unroutable = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(unroutable, "the listener's queue outlived it");
    publisher.close().await;
}
