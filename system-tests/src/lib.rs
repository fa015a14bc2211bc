//! # system-tests: the whole system, measured and broken on purpose
//!
//! - [`load`]: a closed-loop load driver with percentiles; [`cpu`]: each process's CPU
//!   per request over the measured period.
//! - [`echo`]: the RPC echo floor (proto-msgs vs a bare lapin pair).
//! - [`http`]: HTTP scenarios against a running gateway.
//! - [`raw_http`]: a lean HTTP/1.1 load driver (pre-rendered requests, keep-alive).
//! - [`harness`]: the services as real processes (signals, logs, readiness), each
//!   test on its own databases, broker prefix and ports.
//! - [`make`]: `make up` / `make down` driven by tests, cleaned up on drop.
//! - `tests/`: `make up` end to end, and faults made for real (signals, outages).
//! - `src/bin/shop-bench.rs`: `make bench-rpc`, `make bench`, the soak run.

pub mod cpu;
pub mod echo;
pub mod harness;
pub mod http;
pub mod load;
pub mod make;
pub mod raw_http;
