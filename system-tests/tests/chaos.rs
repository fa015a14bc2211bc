//! Chaos: the real broker restarted under load. NOT parallel-safe — it stops the
//! machine's RabbitMQ for every client, so every test here is `#[ignore]`:
//!
//! ```text
//! cargo test -p system-tests --test chaos -- --ignored --test-threads=1   # or: make test-chaos
//! ```
//!
//! Needs `rabbitmqctl` (`RABBITMQCTL` to override) allowed to stop and start the local
//! node. The broker is always started again by a drop guard, even when a test fails.

use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use system_tests::harness::{Stack, StackOptions, eventually, order_items, sql_i64, sql_strings};

/// Stops and starts the local RabbitMQ application; starts it again when dropped.
struct Broker {
    stopped: bool,
    addr: String,
}

impl Broker {
    fn new(amqp_url: &str) -> Broker {
        let addr = reqwest::Url::parse(amqp_url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or("127.0.0.1"),
                    u.port().unwrap_or(5672)
                )
            })
            .unwrap_or_else(|| "127.0.0.1:5672".to_owned());
        Broker {
            stopped: false,
            addr,
        }
    }

    fn ctl(args: &[&str]) -> bool {
        let ctl = std::env::var("RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".to_owned());
        Command::new(ctl)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    async fn stop(&mut self) {
        self.stopped = true;
        let ok = tokio::task::spawn_blocking(|| Self::ctl(&["stop_app"]))
            .await
            .unwrap();
        assert!(ok, "rabbitmqctl stop_app failed");
    }

    async fn start(&mut self) {
        let addr = self.addr.clone();
        tokio::task::spawn_blocking(move || Self::start_blocking(&addr))
            .await
            .unwrap();
        self.stopped = false;
    }

    /// `start_app`, then `await_startup`, then the AMQP port accepts connections.
    fn start_blocking(addr: &str) {
        assert!(Self::ctl(&["start_app"]), "rabbitmqctl start_app failed");
        assert!(
            Self::ctl(&["await_startup"]),
            "rabbitmqctl await_startup failed"
        );
        let end = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < end, "{addr} not accepting after start_app");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.stopped {
            eprintln!("restarting the broker (drop guard)");
            Self::start_blocking(&self.addr);
        }
    }
}

