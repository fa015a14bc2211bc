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
    assert!(
        refused(&url("user-svc"), consume("orders.rpc")).await,
        "user-svc cannot read order-svc's requests"
    );
    assert!(
        refused(&url("order-svc"), consume("users.events")).await,
        "order-svc cannot read user-svc's inbox"
    );

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
