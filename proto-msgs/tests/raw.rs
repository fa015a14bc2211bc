//! How other teams talk to our services: plain lapin, hand-written JSON, exact replies.

use proto_msgs::testing::{RawRpc, TestBus};
use proto_msgs::{CancellationToken, RequestContext, RpcServer};
use serde_json::{Value, json};

#[tokio::test]
async fn hand_written_request_gets_the_exact_reply() {
    let bus = TestBus::new();
    bus.track("echo");
    let stop = CancellationToken::new();
    let server = RpcServer::new(bus.config(), "echo")
        .method("echo.greet", |ctx: RequestContext, req: Value| async move {
            Ok(json!({"hello": req["name"], "request_id": ctx.request_id}))
        })
        .start(stop.clone())
        .await
        .unwrap();

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
