//! The keyset cursor of `orders.list`: the contract's
//! [`PageCursor`](proto_msgs::orders::PageCursor) (format and checks live there, so the
//! OpenAPI document can describe it), the position (created_at, id) of the last order of
//! a page.

pub use proto_msgs::orders::PageCursor as Cursor;
