//! The lines of a new order, validated: [`NewItems::parse`] is the only way to get one.

use crate::error::{Error, Result};
use proto_msgs::Money;
use proto_msgs::orders::OrderItem;
use serde_json::Value;

/// Bounds of an order (the rules, in one place).
pub const MAX_ITEMS: usize = 100;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_PRICE: Money = Money::from_minor(100_000_000);
pub const MAX_QUANTITY: i64 = 10_000;

/// One valid line: trimmed name, positive price, quantity in range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub name: String,
    pub price: Money,
    pub quantity: i64,
}

impl NewItem {
    /// `price × quantity`. Cannot overflow within the bounds (10^8 × 10^4 cents).
    pub fn subtotal(&self) -> Money {
        Money::from_minor(self.price.minor().saturating_mul(self.quantity))
    }

    pub fn to_order_item(&self) -> OrderItem {
        OrderItem {
            name: self.name.clone(),
            price: self.price,
            quantity: self.quantity,
            subtotal: self.subtotal(),
        }
    }
}

/// 1..=100 valid lines and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItems {
    items: Vec<NewItem>,
    total: Money,
}

impl NewItems {
    /// Reads `items` from the request body. The first problem found is reported with
    /// its path (`items`, `items[2].price`, …).
    pub fn parse(items: Option<&Value>) -> Result<NewItems> {
        let list = match items {
            Some(Value::Array(list)) => list,
            None | Some(Value::Null) => {
                return Err(Error::invalid("items", "items is required"));
            }
            Some(_) => return Err(Error::invalid("items", "items must be a list")),
        };
        if list.is_empty() || list.len() > MAX_ITEMS {
            return Err(Error::invalid(
                "items",
                format!("an order has 1 to {MAX_ITEMS} items, not {}", list.len()),
            ));
        }
        let items = list
            .iter()
            .enumerate()
            .map(|(i, v)| parse_item(i, v))
            .collect::<Result<Vec<_>>>()?;
        // 100 × 10^12 cents still fits in i64; checked anyway, it costs nothing.
        let total = items
            .iter()
            .try_fold(Money::ZERO, |acc, item| acc.checked_add(item.subtotal()))
            .ok_or_else(|| Error::invalid("items", "the order total is too large"))?;
        Ok(NewItems { items, total })
    }

    pub fn items(&self) -> &[NewItem] {
        &self.items
    }

    pub fn total(&self) -> Money {
        self.total
    }
}

fn parse_item(i: usize, value: &Value) -> Result<NewItem> {
    let path = |f: &str| format!("items[{i}].{f}");
    let Value::Object(obj) = value else {
        return Err(Error::invalid(
            format!("items[{i}]"),
            format!("items[{i}] must be an object with name, price and quantity"),
        ));
    };

    let name = match obj.get("name") {
        Some(Value::String(s)) => s.trim().to_owned(),
        None | Some(Value::Null) => {
            return Err(Error::invalid(
                path("name"),
                format!("{} is required", path("name")),
            ));
        }
        Some(_) => {
            return Err(Error::invalid(
                path("name"),
                format!("{} must be a string", path("name")),
            ));
        }
    };
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(Error::invalid(
            path("name"),
            format!(
                "{} must be 1 to {MAX_NAME_CHARS} characters (after trimming), not {chars}",
                path("name")
            ),
        ));
    }

    let price = match obj.get("price") {
        None | Some(Value::Null) => {
            return Err(Error::invalid(
                path("price"),
                format!("{} is required", path("price")),
            ));
        }
        Some(v) => serde_json::from_value::<Money>(v.clone())
            .map_err(|e| Error::invalid(path("price"), format!("{}: {e}", path("price"))))?,
    };
    if price <= Money::ZERO || price > MAX_PRICE {
        return Err(Error::invalid(
            path("price"),
            format!(
                "{} must be more than 0 and at most {MAX_PRICE}, not {price}",
                path("price")
            ),
        ));
    }

    let quantity = match obj.get("quantity") {
        None | Some(Value::Null) => {
            return Err(Error::invalid(
                path("quantity"),
                format!("{} is required", path("quantity")),
            ));
        }
        Some(Value::Number(n)) => n.as_i64(),
        Some(_) => None,
    }
    .filter(|q| (1..=MAX_QUANTITY).contains(q))
    .ok_or_else(|| {
        Error::invalid(
            path("quantity"),
            format!(
                "{} must be a whole number from 1 to {MAX_QUANTITY}",
                path("quantity")
            ),
        )
    })?;

    Ok(NewItem {
        name,
        price,
        quantity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(items: Value) -> String {
        match NewItems::parse(Some(&items)).unwrap_err() {
            Error::InvalidField { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    fn item(name: Value, price: Value, quantity: Value) -> Value {
        json!({"name": name, "price": price, "quantity": quantity})
    }

    #[test]
    fn totals_are_exact() {
        let items = NewItems::parse(Some(&json!([
            {"name": "  Pen ", "price": 0.1, "quantity": 3},
            {"name": "Book", "price": "100", "quantity": 2},
        ])))
        .unwrap();
        assert_eq!(items.total().to_string(), "200.30");
        assert_eq!(items.items()[0].name, "Pen");
        assert_eq!(items.items()[0].subtotal().to_string(), "0.30");
    }

    #[test]
    fn bounds_are_inclusive() {
        let long = "é".repeat(MAX_NAME_CHARS);
        let items = NewItems::parse(Some(&json!([item(
            json!(long),
            json!(1000000),
            json!(10000)
        )])))
        .unwrap();
        assert_eq!(items.total().minor(), 100_000_000 * 10_000);
        let many: Vec<Value> = (0..MAX_ITEMS)
            .map(|_| item(json!("x"), json!("0.01"), json!(1)))
            .collect();
        assert_eq!(
            NewItems::parse(Some(&json!(many))).unwrap().total().minor(),
            100
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let ok = || item(json!("x"), json!("1.00"), json!(1));
        assert_eq!(field(json!([])), "items");
        assert_eq!(field(json!({"a": 1})), "items");
        assert_eq!(field(json!(vec![ok(); MAX_ITEMS + 1])), "items");
        assert_eq!(field(json!([ok(), 5])), "items[1]");
        for (bad, path) in [
            (item(json!("   "), json!(1), json!(1)), "name"),
            (item(json!("x".repeat(201)), json!(1), json!(1)), "name"),
            (item(json!(7), json!(1), json!(1)), "name"),
            (json!({"price": 1, "quantity": 1}), "name"),
            (item(json!("x"), json!(0), json!(1)), "price"),
            (item(json!("x"), json!("-1"), json!(1)), "price"),
            (item(json!("x"), json!("0.105"), json!(1)), "price"),
            (item(json!("x"), json!(0.105), json!(1)), "price"),
            (item(json!("x"), json!("1000000.01"), json!(1)), "price"),
            (item(json!("x"), json!("abc"), json!(1)), "price"),
            (json!({"name": "x", "quantity": 1}), "price"),
            (item(json!("x"), json!(1), json!(0)), "quantity"),
            (item(json!("x"), json!(1), json!(10001)), "quantity"),
            (item(json!("x"), json!(1), json!(1.5)), "quantity"),
            (item(json!("x"), json!(1), json!("2")), "quantity"),
            (json!({"name": "x", "price": 1}), "quantity"),
        ] {
            assert_eq!(
                field(json!([ok(), ok(), bad.clone()])),
                format!("items[2].{path}"),
                "{bad}"
            );
        }
    }
}
