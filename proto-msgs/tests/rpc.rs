//! RpcClient + RpcServer against the real broker. Each test has its own topology prefix.

use futures::future::join_all;
use proto_msgs::testing::TestBus;
use proto_msgs::{
    CancellationToken, ErrorCode, RequestContext, RpcClient, RpcClientConfig, RpcError, RpcServer,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Echo {
    n: u64,
    text: String,
}

async fn echo_server(bus: &TestBus, shutdown: CancellationToken) -> proto_msgs::rpc::RunningServer {
    bus.track("echo");
    RpcServer::new(bus.config(), "echo")
        .method("echo.echo", |_ctx, req: Echo| async move { Ok(req) })
        .method("echo.whoami", |ctx: RequestContext, _req: serde_json::Value| async move {
            let actor = ctx.require_actor()?;
            Ok(serde_json::json!({"id": actor.id, "role": actor.role, "request_id": ctx.request_id}))
        })
        .method("echo.sleep", |_ctx, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ms)
        })
        .method("echo.panic", |_ctx, _req: serde_json::Value| async move {
            if true {
                panic!("boom");
            }
            Ok(())
        })
        .method("echo.fail", |_ctx, _req: serde_json::Value| async move {
            Err::<(), _>(RpcError::failed_precondition("nope").with_details(serde_json::json!({"why": 1})))
        })
        .start(shutdown)
        .await
        .expect("server starts")
}

async fn client(bus: &TestBus) -> RpcClient {
    RpcClient::connect(bus.config(), RpcClientConfig::default())
        .await
        .expect("client connects")
}

