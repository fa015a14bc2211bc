//! The catalog's contract: products with a SKU, an exact price and a stock, served by
//! order-svc under their own namespace (`catalog.*` on order-svc's queue). Every field
//! type checks itself while it is read, so a handler never sees a bad value.

use crate::money::Money;
use crate::orders::{PRICE_MAX, PageLimit, PageOffset, Price};
use chrono::{DateTime, Utc};
use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use uuid::Uuid;

/// The namespace of the catalog's methods (`catalog.*`), answered by order-svc.
pub const NAMESPACE: &str = "catalog";

/// RPC method names (routing keys on the `rpc` exchange).
pub mod methods {
    pub const LIST: &str = "catalog.list";
    pub const GET: &str = "catalog.get";
    pub const CREATE: &str = "catalog.create";
    pub const UPDATE: &str = "catalog.update";
    pub const ADJUST_STOCK: &str = "catalog.adjust_stock";
}

/// Longest SKU.
pub const SKU_MAX_LEN: usize = 64;
/// Longest product name, in characters after trimming.
pub const PRODUCT_NAME_MAX_CHARS: usize = 200;
/// Longest description, in characters after trimming.
pub const DESCRIPTION_MAX_CHARS: usize = 2000;
/// Longest category, in characters after trimming.
pub const CATEGORY_MAX_CHARS: usize = 50;
/// Longest reason of a stock adjustment, in characters after trimming.
pub const REASON_MAX_CHARS: usize = 200;
/// Longest search text.
pub const SEARCH_MAX_CHARS: usize = 100;
/// Largest stock of a product, and largest single adjustment.
pub const STOCK_MAX: i64 = 1_000_000_000;

