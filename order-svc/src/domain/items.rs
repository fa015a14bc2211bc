//! The lines of a new order: the contract's [`OrderLines`](proto_msgs::orders::OrderLines)
//! (1 to 100 lines, each naming a product and a quantity, checked while the request was
//! read), and [`PricedLine`], a line once the catalog has priced it.

use proto_msgs::Money;
use proto_msgs::orders::OrderItem;
pub use proto_msgs::orders::{NewItem, OrderLines as NewItems};
use uuid::Uuid;

/// A line with the catalog's name and unit price at the time of the order.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedLine {
    pub product_id: Uuid,
    pub name: String,
    pub price: Money,
    pub quantity: i64,
}

impl PricedLine {
    /// `price × quantity`; cannot overflow within the bounds (10^8 × 10^4 cents).
    pub fn subtotal(&self) -> Money {
        Money::from_minor(self.price.minor().saturating_mul(self.quantity))
    }

    pub fn to_order_item(&self) -> OrderItem {
        OrderItem {
            product_id: Some(self.product_id),
            name: self.name.clone(),
            price: self.price,
            quantity: self.quantity,
            subtotal: self.subtotal(),
        }
    }
}

/// The sum of the subtotals; cannot overflow within the bounds (100 × 10^12 cents).
pub fn total(lines: &[PricedLine]) -> Money {
    Money::from_minor(lines.iter().map(|l| l.subtotal().minor()).sum())
}
