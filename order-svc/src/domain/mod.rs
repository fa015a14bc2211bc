//! The service's names for the contract types it stores. The rules live in the types
//! of `proto_msgs::orders`: deserializing a request is validating it, so a handler only
//! ever holds valid values.
//!
//! - [`items`]: the lines of a new order and their total.
//! - [`cursor`]: the keyset cursor of `orders.list`.

pub mod cursor;
pub mod items;
