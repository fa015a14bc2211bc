//! user-svc against real PostgreSQL and RabbitMQ: a fresh database and topology per
//! test, every call through the bus.

mod abuse;
mod admin;
mod common;
mod exactly_once;
mod lifecycle;
mod login;
mod outbox;
mod profile;
mod raw;
mod register;
mod sessions;
mod stats;
mod tokens;