/// One HTTP call of the load.
#[derive(Debug, Clone)]
struct Record {
    what: &'static str,
    started: Instant,
    elapsed: Duration,
    /// `None`: no HTTP answer at all (timeout, connection error).
    status: Option<u16>,
    body: Value,
    email: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the machine's broker: run alone with --ignored --test-threads=1"]
async fn broker_restart_under_load_is_survived_and_no_event_is_lost() {
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("[{:>7.2?}] {what}", t0.elapsed());
    let mut stack = Stack::start(StackOptions::full()).await;
    phase("stack ready");
    // Declared after the stack, so dropped before it: the broker is back before the
    // test's queues and databases are cleaned up.
    let mut broker = Broker::new(&stack.bus.config().url);
    let session = system_tests::http::Session::new(&stack.base, stack.http.clone())
        .await
        .expect("session");
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();

    // Light steady load: a registration and an order every ~100 ms.
    let records: Arc<Mutex<Vec<Record>>> = Arc::default();
    let stop_load = Arc::new(AtomicBool::new(false));
    let load = {
        let records = records.clone();
        let stop_load = stop_load.clone();
        let session = session.clone();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let base = stack.base.clone();
        let tag = tag.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop_load.load(Ordering::SeqCst) {
                n += 1;
                let email = format!("chaos-{n}-{tag}@example.com");
                let started = Instant::now();
                let resp = http
                    .post(format!("{base}/users/register"))
                    .json(&serde_json::json!({"email": email, "password": "password-123", "name": "Chaos"}))
                    .send()
                    .await;
                let rec = record("register", started, resp, Some(email)).await;
                records.lock().unwrap().push(rec);
                let started = Instant::now();
                let resp = http
                    .post(format!("{base}/orders"))
                    .bearer_auth(&session.token)
                    .json(&order_items())
                    .send()
                    .await;
                let rec = record("order", started, resp, None).await;
                records.lock().unwrap().push(rec);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    phase("stop_app");
    broker.stop().await;
    phase("broker stopped");
    let down_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let down_until = Instant::now();
    phase("start_app");
    broker.start().await;
    phase("broker accepting");
    let up_at = Instant::now();

    // Every process reconnects by itself.
    let ready = stack.url("/health/ready");
    eventually(
        Duration::from_secs(30),
        "/health/ready after the restart",
        || async {
            stack
                .http
                .get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200)
        },
    )
    .await;
    let recovered_after = up_at.elapsed();
    phase("gateway ready");
    eventually(Duration::from_secs(30), "calls succeed again", || async {
        let recs = records.lock().unwrap();
        let ok_after = |what| {
            recs.iter()
                .any(|r| r.what == what && r.started > up_at && r.status == Some(201))
        };
        ok_after("register") && ok_after("order")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_load.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let records = records.lock().unwrap().clone();
    phase("load stopped");

    // During the outage: 503, fast, never a hang.
    let during: Vec<&Record> = records
        .iter()
        .filter(|r| r.started >= down_from && r.started < down_until)
        .collect();
    assert!(
        during.len() >= 6,
        "load during the outage: {}",
        during.len()
    );
    for r in &during {
        assert_eq!(r.status, Some(503), "{} during the outage: {r:?}", r.what);
        assert!(
            r.elapsed <= Duration::from_secs(2),
            "{} took {:?} during the outage",
            r.what,
            r.elapsed
        );
    }
    // Anything else is a success or a 503 (a call caught by the restart itself).
    for r in &records {
        assert!(
            matches!(r.status, Some(201) | Some(503)),
            "unexpected answer to {}: {:?} {}",
            r.what,
            r.status,
            r.body
        );
    }

    // Nothing written to an outbox is lost: every user user-svc has is projected by
    // order-svc (including one whose 503 hid a committed registration).
    let registered: Vec<&String> = records
        .iter()
        .filter(|r| r.what == "register" && r.status == Some(201))
        .filter_map(|r| r.email.as_ref())
        .collect();
    let users_db = stack.users_sql().await;
    let orders_db = stack.orders_sql().await;
    let pattern = format!("chaos-%-{tag}@example.com");
    let mut users = sql_strings(
        &users_db,
        &format!("SELECT email FROM users WHERE email LIKE '{pattern}' ORDER BY email"),
    )
    .await;
    users.sort();
    for email in &registered {
        assert!(
            users.contains(email),
            "{email} answered 201 but is not stored"
        );
    }
    eventually(
        Duration::from_secs(60),
        "every registered user projected into order-svc's customers",
        || async {
            let mut customers = sql_strings(
                &orders_db,
                &format!("SELECT email FROM customers WHERE email LIKE '{pattern}'"),
            )
            .await;
            customers.sort();
            customers == users
        },
    )
    .await;
    eventually(Duration::from_secs(30), "both outboxes drained", || async {
        sql_i64(&users_db, "SELECT count(*) FROM outbox").await == 0
            && sql_i64(&orders_db, "SELECT count(*) FROM outbox").await == 0
    })
    .await;
    phase("outboxes drained, customers projected");
    let orders_ok = records
        .iter()
        .filter(|r| r.what == "order" && r.status == Some(201))
        .count() as i64;
    assert!(sql_i64(&orders_db, "SELECT count(*) FROM orders").await >= orders_ok);

    for p in stack
        .orders
        .iter_mut()
        .chain(stack.users.as_mut())
        .chain(stack.gateway.as_mut())
    {
        assert!(p.is_running(), "{} restarted or died", p.name());
    }
    let count = |what: &str, status: Option<u16>| {
        records
            .iter()
            .filter(|r| r.what == what && r.status == status)
            .count()
    };
    eprintln!(
        "broker restart: {} calls during the outage, all 503 within {:?}; ready {:?} after start_app; \
         registrations 201: {}, 503: {}; users stored {} = customers projected; orders 201: {}",
        during.len(),
        during.iter().map(|r| r.elapsed).max().unwrap_or_default(),
        recovered_after,
        count("register", Some(201)),
        count("register", Some(503)),
        users.len(),
        orders_ok,
    );
}

async fn record(
    what: &'static str,
    started: Instant,
    resp: Result<reqwest::Response, reqwest::Error>,
    email: Option<String>,
) -> Record {
    let (status, body) = match resp {
        Ok(r) => {
            let (s, b) = system_tests::harness::status_json(r).await;
            (Some(s), b)
        }
        Err(e) => (None, Value::String(e.to_string())),
    };
    Record {
        what,
        started,
        elapsed: started.elapsed(),
        status,
        body,
        email,
    }
}
