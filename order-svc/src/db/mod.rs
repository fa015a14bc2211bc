//! Storage: the schema ([`migration`]) and the SQL behind each use ([`orders`],
//! [`customers`]). Raw SQL on purpose: row locks, keyset pages and `ON CONFLICT`
//! are said exactly as PostgreSQL runs them.
//!
//! Money is stored as BIGINT minor units (cents), never a float.

pub mod customers;
pub mod migration;
pub mod orders;
