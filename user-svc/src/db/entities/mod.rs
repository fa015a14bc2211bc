//! One entity per table.

pub mod known_order;
pub mod order_stats;
pub mod password_throttle;
pub mod refresh_token;
pub mod session;
pub mod user;
