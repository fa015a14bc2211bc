//! One trace across the bus: a request sent with a `traceparent` produces log lines
//! carrying that trace id in the gateway, in order-svc's RPC handler and in user-svc's
//! consumer of the `order.created` event it caused. All three run in this process,
//! logging JSON into a buffer this test reads.

use gateway::testing::Gw;
use proto_msgs::testing::TestBus;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn lines(&self) -> Vec<Value> {
        let text = self
            .0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Spans of a JSON log line (outermost first) that have the given name.
fn span<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["spans"].as_array()?.iter().find(|s| s["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_id_from_http_through_rpc_to_the_event_consumer() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter("info")
        .with_writer(capture.clone())
        .init();

    let bus = TestBus::new();
    let users = user_svc::testing::spawn(&bus, |_| {}).await;
    let orders = order_svc::testing::spawn_with_demo_catalog(&bus, |_| {}).await;
    let gw = Gw::start(gateway::Config::for_tests(bus.config())).await;
    let base = gw.base.clone();
    let http = gw.http.clone();

    let email = format!("trace-{}@example.com", uuid::Uuid::new_v4().simple());
    let r = http
        .post(format!("{base}/users/register"))
        .json(&json!({"email": email, "password": "password-123", "name": "T"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let login: Value = http
        .post(format!("{base}/users/login"))
        .json(&json!({"email": email, "password": "password-123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();

    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let r = http
        .post(format!("{base}/orders"))
        .bearer_auth(&token)
        .header("traceparent", &traceparent)
        .json(&json!({"items": [{"sku": "WIDGET", "price": "1.50", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Wait until user-svc applied the order.created event caused by that request.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let me: Value = http
            .get(format!("{base}/users/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if me["order_stats"]["order_count"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the event never reached user-svc: {me}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let lines = capture.lines();
    let traced: Vec<&Value> = lines
        .iter()
        .filter(|l| l.to_string().contains(&trace_id))
        .collect();
    let gateway_line = traced
        .iter()
        .find(|l| span(l, "http").is_some_and(|s| s["trace_id"] == trace_id.as_str()));
    let rpc_line = traced.iter().find(|l| {
        span(l, "rpc").is_some_and(|s| {
            s["trace_id"] == trace_id.as_str()
                && s["method"] == "orders.create"
                && s["service"] == "orders"
        })
    });
    let consumer_line = traced.iter().find(|l| {
        span(l, "event").is_some_and(|s| {
            s["trace_id"] == trace_id.as_str()
                && s["event_type"] == "order.created"
                && s["service"] == "users"
        })
    });
    let dump = || {
        traced
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        gateway_line.is_some(),
        "a gateway log line carries the trace id:\n{}",
        dump()
    );
    assert!(
        rpc_line.is_some(),
        "an order-svc RPC log line carries the trace id:\n{}",
        dump()
    );
    assert!(
        consumer_line.is_some(),
        "a user-svc event-consumer log line carries the trace id:\n{}",
        dump()
    );
    // And the access log line of that request carries it too.
    assert!(
        traced
            .iter()
            .any(|l| span(l, "http").is_some() && l["fields"]["status"].as_u64() == Some(201)),
        "the access log line of the request is in the trace:\n{}",
        dump()
    );

    gw.stop().await;
    users.stop().await;
    orders.stop().await;
}
