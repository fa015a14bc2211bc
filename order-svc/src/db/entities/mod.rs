//! One entity per table.

pub mod customer;
pub mod order;
pub mod order_item;
pub mod product;
