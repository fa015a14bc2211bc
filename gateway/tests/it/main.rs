//! Gateway tests over HTTP against a real broker, with stub services for the contract
//! (`routes`, `errors`, `auth`, `limits`, `ops`). Tests through the real services live
//! in system-tests (`tests/e2e.rs`, `tests/trace.rs`): the gateway does not depend on
//! the services.

mod auth;
mod common;
mod errors;
mod limits;
mod ops;
mod products;
mod routes;
