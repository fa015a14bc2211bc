//! `shop-bench`: the figures behind docs/BENCHMARKS.md.
//!
//! ```text
//! shop-bench rpc                      # make bench-rpc: RPC echo, ours vs bare lapin
//! shop-bench http --url http://…      # make bench: HTTP scenarios + the echo floor
//! shop-bench soak --secs 300 --rate 100
//! ```
//! Reads `AMQP_URL` for the echo floor. The system under test must run with rate
//! limits off (scripts/bench.sh does that).

use clap::{Parser, Subcommand};
use proto_msgs::rpc::ReplyMode;
use proto_msgs::testing::TestBus;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use system_tests::echo;
use system_tests::http::{Session, ok, order_body};
use system_tests::load::{Figures, HEADER, Load, row, summarize};

#[derive(Parser)]
#[command(name = "shop-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// RPC echo through the broker: proto-msgs (both reply modes) vs a bare lapin pair.
    Rpc {
        #[arg(long, default_value = "1,32", value_delimiter = ',')]
        concurrency: Vec<usize>,
        #[arg(long, default_value_t = 5)]
        secs: u64,
        #[arg(long, default_value_t = 1)]
        warmup: u64,
    },
    /// HTTP scenarios against a running gateway, with the RPC echo floor for ratios.
    Http {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Which scenarios to run: echo, get, list, create, login.
        #[arg(
            long,
            default_value = "echo,get,list,create,login",
            value_delimiter = ','
        )]
        scenarios: Vec<String>,
    },
    /// A steady mixed load for a while, reporting each process's memory over time.
    Soak {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 300)]
        secs: u64,
        /// Requests per second.
        #[arg(long, default_value_t = 100)]
        rate: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Rpc {
            concurrency,
            secs,
            warmup,
        } => rpc(&concurrency, secs, warmup).await,
        Command::Http {
            url,
            concurrency,
            secs,
            warmup,
            scenarios,
        } => http(&url, concurrency, secs, warmup, &scenarios).await,
        Command::Soak { url, secs, rate } => soak(&url, secs, rate).await,
    }
}

