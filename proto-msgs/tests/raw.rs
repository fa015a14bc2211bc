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

/// Short strings (a correlation id, a header name, a routing key) that are not UTF-8:
/// lapin's parser refuses them and would drop the server's connection, and the broker
/// would redeliver the request forever. The server's socket makes them valid first
/// (each bad byte becomes `?`), so the request is answered like any other, once.
#[tokio::test]
async fn short_strings_that_are_not_utf8_are_answered_once_and_break_nothing() {
    use proto_msgs::testing::TcpProxy;
    let bus = TestBus::new();
    let (stop, server) = greeter(&bus).await;

    // lapin can't send such bytes, so a proxy between it and the broker writes them.
    const MARK: &[u8] = b"@@BAD@@";
    const BAD: &[u8] = b"\xff\xfe\xfd\xc3\x28\xa0\xa1";
    let upstream = std::env::var("AMQP_PROXY_UPSTREAM").unwrap_or_else(|_| "127.0.0.1:5672".into());
    let proxy = TcpProxy::start_rewriting(&upstream, MARK, BAD).await;
    let mut through = bus.config();
    through.url = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let mut raw = RawRpc::connect(&through).await;

    let mark = std::str::from_utf8(MARK).unwrap();
    let reply = raw
        .call(
            "echo.greet",
            br#"{"name":"Ada"}"#,
            &format!("corr-{mark}"),
            &[(&format!("x-{mark}") as &str, "v"), ("x-request-id", "r-1")],
        )
        .await;
    assert_eq!(reply.correlation_id.as_deref(), Some("corr-????(??"));
    assert_eq!(reply.body["data"]["hello"], "Ada", "{:?}", reply.body);

    // A method (routing key) that is not UTF-8 is an unknown method, answered too.
    let reply = raw
        .call(&format!("echo.{mark}"), b"{}", "bad-method", &[])
        .await;
    assert_eq!(
        reply.body["error"]["code"], "unimplemented",
        "{:?}",
        reply.body
    );

    // The server kept its connection: nothing was redelivered, the next call is answered.
    let reply = raw
        .call("echo.greet", br#"{"name":"Bo"}"#, "after", &[])
        .await;
    assert_eq!(reply.correlation_id.as_deref(), Some("after"));
    assert_eq!(reply.body["data"]["hello"], "Bo");
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), raw.next_reply())
            .await
            .is_err(),
        "no second answer: the poison request was not redelivered"
    );

    raw.close().await;
    stop.cancel();
    server.stopped().await;
}

/// `amqps://`: the whole RPC path over TLS through a terminator in front of the real
/// broker, the server's certificate checked against the CA given in the URL; a client
/// told to trust another CA refuses the connection.
#[tokio::test]
async fn amqps_works_with_the_right_ca_and_is_refused_with_another() {
    use proto_msgs::testing::{TestCa, TlsFlavour, TlsProxy};
    use proto_msgs::{RpcClient, RpcClientConfig};
    let bus = TestBus::new();
    let ca = TestCa::new();
    let upstream = std::env::var("AMQP_PROXY_UPSTREAM").unwrap_or_else(|_| "127.0.0.1:5672".into());
    let proxy = TlsProxy::start(&upstream, &ca, TlsFlavour::Direct).await;
    let mut tls = bus.config();
    tls.url = format!(
        "amqps://guest:guest@localhost:{}/%2f?cacertfile={}",
        proxy.port(),
        ca.pem_file.display()
    );
    let stop = CancellationToken::new();
    bus.track("echo");
    let server = RpcServer::new(tls.clone(), "echo")
        .method(
            "echo.greet",
            |_ctx: RequestContext, req: Value| async move { Ok(json!({"hello": req["name"]})) },
        )
        .start(stop.clone())
        .await
        .unwrap();
    let client = RpcClient::connect(tls.clone(), RpcClientConfig::default())
        .await
        .expect("a client over TLS");
    let v: Value = client
        .call(
            "echo.greet",
            &json!({"name": "Ada"}),
            &RequestContext::new(),
        )
        .await
        .unwrap();
    assert_eq!(v["hello"], "Ada");

    let other = TestCa::new();
    let mut wrong = tls.clone();
    wrong.url = format!(
        "amqps://guest:guest@localhost:{}/%2f?cacertfile={}",
        proxy.port(),
        other.pem_file.display()
    );
    let err = wrong.connect("wrong CA").await.expect_err("refused");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    client.close().await;
    stop.cancel();
    server.stopped().await;
}
