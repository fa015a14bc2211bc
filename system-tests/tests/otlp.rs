//! With OTEL_EXPORTER_OTLP_ENDPOINT set, spans are exported over OTLP/HTTP with the
//! trace id of the request. A fake collector in this test receives them.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts OTLP/HTTP posts and keeps (path, body) of each.
async fn fake_collector() -> (u16, Arc<Mutex<Vec<(String, Vec<u8>)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    store
                        .lock()
                        .unwrap()
                        .push((path, buf[end + 4..end + 4 + len].to_vec()));
                    buf.drain(..end + 4 + len);
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    (port, received)
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_with_the_request_trace_id() {
    let (collector, received) = fake_collector().await;
    let port = system_tests::harness::free_port();
    let bus = proto_msgs::testing::TestBus::new();
    let mut gateway = Command::new(system_tests::harness::binary("gateway"))
        .env("GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("BUS_PREFIX", bus.topology().prefix())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{collector}"),
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SIGTERM: the gateway drains, then flushes its span batch on the way out.
    let _ = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || gateway.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "gateway exited {status}");

    let posts = received.lock().unwrap().clone();
    assert!(
        posts.iter().any(|(path, _)| path == "/v1/traces"),
        "spans were posted to /v1/traces: {:?}",
        posts.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    let needle = hex_bytes(&trace);
    let has_trace = posts
        .iter()
        .any(|(_, body)| body.windows(16).any(|w| w == needle.as_slice()));
    assert!(has_trace, "an exported span carries the request's trace id");
    assert!(
        posts
            .iter()
            .any(|(_, body)| body.windows(7).any(|w| w == b"gateway")),
        "the service name is in the resource"
    );
}
