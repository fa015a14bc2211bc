//! A closed-loop load driver: N workers call as fast as replies come back, for a
//! warm-up and then a measured period; latencies are kept in full for percentiles.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The figures of one scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// CPU µs per request of each process group over the measured period
    /// ([`crate::cpu::GROUPS`]).
    pub cpu_us: [f64; crate::cpu::GROUPS.len()],
}

/// Concurrency and timing of a run.
#[derive(Debug, Clone)]
pub struct Load {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

impl Load {
    pub fn new(concurrency: usize, warmup: Duration, duration: Duration) -> Self {
        Load {
            concurrency,
            warmup,
            duration,
        }
    }

    /// Runs `call` from `concurrency` workers; `call` returns false for an error.
    pub async fn drive<F, Fut>(&self, call: F) -> Figures
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send,
    {
        let call = Arc::new(call);
        self.drive_with(
            |_| (),
            move |()| {
                let call = call.clone();
                async move { ((), call().await) }
            },
        )
        .await
    }

    /// Like [`Load::drive`], with a state per worker (a connection, say) that `call`
    /// takes and gives back with its outcome; `init(n)` makes worker n's first state.
    pub async fn drive_with<S, I, F, Fut>(&self, init: I, call: F) -> Figures
    where
        S: Send + 'static,
        I: Fn(usize) -> S,
        F: Fn(S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (S, bool)> + Send,
    {
        let call = Arc::new(call);
        let start = Instant::now();
        let measure_from = start + self.warmup;
        let end = measure_from + self.duration;
        let cpu = tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let before = crate::cpu::sample();
            tokio::time::sleep_until(end.into()).await;
            (before, crate::cpu::sample())
        });
        let workers: Vec<_> = (0..self.concurrency)
            .map(|n| {
                let call = call.clone();
                let mut state = init(n);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(64 * 1024);
                    let mut errors = 0u64;
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        let (next, ok) = call(state).await;
                        state = next;
                        if t >= measure_from {
                            if ok {
                                latencies.push(t.elapsed());
                            } else {
                                errors += 1;
                            }
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for w in workers {
            if let Ok((lat, e)) = w.await {
                all.extend(lat);
                errors += e;
            }
        }
        let mut figures = summarize(all, errors, self.duration);
        if let Ok((before, after)) = cpu.await {
            figures.cpu_us = crate::cpu::per_request(&before, &after, figures.requests);
        }
        figures
    }
}

/// Percentiles and rate of a set of latencies measured over `duration`.
pub fn summarize(mut latencies: Vec<Duration>, errors: u64, duration: Duration) -> Figures {
    latencies.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(latencies.len() - 1);
        latencies[i].as_secs_f64() * 1000.0
    };
    Figures {
        requests: latencies.len() as u64,
        rps: latencies.len() as f64 / duration.as_secs_f64().max(1e-9),
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        errors,
        cpu_us: [0.0; crate::cpu::GROUPS.len()],
    }
}

/// A markdown table row.
pub fn row(name: &str, concurrency: usize, f: &Figures, ratio: Option<f64>) -> String {
    let ratio = ratio
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(|| "—".into());
    format!(
        "| {name:<34} | {concurrency:>3} | {:>8.0} | {:>7.2} | {:>7.2} | {:>7.2} | {:>6} | {ratio:>6} |",
        f.rps, f.p50_ms, f.p90_ms, f.p99_ms, f.errors
    )
}

pub const HEADER: &str = "| scenario                           |   c |    req/s |  p50 ms |  p90 ms |  p99 ms | errors |  ratio |\n|------------------------------------|-----|----------|---------|---------|---------|--------|--------|";
