//! The order service's contract: methods, request and reply types, event payloads.

use crate::money::Money;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Service name: queue `orders.rpc`, methods `orders.*`, inbox `orders.events`.
pub const SERVICE: &str = "orders";

/// RPC method names (routing keys on the `rpc` exchange).
pub mod methods {
    pub const CREATE: &str = "orders.create";
    pub const GET: &str = "orders.get";
    pub const LIST: &str = "orders.list";
    pub const UPDATE_STATUS: &str = "orders.update_status";
    pub const HEALTH: &str = "orders.sys.health";
    pub const METRICS: &str = "orders.sys.metrics";
}

/// Order status. Legal moves: `PENDING → CONFIRMED → SHIPPED → DELIVERED`, and
/// `PENDING | CONFIRMED → CANCELLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Whether the status machine allows `self → next`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Confirmed)
                | (Confirmed, Shipped)
                | (Shipped, Delivered)
                | (Pending, Cancelled)
                | (Confirmed, Cancelled)
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?} (expected one of PENDING, CONFIRMED, SHIPPED, DELIVERED, CANCELLED)"
                )
            })
    }
}

/// One line of a new order. `price` is a decimal string or a JSON number with at most
/// two decimal places.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewItem {
    pub name: String,
    pub price: Money,
    pub quantity: i64,
}

/// `orders.create`. The owner is the actor; a `user_id` in the body is ignored.
/// Header `x-idempotency-key` makes a retried create return the first order; the same
/// key with different items is refused with `failed_precondition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateOrderRequest {
    pub items: Vec<NewItem>,
}

/// One line of an order, with its subtotal (`price × quantity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub name: String,
    pub price: Money,
    pub quantity: i64,
    pub subtotal: Money,
}

/// An order as returned by every method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<OrderItem>,
    pub total: Money,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `orders.get`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetOrderRequest {
    pub id: Uuid,
}

/// `orders.list`: the actor's orders, newest first. An admin may pass `user_id`.
/// Page with `cursor` (from the previous page's `next_cursor`) or `offset`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListOrdersRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
    /// 1..=100, default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// Default and largest page size of `orders.list`.
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;

/// Reply of `orders.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
    pub limit: u32,
}

/// `orders.update_status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateStatusRequest {
    pub id: Uuid,
    pub status: OrderStatus,
}

/// Data of the `order.created` event (the seeds' ORDER_CREATED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<OrderItem>,
    pub total: Money,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
}

/// Data of the `order.updated` event (the seeds' ORDER_UPDATED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderUpdated {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub old_status: OrderStatus,
    pub new_status: OrderStatus,
    pub total: Money,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_status_machine() {
        use OrderStatus::*;
        let allowed: Vec<(OrderStatus, OrderStatus)> = OrderStatus::ALL
            .into_iter()
            .flat_map(|a| OrderStatus::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, Confirmed),
                (Pending, Cancelled),
                (Confirmed, Shipped),
                (Confirmed, Cancelled),
                (Shipped, Delivered)
            ]
        );
        assert_eq!(serde_json::to_value(Cancelled).unwrap(), json!("CANCELLED"));
        assert!(serde_json::from_value::<OrderStatus>(json!("LOST")).is_err());
        assert_eq!("shipped".parse::<OrderStatus>().unwrap(), Shipped);
    }

    #[test]
    fn create_ignores_user_id() {
        let req: CreateOrderRequest = serde_json::from_value(json!({
            "user_id": "someone-else",
            "items": [{"name": "Product", "price": 100, "quantity": 2}]
        }))
        .unwrap();
        assert_eq!(req.items[0].price.minor(), 10000);
    }
}
