//! How other teams talk to our services: plain lapin, hand-written JSON, exact replies.

use proto_msgs::rpc::RunningServer;
use proto_msgs::testing::{RawRpc, TestBus};
use proto_msgs::{CancellationToken, RequestContext, RpcServer};
use serde_json::{Value, json};

/// An `echo` service whose `echo.greet` answers `{"hello": name, "request_id": …}`.
async fn greeter(bus: &TestBus) -> (CancellationToken, RunningServer) {
    bus.track("echo");
    let stop = CancellationToken::new();
    let server = RpcServer::new(bus.config(), "echo")
        .method("echo.greet", |ctx: RequestContext, req: Value| async move {
            Ok(json!({"hello": req["name"], "request_id": ctx.request_id}))
        })
        .start(stop.clone())
        .await
        .unwrap();
    (stop, server)
}

#[tokio::test]
async fn hand_written_request_gets_the_exact_reply() {
    let bus = TestBus::new();
    let (stop, server) = greeter(&bus).await;

    let mut raw = RawRpc::connect(&bus.config()).await;
    let headers = [("x-request-id", "raw-1")];
    let mut call = async |method: &str, body: &[u8], corr: &str| {
        let reply = raw.call(method, body, corr, &headers).await;
        (reply.correlation_id.unwrap_or_default(), reply.body)
    };

    assert_eq!(
        call("echo.greet", br#"{"name":"Ada"}"#, "c-1").await,
        (
            "c-1".into(),
            json!({"data": {"hello": "Ada", "request_id": "raw-1"}})
        )
    );

    let (corr, body) = call("echo.greet", b"{oops", "c-2").await;
    assert_eq!(corr, "c-2");
    assert_eq!(body["error"]["code"], "invalid_argument");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid request body")
    );

    let (_, body) = call("echo.nothing", b"{}", "c-3").await;
    assert_eq!(
        body,
        json!({"error": {"code": "unimplemented", "message": "unknown method \"echo.nothing\" for service \"echo\""}})
    );

    raw.close().await;
    stop.cancel();
    server.stopped().await;
}

/// AMQP strings are bytes: another client may send headers (or a correlation id) that
/// are not UTF-8. Such a request is answered like any other, never allowed to break the
/// server's connection (which would requeue it and loop forever).
#[tokio::test]
async fn headers_that_are_not_utf8_get_a_reply_and_break_nothing() {
    use lapin::types::{AMQPValue, FieldTable, LongString};
    let bus = TestBus::new();
    let (stop, server) = greeter(&bus).await;

    let mut raw = RawRpc::connect(&bus.config()).await;
    let mut headers = FieldTable::default();
    headers.insert(
        "x-request-id".into(),
        AMQPValue::LongString(LongString::from(vec![b'r', 0xff, 0xfe, b'1'])),
    );
    headers.insert(
        "x-trash".into(),
        AMQPValue::LongString(LongString::from(vec![0xc3, 0x28])),
    );
    let props = lapin::BasicProperties::default()
        .with_content_type("application/json".into())
        .with_correlation_id("bad-bytes".into())
        .with_headers(headers);
    raw.send("echo.greet", br#"{"name":"Ada"}"#, props).await;
    let reply = raw.next_reply().await;
    assert_eq!(reply.correlation_id.as_deref(), Some("bad-bytes"));
    assert_eq!(reply.body["data"]["hello"], "Ada", "{:?}", reply.body);

    // And the server is still there for the next, ordinary request.
    let reply = raw
        .call("echo.greet", br#"{"name":"Bo"}"#, "after", &[])
        .await;
    assert_eq!(reply.body["data"]["hello"], "Bo");

    raw.close().await;
    stop.cancel();
    server.stopped().await;
}