#[tokio::test]
async fn typed_round_trip() {
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let server = echo_server(&bus, stop.clone()).await;
    let client = client(&bus).await;
    let req = Echo {
        n: 7,
        text: "héllo".into(),
    };
    let back: Echo = client
        .call("echo.echo", &req, &RequestContext::new())
        .await
        .unwrap();
    assert_eq!(back, req);
    let err = client
        .call::<_, ()>("echo.fail", &serde_json::json!({}), &RequestContext::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::FailedPrecondition);
    assert_eq!(err.details, Some(serde_json::json!({"why": 1})));
    let health: serde_json::Value = client
        .call(
            "echo.sys.health",
            &serde_json::json!({}),
            &RequestContext::new(),
        )
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    client.close().await;
    stop.cancel();
    server.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_each_get_their_own_reply() {
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let server = echo_server(&bus, stop.clone()).await;
    let client = client(&bus).await;
    let calls = (0..1000u64).map(|n| {
        let client = client.clone();
        tokio::spawn(async move {
            let req = Echo {
                n,
                text: format!("call {n}"),
            };
            let ctx = RequestContext::new().with_request_id(format!("r{n}"));
            let back: Echo = client.call("echo.echo", &req, &ctx).await.expect("reply");
            assert_eq!(back, req, "reply matched to its caller");
        })
    });
    for r in join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(client.pending(), 0, "no waiter left behind");
    stop.cancel();
    server.stopped().await;
}

#[tokio::test]
async fn deadline_exceeded_removes_the_waiter() {
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let server = echo_server(&bus, stop.clone()).await;
    let client = client(&bus).await;
    let mut ctx = RequestContext::new();
    ctx.deadline = Some(SystemTime::now() + Duration::from_millis(200));
    let started = Instant::now();
    let err = client
        .call::<_, u64>("echo.sleep", &2000u64, &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(client.pending(), 0);
    // The server still answers afterwards.
    let ok: u64 = client
        .call("echo.sleep", &1u64, &RequestContext::new())
        .await
        .unwrap();
    assert_eq!(ok, 1);
    stop.cancel();
    server.stopped().await;
}

#[tokio::test]
async fn no_consumer_is_unavailable_at_once() {
    let bus = TestBus::new();
    let client = client(&bus).await;
    let started = Instant::now();
    let err = client
        .call::<_, serde_json::Value>(
            "nobody.home",
            &serde_json::json!({}),
            &RequestContext::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable, "{err}");
    // Well under the 5 s default deadline.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.pending(), 0);
}

/// AMQP names are at most 255 bytes (a longer short string cannot be encoded): a method that is
/// too long, or whose queue name would be, is refused before anything is sent.
#[tokio::test]
async fn methods_too_long_for_amqp_are_refused_not_a_panic() {
    let bus = TestBus::new();
    let client = client(&bus).await;
    let ctx = RequestContext::new();
    for method in [
        "x".repeat(256),
        "y".repeat(250),
        format!("{}.get", "z".repeat(240)),
    ] {
        let err = client
            .call::<_, serde_json::Value>(&method, &serde_json::json!({}), &ctx)
            .await
            .expect_err("refused");
        assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");
    }
    // And the client still works.
    let err = client
        .call::<_, serde_json::Value>("nobody.home", &serde_json::json!({}), &ctx)
        .await
        .expect_err("nobody consumes it");
    assert_eq!(err.code, ErrorCode::Unavailable, "{err}");
    assert_eq!(client.pending(), 0);
}

#[tokio::test]
async fn bad_requests_get_error_replies_and_the_server_keeps_answering() {
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let server = echo_server(&bus, stop.clone()).await;
    let client = client(&bus).await;
    let ctx = RequestContext::new();

    let raw = client
        .call_raw("echo.echo", b"{not json".to_vec(), &ctx)
        .await
        .unwrap();
    let err = proto_msgs::rpc::client::decode_reply::<Echo>(&raw).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);

    let err = client
        .call::<_, Echo>("echo.echo", &serde_json::json!({"n": "x"}), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);

    let err = client
        .call::<_, ()>("echo.nosuch", &serde_json::json!({}), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unimplemented);

    let err = client
        .call::<_, ()>("echo.panic", &serde_json::json!({}), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
    assert!(!err.message.contains("boom"), "internals are not leaked");

    let err = client
        .call::<_, serde_json::Value>("echo.whoami", &serde_json::json!({}), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);

    let actor = proto_msgs::Actor {
        id: uuid::Uuid::new_v4(),
        role: proto_msgs::Role::Admin,
    };
    let who: serde_json::Value = client
        .call(
            "echo.whoami",
            &serde_json::json!({}),
            &RequestContext::new()
                .with_actor(actor)
                .with_request_id("rid-1"),
        )
        .await
        .unwrap();
    assert_eq!(who["id"], actor.id.to_string());
    assert_eq!(who["role"], "admin");
    assert_eq!(who["request_id"], "rid-1");

    let back: Echo = client
        .call(
            "echo.echo",
            &Echo {
                n: 1,
                text: "still here".into(),
            },
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(back.n, 1);
    stop.cancel();
    server.stopped().await;
}

#[tokio::test]
async fn graceful_stop_answers_what_it_holds() {
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let server = echo_server(&bus, stop.clone()).await;
    let client = client(&bus).await;
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call::<_, u64>("echo.sleep", &300u64, &RequestContext::new())
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel();
    server.stopped().await;
    for c in calls {
        assert_eq!(
            c.await.unwrap().unwrap(),
            300,
            "held requests are answered before exit"
        );
    }
}

#[tokio::test]
async fn a_queue_without_consumers_is_unavailable_at_once_and_recovers() {
    let bus = TestBus::new();
    let client = client(&bus).await;
    let stop = CancellationToken::new();
    let server = echo_server(&bus, stop.clone()).await;
    let v: Echo = client
        .call(
            "echo.echo",
            &Echo {
                n: 1,
                text: "a".into(),
            },
            &RequestContext::new(),
        )
        .await
        .unwrap();
    assert_eq!(v.n, 1);
    // The server stops; its durable queue stays, with no consumer.
    stop.cancel();
    server.stopped().await;
    let started = Instant::now();
    let mut fast_unavailable = false;
    while started.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        let err = client
            .call::<_, Echo>(
                "echo.echo",
                &Echo {
                    n: 2,
                    text: "b".into(),
                },
                &RequestContext::new(),
            )
            .await
            .unwrap_err();
        if err.code == ErrorCode::Unavailable && t.elapsed() < Duration::from_secs(1) {
            fast_unavailable = true;
            break;
        }
        assert!(
            matches!(
                err.code,
                ErrorCode::Unavailable | ErrorCode::DeadlineExceeded
            ),
            "{err}"
        );
    }
    assert!(
        fast_unavailable,
        "a call to a queue nobody consumes fails fast"
    );
    // A new instance comes back: calls succeed again shortly.
    let stop = CancellationToken::new();
    let server = echo_server(&bus, stop.clone()).await;
    let started = Instant::now();
    loop {
        match client
            .call::<_, Echo>(
                "echo.echo",
                &Echo {
                    n: 3,
                    text: "c".into(),
                },
                &RequestContext::new(),
            )
            .await
        {
            Ok(v) => {
                assert_eq!(v.n, 3);
                break;
            }
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(5),
                "not back after 5 s: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    server.stopped().await;
}

#[tokio::test]
async fn an_unroutable_method_is_returned_and_fails_fast() {
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let server = echo_server(&bus, stop.clone()).await;
    let client = client(&bus).await;
    // The queue exists and is consumed, but nothing binds `echo.a.b` (bindings are
    // `echo.*` and `echo.sys.*`): the broker returns the message.
    let started = Instant::now();
    let err = client
        .call::<_, serde_json::Value>("echo.a.b", &serde_json::json!({}), &RequestContext::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.pending(), 0);
    stop.cancel();
    server.stopped().await;
}

/// Reply queues take writes from anyone allowed on the default exchange, so a client
/// that knows who answers for a service takes a reply only from that broker account
/// (its `user_id`, which the broker checks): a reply from any other is dropped, and the
/// call runs into its deadline as if nobody had answered.
#[tokio::test]
async fn a_reply_from_an_account_that_does_not_answer_for_the_method_is_dropped() {
    use proto_msgs::rpc::Repliers;
    use proto_msgs::testing::TestAccount;
    let bus = TestBus::new();
    let impostor = TestAccount::create("impostor").await;
    let stop = CancellationToken::new();
    bus.track("echo");
    // The server runs as the impostor account.
    let server = RpcServer::new(impostor.bus(&bus.config()), "echo")
        .method(
            "echo.echo",
            |_ctx, v: serde_json::Value| async move { Ok(v) },
        )
        .start(stop.clone())
        .await
        .unwrap();
    let expecting = |account: &str| RpcClientConfig {
        repliers: Repliers::parse(&format!("echo={account}")).unwrap(),
        ..Default::default()
    };
    let strict = RpcClient::connect(bus.config(), expecting("guest"))
        .await
        .unwrap();
    let mut ctx = RequestContext::new();
    ctx.deadline = Some(SystemTime::now() + Duration::from_millis(700));
    let err = strict
        .call::<_, u32>("echo.echo", &1u32, &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::DeadlineExceeded, "{err}");
    assert_eq!(strict.pending(), 0);

    // The same server is answered when it is the account that answers for `echo`.
    let trusting = RpcClient::connect(bus.config(), expecting(&impostor.name))
        .await
        .unwrap();
    let v: u32 = trusting
        .call("echo.echo", &2u32, &RequestContext::new())
        .await
        .unwrap();
    assert_eq!(v, 2);
    strict.close().await;
    trusting.close().await;
    stop.cancel();
    server.stopped().await;
}

/// A request naming an actor is served only from an account trusted to vouch for users.
#[tokio::test]
async fn actor_headers_from_an_untrusted_account_are_refused() {
    use proto_msgs::rpc::Trust;
    use proto_msgs::testing::TestAccount;
    let bus = TestBus::new();
    let gateway = TestAccount::create("gateway").await;
    let stop = CancellationToken::new();
    bus.track("echo");
    let server =
        RpcServer::new(bus.config(), "echo")
            .trust(Trust::Accounts(vec![gateway.name.clone()]))
            .method(
                "echo.whoami",
                |ctx: RequestContext, _req: serde_json::Value| async move {
                    Ok(ctx.require_actor()?.id)
                },
            )
            .start(stop.clone())
            .await
            .unwrap();
    let actor = proto_msgs::Actor {
        id: uuid::Uuid::new_v4(),
        role: proto_msgs::Role::Admin,
    };
    let ctx = RequestContext::new().with_actor(actor);
    let untrusted = client(&bus).await;
    let err = untrusted
        .call::<_, uuid::Uuid>("echo.whoami", &serde_json::json!({}), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied, "{err}");
    let trusted = RpcClient::connect(gateway.bus(&bus.config()), RpcClientConfig::default())
        .await
        .unwrap();
    let id: uuid::Uuid = trusted
        .call("echo.whoami", &serde_json::json!({}), &ctx)
        .await
        .unwrap();
    assert_eq!(id, actor.id);
    untrusted.close().await;
    trusted.close().await;
    stop.cancel();
    server.stopped().await;
}
