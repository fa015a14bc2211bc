//! `make bench-login-flood`: `users.me` latency over the bus, idle and while a login
//! flood keeps the bcrypt lane full (a figure for docs/BENCHMARKS.md, not a test).
//!
//! Starts user-svc in process on a throwaway database and broker prefix, with the
//! production bcrypt cost and the default lane; one client calls `users.me` in a loop
//! (closed loop, one call at a time) for `BENCH_SECS` (default 10) idle, then again
//! while `FLOOD` (default 64, twice the prefetch) clients send logins as fast as they
//! are answered, each with a fresh email (so the per-account throttle stays out of
//! it). Everything it created is removed at the end.

use proto_msgs::testing::TestBus;
use proto_msgs::users::{Empty, UserProfile, methods};
use proto_msgs::{Actor, ErrorCode, RequestContext, RpcClient, RpcClientConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Outcomes {
    answered: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = env_or("BENCH_SECS", 10);
    let flood: usize = env_or("FLOOD", 64);
    let bus = TestBus::new();
    let svc = user_svc::testing::spawn(&bus, |c| {
        c.bcrypt_cost = user_svc::config::DEFAULT_BCRYPT_COST;
    })
    .await;
    let lane = svc.config.bcrypt_lane;
    let client = RpcClient::connect(bus.config(), RpcClientConfig::default()).await?;

    let user: proto_msgs::users::User = client
        .call(
            methods::REGISTER,
            &serde_json::json!({"email": "bench@example.com", "password": "password123", "name": "Bench"}),
            &RequestContext::new(),
        )
        .await?;
    let me_ctx = RequestContext::new().with_actor(Actor {
        id: user.id,
        role: user.role,
    });

    println!(
        "users.me over the bus, one call at a time for {secs} s each; bcrypt cost {}, lane {} \
         running + {} waiting, prefetch 32; flood: {flood} clients sending logins back to back\n",
        user_svc::config::DEFAULT_BCRYPT_COST,
        lane.concurrency,
        lane.queue
    );
    println!(
        "| phase | users.me calls | p50 ms | p99 ms | max ms | errors | logins answered/s | logins refused (busy)/s |"
    );
    println!(
        "|-------|----------------|--------|--------|--------|--------|-------------------|-------------------------|"
    );

    let idle = me_loop(&client, &me_ctx, Duration::from_secs(secs)).await;
    print_row("idle", &idle, None, secs);

    let client = Arc::new(client);
    let flooding = Arc::new(AtomicBool::new(true));
    let outcomes = Arc::new(Outcomes::default());
    let tasks: Vec<_> = (0..flood)
        .map(|_| {
            let (client, flooding, outcomes) = (client.clone(), flooding.clone(), outcomes.clone());
            tokio::spawn(async move {
                while flooding.load(Ordering::Relaxed) {
                    let email = format!("{}@example.com", uuid::Uuid::new_v4());
                    let req = serde_json::json!({"email": email, "password": "password123"});
                    let res: Result<serde_json::Value, _> = client
                        .call(methods::LOGIN, &req, &RequestContext::new())
                        .await;
                    let counter = match res {
                        Err(e) if e.code == ErrorCode::Unauthenticated => &outcomes.answered,
                        Err(e) if e.code == ErrorCode::ResourceExhausted => &outcomes.busy,
                        _ => &outcomes.other,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Let the flood fill the lane first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = (
        outcomes.answered.load(Ordering::Relaxed),
        outcomes.busy.load(Ordering::Relaxed),
    );
    let during = me_loop(&client, &me_ctx, Duration::from_secs(secs)).await;
    let after = (
        outcomes.answered.load(Ordering::Relaxed),
        outcomes.busy.load(Ordering::Relaxed),
    );
    print_row(
        "login flood",
        &during,
        Some((after.0 - before.0, after.1 - before.1)),
        secs,
    );
    flooding.store(false, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let other = outcomes.other.load(Ordering::Relaxed);
    if other > 0 {
        println!("\n{other} logins ended otherwise (deadline, unavailable)");
    }
    if let Ok(client) = Arc::try_unwrap(client) {
        client.close().await;
    }
    svc.stop().await;
    Ok(())
}

struct Samples {
    latencies: Vec<Duration>,
    errors: u64,
}

async fn me_loop(client: &RpcClient, ctx: &RequestContext, for_: Duration) -> Samples {
    let mut out = Samples {
        latencies: Vec::new(),
        errors: 0,
    };
    let until = Instant::now() + for_;
    while Instant::now() < until {
        let started = Instant::now();
        let res: Result<UserProfile, _> = client.call(methods::ME, &Empty {}, ctx).await;
        match res {
            Ok(_) => out.latencies.push(started.elapsed()),
            Err(_) => out.errors += 1,
        }
    }
    out
}

fn print_row(phase: &str, s: &Samples, logins: Option<(u64, u64)>, secs: u64) {
    let mut l = s.latencies.clone();
    l.sort();
    let at = |q: f64| {
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let (answered, busy) = match logins {
        Some((a, b)) => (
            format!("{:.0}", a as f64 / secs as f64),
            format!("{:.0}", b as f64 / secs as f64),
        ),
        None => ("—".into(), "—".into()),
    };
    println!(
        "| {phase} | {} | {:.2} | {:.2} | {:.2} | {} | {answered} | {busy} |",
        l.len(),
        at(0.5),
        at(0.99),
        l.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        s.errors
    );
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
