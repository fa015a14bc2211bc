//! The lines of a new order: the contract's [`OrderLines`](proto_msgs::orders::OrderLines),
//! checked while the request was read (1 to 100 lines, names, prices, quantities within
//! bounds), with their exact total.

pub use proto_msgs::orders::{NewItem, OrderLines as NewItems};
