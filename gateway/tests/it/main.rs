//! Gateway tests over HTTP against a real broker: stub services for the contract
//! (`routes`, `errors`, `auth`, `limits`, `ops`), the real services for the rest (`e2e`).

mod auth;
mod common;
mod e2e;
mod errors;
mod limits;
mod ops;
mod routes;
mod sessions;
