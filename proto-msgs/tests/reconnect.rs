//! Connections dropped under the client and server (as in a broker restart, but only
//! for this test's connections, through the management API): both recover by themselves.

use proto_msgs::events::{EventConsumer, EventPublisher};
use proto_msgs::testing::TestBus;
use proto_msgs::{
    CancellationToken, CloudEvent, ErrorCode, RequestContext, RpcClient, RpcClientConfig, RpcServer,
};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_server_and_consumer_recover_after_their_connections_drop() {
    let bus = TestBus::new();
    bus.track("echo");
    let stop = CancellationToken::new();
    let server = RpcServer::new(bus.config(), "echo")
        .method(
            "echo.echo",
            |_ctx, v: serde_json::Value| async move { Ok(v) },
        )
        .start(stop.clone())
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = EventConsumer::new(bus.config(), "echo")
        .on("echo.said", move |ev: CloudEvent<u32>| {
            let tx = tx.clone();
            async move {
                tx.send(ev.data).unwrap();
                Ok(())
            }
        })
        .start(stop.clone())
        .await
        .unwrap();
    let client = RpcClient::connect(bus.config(), RpcClientConfig::default())
        .await
        .unwrap();
    let publisher = EventPublisher::new(bus.config(), "publisher");
    let ctx = RequestContext::new();
    let v: u32 = client.call("echo.echo", &1u32, &ctx).await.unwrap();
    assert_eq!(v, 1);
    publisher
        .publish(&CloudEvent::new("t", "echo.said", "1", 1u32))
        .await
        .unwrap();
    assert_eq!(rx.recv().await, Some(1));

    // Server, consumer, client and publisher: four connections.
    let dropped = bus.drop_connections(4).await;
    assert!(dropped >= 4, "dropped {dropped} connections");

    // While down, calls fail fast with unavailable rather than hanging.
    let started = Instant::now();
    let mut recovered = false;
    while started.elapsed() < Duration::from_secs(30) {
        let t = Instant::now();
        match client.call::<_, u32>("echo.echo", &2u32, &ctx).await {
            Ok(2) => {
                recovered = true;
                break;
            }
            Ok(other) => panic!("wrong reply {other}"),
            Err(e) => {
                assert!(matches!(e.code, ErrorCode::Unavailable), "{e}");
                assert!(t.elapsed() < Duration::from_secs(2), "failed fast");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "client and server reconnected");

    // The publisher reconnects on its next publish; the consumer has re-subscribed.
    let mut published = false;
    for _ in 0..50 {
        if publisher
            .publish(&CloudEvent::new("t", "echo.said", "2", 2u32))
            .await
            .is_ok()
        {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(published);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .unwrap(),
        Some(2)
    );

    client.close().await;
    publisher.close().await;
    stop.cancel();
    server.stopped().await;
    consumer.stopped().await;
}
