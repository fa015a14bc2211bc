//! Types that parse at the edge: once a request became one of these, it is valid.
//!
//! - [`items`]: the lines of a new order (names, prices, quantities within bounds).
//! - [`cursor`]: the opaque keyset cursor of `orders.list`.
//! - [`fields`]: single request fields (ids, statuses) with precise error paths.

pub mod cursor;
pub mod fields;
pub mod items;