/// A stock-keeping unit: 1 to [`SKU_MAX_LEN`] letters, digits, `-`, `_` or `.`,
/// starting with a letter or digit. Compared exactly (case matters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Sku, String> {
        let ok_first = raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
        let ok_rest = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if raw.len() > SKU_MAX_LEN || !ok_first || !ok_rest {
            return Err(format!(
                "must be 1 to {SKU_MAX_LEN} letters, digits, '-', '_' or '.', starting with a letter or digit"
            ));
        }
        Ok(Sku(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// [`Sku::parse`] as a pattern.
    pub fn pattern() -> String {
        format!("^[A-Za-z0-9][A-Za-z0-9._-]{{0,{}}}$", SKU_MAX_LEN - 1)
    }
}

crate::limits::parsed_string!(Sku);

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Trimmed text of 1 to `MAX` characters without control characters.
macro_rules! trimmed {
    ($ty:ident, $max:expr, $what:literal) => {
        #[doc = concat!($what, ": 1 to `", stringify!($max), "` characters after trimming, no control characters.")]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty(String);

        impl $ty {
            pub fn parse(raw: &str) -> Result<$ty, String> {
                crate::limits::trimmed_text(raw, $max).map($ty)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        crate::limits::parsed_string!($ty);

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::limits::schema::string(&format!(
                    "{}: 1 to {} characters once surrounding whitespace is dropped, no control characters.",
                    $what, $max
                ))
                .pattern(Some(crate::limits::trimmed_text_pattern($max)))
                .into()
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $ty {}
    };
}

trimmed!(ProductName, PRODUCT_NAME_MAX_CHARS, "A product's name");
trimmed!(
    Description,
    DESCRIPTION_MAX_CHARS,
    "A product's description"
);
trimmed!(Category, CATEGORY_MAX_CHARS, "A product's category");
trimmed!(Reason, REASON_MAX_CHARS, "Why the stock changes");
trimmed!(
    SearchText,
    SEARCH_MAX_CHARS,
    "Text searched for in name, SKU and description"
);

/// Reads a whole number from a JSON integer, a float without fraction or (query
/// strings) its digits.
fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        I(i64),
        F(f64),
        S(String),
    }
    match Num::deserialize(d)? {
        Num::I(n) => Ok(n),
        Num::F(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        Num::S(s) => s
            .trim_start_matches('+')
            .parse()
            .map_err(|_| de::Error::custom(format!("{s:?} is not a whole number"))),
        Num::F(f) => Err(de::Error::custom(format!("{f} is not a whole number"))),
    }
}

/// Units in stock: 0 to [`STOCK_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stock(i64);

impl Stock {
    pub fn new(n: i64) -> Result<Stock, String> {
        if !(0..=STOCK_MAX).contains(&n) {
            return Err(format!(
                "must be a whole number from 0 to {STOCK_MAX}, not {n}"
            ));
        }
        Ok(Stock(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl Serialize for Stock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Stock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Stock::new(integer(d)?).map_err(de::Error::custom)
    }
}

/// A relative stock change: `+n` adds (a delivery), `-n` removes (breakage, a count);
/// not 0, at most [`STOCK_MAX`] either way. Never takes the stock below 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockDelta(i64);

impl StockDelta {
    pub fn new(n: i64) -> Result<StockDelta, String> {
        if n == 0 || !(-STOCK_MAX..=STOCK_MAX).contains(&n) {
            return Err(format!(
                "must be a whole number from -{STOCK_MAX} to {STOCK_MAX} other than 0, not {n}"
            ));
        }
        Ok(StockDelta(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl Serialize for StockDelta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for StockDelta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StockDelta::new(integer(d)?).map_err(de::Error::custom)
    }
}

/// A price bound of a search: 0 to [`PRICE_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PriceBound(Money);

impl PriceBound {
    pub fn new(amount: Money) -> Result<PriceBound, String> {
        if amount < Money::ZERO || amount > PRICE_MAX {
            return Err(format!("must be from 0 to {PRICE_MAX}, not {amount}"));
        }
        Ok(PriceBound(amount))
    }

    pub fn get(self) -> Money {
        self.0
    }
}

impl Serialize for PriceBound {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PriceBound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PriceBound::new(Money::deserialize(d)?).map_err(de::Error::custom)
    }
}

fn default_true() -> bool {
    true
}

/// A product as every catalog method returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(example = "LAMP-01"))]
    pub sku: String,
    #[cfg_attr(feature = "openapi", schema(example = "Desk lamp"))]
    pub name: String,
    pub description: String,
    #[cfg_attr(feature = "openapi", schema(example = "home"))]
    pub category: String,
    pub price: Money,
    /// Units that can still be ordered (never below 0).
    #[cfg_attr(feature = "openapi", schema(example = 25, minimum = 0))]
    pub stock: i64,
    /// Inactive products are not listed and cannot be ordered.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `catalog.create` (admin): a new product; the SKU must be new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateProductRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", example = "LAMP-01"))]
    pub sku: Sku,
    pub name: ProductName,
    /// Optional; empty when absent.
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub description: Option<Description>,
    pub category: Category,
    pub price: Price,
    /// Units in stock at the start (default 0).
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, nullable = false, minimum = 0, maximum = 1_000_000_000))]
    pub stock: Option<Stock>,
    /// Default `true`.
    #[serde(default = "default_true")]
    pub active: bool,
}

/// The changes of `PATCH /products/{id}`: each field optional, at least one present.
/// The SKU and the stock are not changed here (stock: `catalog.adjust_stock`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductChanges {
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<ProductName>,
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub description: Option<Description>,
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub category: Option<Category>,
    /// A new price applies to orders placed from now on, never to placed ones.
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub price: Option<Price>,
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub active: Option<bool>,
}

impl ProductChanges {
    pub fn is_empty(&self) -> bool {
        self == &ProductChanges::default()
    }
}

/// `catalog.update` (admin): the product's id and [`ProductChanges`]. The fields are
/// spelled out (no `serde(flatten)`, which would lose the path of a bad field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateProductRequest {
    pub id: Uuid,
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<ProductName>,
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<Description>,
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub category: Option<Category>,
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<Price>,
    #[serde(
        default,
        deserialize_with = "crate::limits::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub active: Option<bool>,
}

impl UpdateProductRequest {
    pub fn new(id: Uuid, changes: ProductChanges) -> Self {
        let ProductChanges {
            name,
            description,
            category,
            price,
            active,
        } = changes;
        UpdateProductRequest {
            id,
            name,
            description,
            category,
            price,
            active,
        }
    }

