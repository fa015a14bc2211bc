//! Order events through the outbox: orders are accepted while the broker is out of
//! reach for the relay, and each event arrives exactly once, in order, when it's back.

use crate::common::*;
use proto_msgs::events::EventConsumer;
use proto_msgs::events::types::{ORDER_CREATED, ORDER_UPDATED};
use proto_msgs::orders::{Order, OrderCreated, OrderStatus, OrderUpdated, methods};
use proto_msgs::testing::{BrokerProxy, TestBus};
use proto_msgs::{CancellationToken, CloudEvent, TraceParent};
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the watching consumer saw: (type, order id, event id, trace id, detail).
type Seen = (String, uuid::Uuid, uuid::Uuid, Option<String>, String);

/// A consumer for another service bound to `order.created` and `order.updated`.
async fn watch(
    bus: &TestBus,
    stop: &CancellationToken,
) -> (
    mpsc::UnboundedReceiver<Seen>,
    proto_msgs::events::RunningConsumer,
) {
    bus.track("orderwatch");
    let (tx, rx) = mpsc::unbounded_channel();
    let tx2 = tx.clone();
    let trace = |tp: &Option<String>| {
        tp.as_deref()
            .and_then(|t| t.parse::<TraceParent>().ok())
            .map(|t| t.trace_id().to_owned())
    };
    let consumer = EventConsumer::new(bus.config(), "orderwatch")
        .on(ORDER_CREATED, move |ev: CloudEvent<OrderCreated>| {
            let tx = tx.clone();
            async move {
                assert_eq!(
                    ev.subject.as_deref(),
                    Some(ev.data.order_id.to_string().as_str())
                );
                let _ = tx.send((
                    ev.event_type.clone(),
                    ev.data.order_id,
                    ev.id,
                    trace(&ev.traceparent),
                    format!("{} {}", ev.data.status, ev.data.total),
                ));
                Ok(())
            }
        })
        .on(ORDER_UPDATED, move |ev: CloudEvent<OrderUpdated>| {
            let tx = tx2.clone();
            async move {
                let _ = tx.send((
                    ev.event_type.clone(),
                    ev.data.order_id,
                    ev.id,
                    trace(&ev.traceparent),
                    format!(
                        "{}->{} {}",
                        ev.data.old_status, ev.data.new_status, ev.data.total
                    ),
                ));
                Ok(())
            }
        })
        .start(stop.clone())
        .await
        .unwrap();
    (rx, consumer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_the_broker_then_arrive_once_in_order() {
    let bus = TestBus::new();
    let watch_stop = CancellationToken::new();
    let (mut rx, watcher) = watch(&bus, &watch_stop).await;

    // The relay reaches the broker only through a proxy we can cut.
    let proxy = BrokerProxy::start().await;
    proxy.cut();
    let relay_bus = proxy.bus(&bus.config());
    let svc = Svc::start_on(bus, move |c| c.service.events_bus = Some(relay_bus)).await;

    let (alice, boss) = (user(), admin());
    let tp = TraceParent::new_root();
    let traced = ctx(Some(alice)).with_traceparent(tp.clone());
    let body = json!({"items": [{"sku": "PEN", "price": "0.10", "quantity": 3}]});
    let first: Order = svc.call_ctx(methods::CREATE, &body, &traced).await.unwrap();
    let second = svc.create(alice).await;
    let third = svc.create(alice).await;
    let confirmed = svc
        .set_status(boss, first.id, OrderStatus::Confirmed)
        .await
        .unwrap();
    assert_eq!(confirmed.status, OrderStatus::Confirmed);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        svc.count("SELECT count(*) FROM outbox").await,
        4,
        "events wait in the outbox"
    );
    assert!(rx.try_recv().is_err(), "nothing published while cut off");

    proxy.restore();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("events arrive after the broker is back")
            .unwrap();
        seen.push(ev);
    }
    let summary: Vec<(&str, uuid::Uuid, &str)> = seen
        .iter()
        .map(|(t, id, _, _, d)| (t.as_str(), *id, d.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("order.created", first.id, "PENDING 0.30"),
            ("order.created", second.id, "PENDING 12.34"),
            ("order.created", third.id, "PENDING 12.34"),
            ("order.updated", first.id, "PENDING->CONFIRMED 0.30"),
        ],
        "in the order they were committed"
    );
    // The trace of the request flows into its event.
    assert_eq!(seen[0].3.as_deref(), Some(tp.trace_id()));

    // Exactly once: nothing more comes, and the outbox is empty.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(rx.try_recv().is_err(), "no duplicates");
    assert_eq!(svc.count("SELECT count(*) FROM outbox").await, 0);

    // With the broker reachable, a new change is published at once.
    svc.set_status(alice, second.id, OrderStatus::Cancelled)
        .await
        .unwrap();
    let (t, id, _, _, d) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (t.as_str(), id, d.as_str()),
        ("order.updated", second.id, "PENDING->CANCELLED 12.34")
    );

    // The watcher stops before the topology is deleted with the service's bus.
    watch_stop.cancel();
    watcher.stopped().await;
    svc.stop().await;
}
