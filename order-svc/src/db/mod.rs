//! Storage: the schema ([`migration`]), one sea-orm entity per table ([`entities`]),
//! and the queries behind each use ([`orders`], [`products`], [`customers`]), said with the query
//! builder: row locks, keyset pages and `ON CONFLICT` included.
//!
//! Money is stored as BIGINT minor units (cents), never a float.

pub mod customers;
pub mod entities;
pub mod migration;
pub mod orders;
pub mod products;