    pub fn changes(&self) -> ProductChanges {
        ProductChanges {
            name: self.name.clone(),
            description: self.description.clone(),
            category: self.category.clone(),
            price: self.price,
            active: self.active,
        }
    }
}

/// The body of `POST /products/{id}/stock`: a relative change and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockAdjustment {
    /// `+n` or `-n`, not 0; the stock never goes below 0 (`failed_precondition`).
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = -1_000_000_000, maximum = 1_000_000_000, example = 10))]
    pub delta: StockDelta,
    #[cfg_attr(feature = "openapi", schema(example = "delivery 2026-12-01"))]
    pub reason: Reason,
}

/// `catalog.adjust_stock` (admin): the product's id and a [`StockAdjustment`], spelled
/// out (see [`UpdateProductRequest`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdjustStockRequest {
    pub id: Uuid,
    pub delta: StockDelta,
    pub reason: Reason,
}

/// `catalog.get`: one product (an inactive one only for an admin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetProductRequest {
    pub id: Uuid,
}

/// `catalog.list`: active products by name, filtered, one page. Also the query of
/// `GET /products`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListProductsRequest {
    /// Only this category (exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub category: Option<Category>,
    /// Case-insensitive text in the name, SKU or description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub q: Option<SearchText>,
    /// Lowest price, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, pattern = r"^(?:0*[0-9]{1,6}(?:\.[0-9]{1,2})?|0*1000000(?:\.00?)?)$"))]
    pub min_price: Option<PriceBound>,
    /// Highest price, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, pattern = r"^(?:0*[0-9]{1,6}(?:\.[0-9]{1,2})?|0*1000000(?:\.00?)?)$"))]
    pub max_price: Option<PriceBound>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub limit: Option<PageLimit>,
    /// Products to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub offset: Option<PageOffset>,
}

/// Reply of `catalog.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductPage {
    pub products: Vec<Product>,
    /// Matching products in all.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn skus_and_their_pattern_agree() {
        let re = regex::Regex::new(&Sku::pattern()).unwrap();
        for s in [
            "A",
            "LAMP-01",
            "a.b_c",
            "-x",
            "",
            "a b",
            "é",
            &"x".repeat(64),
            &"x".repeat(65),
        ] {
            assert_eq!(re.is_match(s), Sku::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn requests_check_themselves() {
        let req: CreateProductRequest = serde_json::from_value(
            json!({"sku": "P-1", "name": " Pen ", "category": "office", "price": "1.50"}),
        )
        .unwrap();
        assert_eq!(req.name.as_str(), "Pen");
        assert!(req.active && req.stock.is_none());
        for (bad, path) in [
            (
                json!({"sku": "P 1", "name": "x", "category": "c", "price": 1}),
                "sku",
            ),
            (
                json!({"sku": "P", "name": "x", "category": "c", "price": 0}),
                "price",
            ),
            (
                json!({"sku": "P", "name": "x", "category": "c", "price": 1, "stock": -1}),
                "stock",
            ),
        ] {
            let err = serde_path_to_error::deserialize::<_, CreateProductRequest>(bad).unwrap_err();
            assert_eq!(err.path().to_string(), path);
        }
        let adj: AdjustStockRequest =
            serde_json::from_value(json!({"id": Uuid::nil(), "delta": "-3", "reason": "broken"}))
                .unwrap();
        assert_eq!(adj.delta.get(), -3);
        let err = serde_path_to_error::deserialize::<_, AdjustStockRequest>(
            json!({"id": Uuid::nil(), "delta": 0, "reason": "x"}),
        )
        .unwrap_err();
        assert_eq!(err.path().to_string(), "delta");
        assert!(
            serde_json::from_value::<StockAdjustment>(json!({"delta": 0, "reason": "x"})).is_err()
        );
        let q: ListProductsRequest =
            serde_urlencoded::from_str("q=lamp&min_price=1.5&max_price=20&limit=5").unwrap();
        assert_eq!(q.min_price.map(|p| p.get().minor()), Some(150));
        assert!(serde_urlencoded::from_str::<ListProductsRequest>("min_price=-1").is_err());
    }
}