async fn rpc(levels: &[usize], secs: u64, warmup: u64) -> anyhow::Result<()> {
    let bus = TestBus::new();
    bus.track("echo");
    println!(
        "RPC echo through RabbitMQ, {secs} s per scenario after {warmup} s warm-up; ratio = ours / bare\n"
    );
    println!("{HEADER}");
    for &c in levels {
        let load = Load::new(c, Duration::from_secs(warmup), Duration::from_secs(secs));
        let bare = echo::bare(&bus, &load).await;
        println!("{}", row("bare lapin pair", c, &bare, None));
        let ex = echo::ours(&bus, ReplyMode::ExclusiveQueue, &load).await;
        println!(
            "{}",
            row(
                "proto-msgs (exclusive reply queue)",
                c,
                &ex,
                Some(ex.rps / bare.rps)
            )
        );
        let direct = echo::ours(&bus, ReplyMode::DirectReplyTo, &load).await;
        println!(
            "{}",
            row(
                "proto-msgs (direct reply-to)",
                c,
                &direct,
                Some(direct.rps / bare.rps)
            )
        );
    }
    Ok(())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

async fn http(
    url: &str,
    c: usize,
    secs: u64,
    warmup: u64,
    scenarios: &[String],
) -> anyhow::Result<()> {
    let run = |name: &str| scenarios.iter().any(|s| s == name);
    let url = url.trim_end_matches('/').to_owned();
    let load = Load::new(c, Duration::from_secs(warmup), Duration::from_secs(secs));
    let http = client();
    let session = Session::new(&url, http.clone()).await?;
    for _ in 0..25 {
        session.create_order().await?;
    }
    let order_id = session.create_order().await?;

    println!(
        "HTTP through the gateway at {url}, {secs} s per scenario after {warmup} s warm-up, {c} connections"
    );
    println!("ratio = req/s ÷ the bare RPC echo rate measured in the same run\n");
    println!("{HEADER}");
    let mut floor = f64::NAN;
    if run("echo") {
        let bus = TestBus::new();
        bus.track("echo");
        let bare = echo::bare(&bus, &load).await;
        floor = bare.rps;
        println!(
            "{}",
            row("RPC echo floor: bare lapin pair", c, &bare, Some(1.0))
        );
        let ours = echo::ours(&bus, ReplyMode::ExclusiveQueue, &load).await;
        println!(
            "{}",
            row("RPC echo: proto-msgs", c, &ours, Some(ours.rps / floor))
        );
    }
    let report =
        |name: &str, c: usize, f: &Figures| println!("{}", row(name, c, f, Some(f.rps / floor)));

    if run("get") {
        let (s, u) = (session.clone(), format!("{url}/orders/{order_id}"));
        let f = load
            .drive(move || {
                let (s, u) = (s.clone(), u.clone());
                async move { ok(s.http.get(&u).bearer_auth(&s.token).send().await).await }
            })
            .await;
        report("GET /orders/{id} (authenticated)", c, &f);
    }
    if run("list") {
        let (s, u) = (session.clone(), format!("{url}/orders?limit=20"));
        let f = load
            .drive(move || {
                let (s, u) = (s.clone(), u.clone());
                async move { ok(s.http.get(&u).bearer_auth(&s.token).send().await).await }
            })
            .await;
        report("GET /orders?limit=20", c, &f);
    }
    if run("create") {
        let (s, u) = (session.clone(), format!("{url}/orders"));
        let f = load
            .drive(move || {
                let (s, u) = (s.clone(), u.clone());
                async move {
                    ok(s.http
                        .post(&u)
                        .bearer_auth(&s.token)
                        .json(&order_body())
                        .send()
                        .await)
                    .await
                }
            })
            .await;
        report("POST /orders", c, &f);
    }
    if run("login") {
        // bcrypt bound: more connections than a few per core only queue up.
        let login_load = Load::new(c.min(8), load.warmup, load.duration);
        let (s, u) = (session.clone(), format!("{url}/users/login"));
        let body = serde_json::json!({"email": s.email, "password": s.password});
        let f = login_load
            .drive(move || {
                let (s, u, b) = (s.clone(), u.clone(), body.clone());
                async move { ok(s.http.post(&u).json(&b).send().await).await }
            })
            .await;
        report("POST /users/login (bcrypt)", login_load.concurrency, &f);
    }
    Ok(())
}

/// Resident memory of each process, from the gateway's metrics pages.
async fn memory(http: &reqwest::Client, url: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (name, path) in [
        ("gateway", "/metrics"),
        ("user-svc", "/metrics/users"),
        ("order-svc", "/metrics/orders"),
    ] {
        let text = match http.get(format!("{url}{path}")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let rss = text
            .lines()
            .find(|l| l.starts_with("process_resident_memory_bytes"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        out.push((name.to_owned(), rss / 1024.0 / 1024.0));
    }
    out
}

async fn soak(url: &str, secs: u64, rate: u64) -> anyhow::Result<()> {
    let url = url.trim_end_matches('/').to_owned();
    let http = client();
    let session = Arc::new(Session::new(&url, http.clone()).await?);
    let order_id = session.create_order().await?;
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    println!(
        "Soak: {rate} req/s for {secs} s against {url} (mix: 60% GET order, 30% list, 10% create)\n"
    );
    println!("| t (s) | gateway MiB | user-svc MiB | order-svc MiB | errors so far |");
    println!("|-------|-------------|--------------|---------------|---------------|");
    let print = |t: u64, mem: &[(String, f64)], e: u64| {
        println!(
            "| {t:>5} | {:>11.1} | {:>12.1} | {:>13.1} | {e:>13} |",
            mem[0].1, mem[1].1, mem[2].1
        );
    };
    print(0, &memory(&http, &url).await, 0);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    let mut next_sample = 30;
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        n += 1;
        let s = session.clone();
        let (errs, lats) = (errors.clone(), latencies.clone());
        let get_url = format!("{url}/orders/{order_id}");
        let u = url.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let good = match n % 10 {
                0 => {
                    ok(s.http
                        .post(format!("{u}/orders"))
                        .bearer_auth(&s.token)
                        .json(&order_body())
                        .send()
                        .await)
                    .await
                }
                1..=3 => {
                    ok(s.http
                        .get(format!("{u}/orders?limit=20"))
                        .bearer_auth(&s.token)
                        .send()
                        .await)
                    .await
                }
                _ => ok(s.http.get(&get_url).bearer_auth(&s.token).send().await).await,
            };
            if good {
                if let Ok(mut l) = lats.lock() {
                    l.push(t.elapsed());
                }
            } else {
                errs.fetch_add(1, Ordering::Relaxed);
            }
        });
        if start.elapsed().as_secs() >= next_sample {
            print(
                next_sample,
                &memory(&http, &url).await,
                errors.load(Ordering::Relaxed),
            );
            next_sample += 30;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    print(
        start.elapsed().as_secs(),
        &memory(&http, &url).await,
        errors.load(Ordering::Relaxed),
    );
    let all = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    let f: Figures = summarize(
        all,
        errors.load(Ordering::Relaxed),
        Duration::from_secs(secs),
    );
    println!(
        "\nsoak totals: {} ok, {} errors, p50 {:.2} ms, p99 {:.2} ms",
        f.requests, f.errors, f.p50_ms, f.p99_ms
    );
    Ok(())
}
