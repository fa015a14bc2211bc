//! Where the CPU goes: each process's CPU time (user + system, from `/proc/<pid>/stat`)
//! over a measured period, grouped by what the process is, per request.

use std::collections::HashMap;

/// The processes a request passes through, in the order the tables show them.
pub const GROUPS: [&str; 6] = [
    "RabbitMQ",
    "PostgreSQL",
    "gateway",
    "order-svc",
    "user-svc",
    "load generator",
];

/// CPU time so far of every process of each group, in clock ticks.
#[derive(Debug, Clone, Default)]
pub struct Sample(HashMap<i32, (usize, u64)>);

/// The group of a process by its command name (`comm`, at most 15 bytes).
fn group(comm: &str) -> Option<usize> {
    let name = match comm {
        "beam.smp" => "RabbitMQ",
        "postgres" => "PostgreSQL",
        "gateway" => "gateway",
        "order-svc" => "order-svc",
        "user-svc" => "user-svc",
        "shop-bench" | "wrk" => "load generator",
        _ => return None,
    };
    GROUPS.iter().position(|g| *g == name)
}

/// Reads every process's CPU time now (Linux only; empty elsewhere).
pub fn sample() -> Sample {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Sample(out);
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let Some(g) = group(&stat[open + 1..close]) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after `comm`.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.insert(pid, (g, ticks(11) + ticks(12)));
    }
    Sample(out)
}

/// Microseconds of CPU per request of each group between two samples.
pub fn per_request(before: &Sample, after: &Sample, requests: u64) -> [f64; GROUPS.len()] {
    // Linux reports CPU time in USER_HZ, 100 per second on every platform it runs on.
    const TICK_US: f64 = 10_000.0;
    let mut used = [0u64; GROUPS.len()];
    for (pid, (g, ticks)) in &after.0 {
        let start = before.0.get(pid).map_or(0, |(_, t)| *t);
        used[*g] += ticks.saturating_sub(start);
    }
    let mut out = [0.0; GROUPS.len()];
    for (i, ticks) in used.iter().enumerate() {
        out[i] = *ticks as f64 * TICK_US / requests.max(1) as f64;
    }
    out
}

/// A markdown table of CPU per request by process, one row per scenario.
pub fn table(rows: &[(String, [f64; GROUPS.len()])]) -> String {
    let mut out = String::from("| scenario (CPU µs per request) |");
    for g in GROUPS {
        out.push_str(&format!(" {g} |"));
    }
    out.push_str(" total |\n|---|");
    for _ in GROUPS {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for (name, us) in rows {
        out.push_str(&format!("| {name} |"));
        for v in us {
            out.push_str(&format!(" {v:.0} |"));
        }
        out.push_str(&format!(" {:.0} |\n", us.iter().sum::<f64>()));
    }
    out
}
