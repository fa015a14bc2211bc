//! order-svc against real PostgreSQL and RabbitMQ: a fresh database and topology per test.

mod common;

mod catalog;
mod create;
mod customers;
mod events;
mod exactly_once;
mod get;
mod idempotency;
mod list;
mod raw;
mod status;
mod stock;
