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
use system_tests::http::{Session, hot_order_body, ok, order_body};
use system_tests::load::{Figures, HEADER, Load, row, summarize};
use system_tests::raw_http::{self, RawRequest};

#[derive(Parser)]
#[command(name = "shop-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// RPC echo through the broker: proto-msgs (both reply modes) vs a bare lapin pair
    /// sending a minimal message and the contract's.
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
        /// Rounds of (echo floor, scenarios); the table shows medians.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Which scenarios to run: echo, get, list, products, create, reserve, login.
        #[arg(
            long,
            default_value = "echo,get,list,products,create,reserve,login",
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
            rounds,
            scenarios,
        } => http(&url, concurrency, secs, warmup, rounds, &scenarios).await,
        Command::Soak { url, secs, rate } => soak(&url, secs, rate).await,
    }
}

async fn rpc(levels: &[usize], secs: u64, warmup: u64) -> anyhow::Result<()> {
    let bus = TestBus::new();
    bus.track("echo");
    println!(
        "RPC echo through RabbitMQ, {secs} s per scenario after {warmup} s warm-up; ratio = req/s \
         ÷ the bare lapin pair sending the same (contract) message at the same concurrency\n"
    );
    println!("{HEADER}");
    for &c in levels {
        let load = Load::new(c, Duration::from_secs(warmup), Duration::from_secs(secs));
        let minimal = echo::bare(&bus, &load, echo::Message::Minimal).await;
        let contract = echo::bare(&bus, &load, echo::Message::Contract).await;
        println!(
            "{}",
            row(
                "bare lapin pair, minimal message",
                c,
                &minimal,
                Some(minimal.rps / contract.rps)
            )
        );
        println!(
            "{}",
            row("bare lapin pair, contract message", c, &contract, Some(1.0))
        );
        for (name, mode) in [
            (
                "proto-msgs (exclusive reply queue)",
                ReplyMode::ExclusiveQueue,
            ),
            ("proto-msgs (direct reply-to)", ReplyMode::DirectReplyTo),
        ] {
            let f = echo::ours(&bus, mode, &load).await;
            println!("{}", row(name, c, &f, Some(f.rps / contract.rps)));
        }
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
    rounds: usize,
    scenarios: &[String],
) -> anyhow::Result<()> {
    let run = |name: &str| scenarios.iter().any(|s| s == name);
    let url = url.trim_end_matches('/').to_owned();
    let rounds = rounds.max(1);
    let load = Load::new(c, Duration::from_secs(warmup), Duration::from_secs(secs));
    let http = client();
    let session = Session::new(&url, http.clone()).await?;
    for _ in 0..25 {
        session.create_order().await?;
    }
    let order_id = session.create_order().await?;

    // The scenarios are driven by the lean HTTP/1.1 driver: the load generator shares
    // the machine with the system, and reqwest cost three times its CPU per request.
    let addr = socket_addr(&url)?;
    let host = url.trim_start_matches("http://").to_owned();
    let bearer = format!("Bearer {}", session.token);
    let auth = [("authorization", bearer.as_str())];
    let create_body = serde_json::to_vec(&order_body())?;
    let mut http_scenarios: Vec<(&str, RawRequest)> = Vec::new();
    if run("get") {
        let path = format!("/orders/{order_id}");
        http_scenarios.push((
            "GET /orders/{id} (authenticated)",
            RawRequest::new("GET", &host, &path, &auth, None),
        ));
    }
    if run("list") {
        http_scenarios.push((
            "GET /orders?limit=20",
            RawRequest::new("GET", &host, "/orders?limit=20", &auth, None),
        ));
    }
    if run("products") {
        // Public: the catalog of `make up` (deploy/catalog/demo.json).
        http_scenarios.push((
            "GET /products?limit=20 (public)",
            RawRequest::new("GET", &host, "/products?limit=20", &[], None),
        ));
    }

    println!(
        "HTTP through the gateway at {url}, {c} connections, {rounds} round(s) of {secs} s per \
         scenario after {warmup} s warm-up"
    );
    println!(
        "Each round measures the echo floor and then the read scenarios, so a machine that \
         speeds up or slows down moves both; the table shows the median round of each row, and \
         ratio = the median of that scenario's per-round req/s ÷ that round's bare RPC echo \
         rate. POST /orders and login run once, after the rounds.\n"
    );
    let mut rows: Rows = Vec::new();
    let bus = TestBus::new();
    bus.track("echo");
    for round in 1..=rounds {
        let mut floor = f64::NAN;
        if run("echo") {
            let bare = echo::bare(&bus, &load, echo::Message::Minimal).await;
            floor = bare.rps;
            record(&mut rows, "RPC echo floor: bare lapin pair", c, bare, 1.0);
            let ours = echo::ours(&bus, ReplyMode::ExclusiveQueue, &load).await;
            record(&mut rows, "RPC echo: proto-msgs", c, ours, ours.rps / floor);
        }
        let mut line = format!("round {round}: floor {floor:.0} req/s");
        for (name, req) in &http_scenarios {
            let f = raw_http::drive(addr, req, &load).await;
            line.push_str(&format!("; {name}: {:.0} ({:.2})", f.rps, f.rps / floor));
            record(&mut rows, name, c, f, f.rps / floor);
        }
        eprintln!("{line}");
    }
    // Once, after the rounds: every order created sets off an event that user-svc is
    // still applying for seconds after the scenario, and that work would be measured in
    // the next round's floor.
    if run("create") {
        let req = RawRequest::new("POST", &host, "/orders", &auth, Some(&create_body));
        let f = raw_http::drive(addr, &req, &load).await;
        let floor = median_floor(&rows);
        record(
            &mut rows,
            "POST /orders (2 products, stock reserved)",
            c,
            f,
            f.rps / floor,
        );
    }
    if run("reserve") {
        // Every connection orders the same product: the reservations queue on its row
        // lock, the worst case of stock reservation.
        let hot = serde_json::to_vec(&hot_order_body())?;
        let req = RawRequest::new("POST", &host, "/orders", &auth, Some(&hot));
        let f = raw_http::drive(addr, &req, &load).await;
        let floor = median_floor(&rows);
        record(
            &mut rows,
            "POST /orders (one hot product, contended stock)",
            c,
            f,
            f.rps / floor,
        );
    }
    if run("login") {
        // bcrypt bound: more connections than a few per core only queue up. One round:
        // its rate is the bcrypt cost, not the bus.
        let login_load = Load::new(c.min(8), load.warmup, load.duration);
        let body = serde_json::to_vec(
            &serde_json::json!({"email": session.email, "password": session.password}),
        )?;
        let req = RawRequest::new("POST", &host, "/users/login", &[], Some(&body));
        let f = raw_http::drive(addr, &req, &login_load).await;
        let floor = median_floor(&rows);
        record(
            &mut rows,
            "POST /users/login (bcrypt)",
            login_load.concurrency,
            f,
            f.rps / floor,
        );
    }
    println!("{HEADER}");
    let mut cpu_rows = Vec::new();
    for (name, c, all) in &rows {
        let (figures, _) = median_by(all, |(f, _)| f.rps);
        let (_, ratio) = median_by(all, |(_, r)| *r);
        println!("{}", row(name, *c, &figures, Some(ratio)));
        cpu_rows.push((name.clone(), figures.cpu_us));
    }
    println!("\nCPU per request by process, the median round of each row:\n");
    print!("{}", system_tests::cpu::table(&cpu_rows));
    Ok(())
}

/// One entry per table row: the figures and ratio-to-floor of every round.
type Rows = Vec<(String, usize, Vec<(Figures, f64)>)>;

fn record(rows: &mut Rows, name: &str, c: usize, f: Figures, ratio: f64) {
    match rows.iter_mut().find(|(n, _, _)| n == name) {
        Some((_, _, all)) => all.push((f, ratio)),
        None => rows.push((name.to_owned(), c, vec![(f, ratio)])),
    }
}

/// The median echo floor of the rounds (the first row), for the one-off scenarios.
fn median_floor(rows: &Rows) -> f64 {
    rows.first()
        .map(|(_, _, all)| median_by(all, |(f, _)| f.rps).0.rps)
        .unwrap_or(f64::NAN)
}

/// The element whose `key` is the median (the lower middle one for an even count).
fn median_by<T: Copy>(all: &[T], key: impl Fn(&T) -> f64) -> T {
    let mut sorted: Vec<T> = all.to_vec();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted[(sorted.len() - 1) / 2]
}

/// The address of an `http://host:port` URL.
fn socket_addr(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let host_port = url.trim_start_matches("http://");
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:80")
    };
    with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {url}"))
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
