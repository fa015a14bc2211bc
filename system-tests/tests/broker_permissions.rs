//! deploy/rabbitmq/definitions.json is what the compose broker loads: one broker user
//! per service with least-privilege permissions, and the topology pre-declared. Here
//! the same definitions go into a throwaway vhost on the local broker (users renamed),
//! the three binaries run as those users via `make up`, and the main flow must work —
//! while each user is refused what it has no business doing.

use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use proto_msgs::testing::management_url;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use svc_kit::testing::TestDb;
use system_tests::make::{MakeSystem, text};

/// A vhost and users made from the definitions file, deleted on drop.
struct BrokerSetup {
    vhost: String,
    users: Vec<String>,
}

impl Drop for BrokerSetup {
    fn drop(&mut self) {
        let (vhost, users) = (self.vhost.clone(), self.users.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    let http = reqwest::Client::new();
                    let base = management_url();
                    let _ = http
                        .delete(format!("{base}/api/vhosts/{}", enc(&vhost)))
                        .send()
                        .await;
                    for u in users {
                        let _ = http
                            .delete(format!("{base}/api/users/{}", enc(&u)))
                            .send()
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

fn enc(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

fn amqp_url(user: &str, password: &str, vhost: &str) -> String {
    format!("amqp://{user}:{password}@127.0.0.1:5672/{}", enc(vhost))
}

async fn setup(id: &str) -> (BrokerSetup, String) {
    let defs: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/rabbitmq/definitions.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let base = management_url();
    let vhost = format!("test-perm-{id}");
    let password = format!("pw-{id}");
    let setup = BrokerSetup {
        vhost: vhost.clone(),
        users: Vec::new(),
    };
    let r = http
        .put(format!("{base}/api/vhosts/{}", enc(&vhost)))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create vhost: {}", r.status());
    let mut setup = setup;
    for perm in defs["permissions"].as_array().unwrap() {
        let name = perm["user"].as_str().unwrap();
        if name == "admin" {
            continue;
        }
        let user = format!("{name}-{id}");
        let r = http
            .put(format!("{base}/api/users/{}", enc(&user)))
            .json(&json!({"password": password, "tags": ""}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        setup.users.push(user.clone());
        let r = http
            .put(format!("{base}/api/permissions/{}/{}", enc(&vhost), enc(&user)))
            .json(&json!({"configure": perm["configure"], "write": perm["write"], "read": perm["read"]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    for perm in defs["topic_permissions"].as_array().unwrap() {
        let user = format!("{}-{id}", perm["user"].as_str().unwrap());
        let r = http
            .put(format!(
                "{base}/api/topic-permissions/{}/{}",
                enc(&vhost),
                enc(&user)
            ))
            .json(&json!({"exchange": perm["exchange"], "write": perm["write"], "read": perm["read"]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "topic permission: {}", r.status());
    }
    // The topology part, as the compose broker loads it.
    let mut topology = json!({
        "exchanges": defs["exchanges"], "queues": defs["queues"], "bindings": defs["bindings"],
    });
    for part in ["exchanges", "queues", "bindings"] {
        for item in topology[part].as_array_mut().unwrap() {
            item["vhost"] = json!(vhost);
        }
    }
    let r = http
        .post(format!("{base}/api/definitions/{}", enc(&vhost)))
        .json(&topology)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "import definitions: {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );
    (setup, password)
}

/// True when the broker refuses the operation (the channel closes with 403).
async fn refused<F, Fut>(url: &str, op: F) -> bool
where
    F: FnOnce(lapin::Channel) -> Fut,
    Fut: std::future::Future<Output = lapin::Result<()>>,
{
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let result = op(ch).await;
    let _ = conn.close(200, "bye".into()).await;
    match result {
        Err(e) => e.to_string().contains("ACCESS_REFUSED") || e.to_string().contains("403"),
        Ok(()) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_work_with_least_privilege_broker_users_and_nothing_more() {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let (broker, password) = setup(&id).await;
    let vhost = broker.vhost.clone();
    let url = |name: &str| amqp_url(&format!("{name}-{id}"), &password, &vhost);
    let users_db = TestDb::new().await;
    let orders_db = TestDb::new().await;
    let system = MakeSystem::new(vec![
        ("USERS_DB".into(), users_db.name.clone()),
        ("ORDERS_DB".into(), orders_db.name.clone()),
        ("BUS_PREFIX".into(), String::new()),
        ("AMQP_URL".into(), url("gateway")),
        ("GATEWAY_AMQP_URL".into(), url("gateway")),
        ("USER_SVC_AMQP_URL".into(), url("user-svc")),
        ("ORDER_SVC_AMQP_URL".into(), url("order-svc")),
        ("ADMIN_EMAIL".into(), "perm-admin@example.com".into()),
        ("ADMIN_PASSWORD".into(), "perm-admin-password".into()),
        // Who may vouch for users, and who answers for which service.
        ("TRUSTED_CALLERS".into(), format!("gateway-{id}")),
        (
            "RPC_REPLIERS".into(),
            format!("users=user-svc-{id},orders=order-svc-{id},catalog=order-svc-{id}"),
        ),
    ]);
    let up = system.make("up");
    assert!(
        up.status.success(),
        "make up as least-privilege users failed:\n{}\n--- user-svc\n{}\n--- order-svc\n{}\n--- gateway\n{}",
        text(&up),
        system.log("user-svc"),
        system.log("order-svc"),
        system.log("gateway")
    );

    // The main flow, end to end, through the broker users of the compose file.
    let base = system.base_url();
    let http = reqwest::Client::new();
    system_tests::http::main_flow(
        &http,
        &base,
        "perm-admin@example.com",
        "perm-admin-password",
    )
    .await
    .unwrap();
    let email = format!("perm-{id}@example.com");
    let r = http
        .post(format!("{base}/users/register"))
        .json(&json!({"email": email, "password": "perm-password-1", "name": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Readiness asks both services over the bus with these accounts.
    let ready: Value = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ok", "{ready}");

    // The gateway learns revocations under its own account: a logout is refused at
    // the gateway within 2 s (its listener queue and binding are allowed).
    let login: Value = http
        .post(format!("{base}/users/login"))
        .json(&json!({"email": email, "password": "perm-password-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let r = http
        .post(format!("{base}/users/logout"))
        .json(&json!({"refresh_token": login["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let logged_out = Instant::now();
    loop {
        let r = http
            .get(format!("{base}/users/me"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        if r.status() == 401 {
            break;
        }
        assert!(
            logged_out.elapsed() < Duration::from_secs(2),
            "a logged-out token still works: gateway log:\n{}",
            system.log("gateway")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Least privilege: what each user must NOT do.
    let publish_events = |ch: lapin::Channel| async move {
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        ch.basic_publish(
            "events".into(),
            "user.registered".into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await?
        .await?;
        Ok(())
    };
    assert!(
        refused(&url("gateway"), publish_events).await,
        "the gateway cannot publish events"
    );
    let consume = |queue: &'static str| {
        move |ch: lapin::Channel| async move {
            ch.basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
            Ok(())
        }
    };
    assert!(
        refused(&url("gateway"), consume("users.rpc")).await,
        "the gateway cannot read a service's requests"
    );
    // The gateway may bind the revocation events to a queue of its own, nothing else.
    let spy_events = |ch: lapin::Channel| async move {
        let q = ch
            .queue_declare(
                "".into(),
                lapin::options::QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        ch.queue_bind(
            q.name().clone(),
            "events".into(),
            "#".into(),
            lapin::options::QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    };
    assert!(
        refused(&url("gateway"), spy_events).await,
        "the gateway cannot see every event"
    );
    assert!(
        refused(&url("user-svc"), consume("orders.rpc")).await,
        "user-svc cannot read order-svc's requests"
    );
    assert!(
        refused(&url("order-svc"), consume("users.events")).await,
        "order-svc cannot read user-svc's inbox"
    );

    attacks_are_refused_or_ignored(&system, &url, &id).await;

    // The gateway's consumer probe (a passive declare) works under its account: with
    // user-svc stopped, its routes answer 503 at once instead of waiting for the deadline.
    let pid = std::fs::read_to_string(system.run_dir().join("pids/user-svc.pid")).unwrap();
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while system_tests::make::alive(pid.trim().parse().unwrap()) {
        assert!(Instant::now() < deadline, "user-svc did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The gateway notices within its probe interval (250 ms); give it a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    let r = http
        .post(format!("{base}/users/login"))
        .json(&json!({"email": email, "password": "perm-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "gateway log:\n{}", system.log("gateway"));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "503 came after {:?}",
        t.elapsed()
    );

    let down = system.make("down");
    assert!(down.status.success(), "{}", text(&down));
    drop(system);
    drop(broker);
}

/// The attacks a service's account could try with the shipped definitions: each is
/// refused by the broker or ignored by the receiver, and the system keeps serving.
async fn attacks_are_refused_or_ignored(
    system: &MakeSystem,
    url: &impl Fn(&str) -> String,
    id: &str,
) {
    use lapin::options::{ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions};
    let base = system.base_url();
    let http = reqwest::Client::new();

    // 1. order-svc's account may declare a queue of its own name space, but not bind it
    //    to `rpc` with `#` to read every request (users.login bodies among them).
    let spy = |ch: lapin::Channel| async move {
        ch.queue_declare(
            "orders.spy".into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            "orders.spy".into(),
            "rpc".into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    };
    assert!(
        refused(&url("order-svc"), spy).await,
        "order-svc's account cannot bind a spy queue to every request"
    );
    let spy_users = |ch: lapin::Channel| async move {
        ch.queue_bind(
            "orders.rpc".into(),
            "rpc".into(),
            "users.*".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    };
    assert!(
        refused(&url("order-svc"), spy_users).await,
        "order-svc's account cannot bind user-svc's methods to its own queue"
    );

    // 2. No service may delete (or declare) the shared exchanges.
    for account in ["user-svc", "order-svc", "gateway"] {
        for exchange in ["rpc", "events"] {
            let delete = move |ch: lapin::Channel| async move {
                ch.exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                    .await
            };
            assert!(
                refused(&url(account), delete).await,
                "{account} cannot delete {exchange}"
            );
        }
    }

    // 3. user-svc's account publishes straight into orders.rpc (through the default
    //    exchange, which it must be able to use for its replies) claiming to be an
    //    admin: order-svc answers permission_denied and changes nothing.
    let user = system_tests::http::Session::new(&base, http.clone())
        .await
        .expect("a user");
    let order_id = user.create_order().await.expect("an order to attack");
    let admin_token = system_tests::http::login(
        &http,
        &base,
        "perm-admin@example.com",
        "perm-admin-password",
    )
    .await
    .expect("admin login");
    let conn = Connection::connect(&url("user-svc"), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let replies = ch
        .queue_declare(
            "users.attacker".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .clone();
    let mut consumer = ch
        .basic_consume(
            replies.clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut headers = FieldTable::default();
    headers.insert(
        "x-actor-id".into(),
        lapin::types::AMQPValue::LongString(uuid::Uuid::new_v4().to_string().into()),
    );
    headers.insert(
        "x-actor-role".into(),
        lapin::types::AMQPValue::LongString("admin".into()),
    );
    let body = json!({"id": order_id, "status": "SHIPPED"}).to_string();
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_type("orders.update_status".into())
        .with_correlation_id("attack-1".into())
        .with_reply_to(replies.clone())
        .with_user_id(format!("user-svc-{id}").into())
        .with_headers(headers.clone());
    ch.basic_publish(
        "".into(),
        "orders.rpc".into(),
        BasicPublishOptions::default(),
        body.as_bytes(),
        props,
    )
    .await
    .unwrap();
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        futures::StreamExt::next(&mut consumer),
    )
    .await
    .expect("a reply")
    .expect("consumer open")
    .expect("delivery");
    let reply: Value = serde_json::from_slice(&reply.data).unwrap();
    assert_eq!(reply["error"]["code"], "permission_denied", "{reply}");
    // Without a user_id at all, the same.
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_type("orders.update_status".into())
        .with_correlation_id("attack-2".into())
        .with_reply_to(replies.clone())
        .with_headers(headers.clone());
    ch.basic_publish(
        "".into(),
        "orders.rpc".into(),
        BasicPublishOptions::default(),
        body.as_bytes(),
        props,
    )
    .await
    .unwrap();
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        futures::StreamExt::next(&mut consumer),
    )
    .await
    .expect("a reply")
    .expect("consumer open")
    .expect("delivery");
    let reply: Value = serde_json::from_slice(&reply.data).unwrap();
    assert_eq!(reply["error"]["code"], "permission_denied", "{reply}");
    let _ = conn.close(200, "bye".into()).await;
    let order: Value = http
        .get(format!("{base}/orders/{order_id}"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "PENDING", "the attack changed nothing");

    // 4. Forging the gateway's account in `user_id` is refused by the broker itself.
    let gateway_account = format!("gateway-{id}");
    let forge = move |ch: lapin::Channel| async move {
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        ch.basic_publish(
            "".into(),
            "orders.rpc".into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default().with_user_id(gateway_account.into()),
        )
        .await?
        .await?;
        Ok(())
    };
    assert!(
        refused_with(&url("user-svc"), "PRECONDITION_FAILED", forge).await,
        "the broker refuses a user_id that is not the publisher's"
    );

    // 5. The system still serves, and the services counted the refused requests.
    let r = http
        .get(format!("{base}/orders/{order_id}"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let metrics = http
        .get(format!("{base}/metrics/orders"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"rpc_server_untrusted_total{method="orders.update_status",service="orders"} 2"#
        ),
        "{metrics}"
    );
}

/// True when the broker closes the channel with `code` (e.g. PRECONDITION_FAILED).
async fn refused_with<F, Fut>(url: &str, code: &str, op: F) -> bool
where
    F: FnOnce(lapin::Channel) -> Fut,
    Fut: std::future::Future<Output = lapin::Result<()>>,
{
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let result = op(ch).await;
    let _ = conn.close(200, "bye".into()).await;
    matches!(result, Err(e) if e.to_string().contains(code))
}
