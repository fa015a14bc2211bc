//! The order service's contract: methods, request and reply types, event payloads.

use crate::money::Money;
use chrono::{DateTime, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
/// On the wire in capitals; read case-insensitively (`"shipped"` is `SHIPPED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?} (expected one of PENDING, CONFIRMED, SHIPPED, DELIVERED, CANCELLED)"
                )
            })
    }
}

impl<'de> Deserialize<'de> for OrderStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Longest item name, in characters after trimming.
pub const ITEM_NAME_MAX_CHARS: usize = 200;
/// Most lines in one order (at least one).
pub const ITEMS_MAX: usize = 100;
/// Largest quantity of one line (at least 1).
pub const QUANTITY_MAX: i64 = 10_000;
/// Highest unit price (prices are more than zero).
pub const PRICE_MAX: Money = Money::from_minor(100_000_000);
/// Page size of `orders.list` when none is given, and the largest allowed (at least 1).
pub const PAGE_LIMIT_DEFAULT: u32 = 20;
pub const PAGE_LIMIT_MAX: u32 = 100;
/// Largest `offset` of `orders.list` (PostgreSQL's BIGINT).
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// The name of an order line: 1 to [`ITEM_NAME_MAX_CHARS`] characters after trimming,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemName(String);

impl ItemName {
    pub fn parse(raw: &str) -> Result<ItemName, String> {
        crate::limits::trimmed_text(raw, ITEM_NAME_MAX_CHARS).map(ItemName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::limits::parsed_string!(ItemName);

impl fmt::Display for ItemName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A unit price: more than zero and at most [`PRICE_MAX`]. Read as a decimal string or a
/// JSON number with at most two decimal places (see [`Money`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(Money);

impl Price {
    pub fn new(amount: Money) -> Result<Price, String> {
        if amount <= Money::ZERO || amount > PRICE_MAX {
            return Err(format!(
                "must be more than 0 and at most {PRICE_MAX}, not {amount}"
            ));
        }
        Ok(Price(amount))
    }

    pub fn get(self) -> Money {
        self.0
    }

    /// In minor units (cents).
    pub fn minor(self) -> i64 {
        self.0.minor()
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Price::new(Money::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// A price as a decimal string: what [`Price`] accepts, written as a pattern (positive,
/// at most 1000000 and two significant decimal places; leading zeros and trailing
/// zeros after the point are allowed, as [`Money`] reads them).
pub const PRICE_STRING_PATTERN: &str =
    r"^(?:0*[1-9][0-9]{0,5}(?:\.[0-9]{1,2}0*)?|0+\.(?:0[1-9]|[1-9][0-9]?)0*|0*1000000(?:\.0+)?)$";

/// Reads a whole number also when written as a JSON float with no fraction (`2.0`,
/// which JSON Schema counts as an integer), and, in query strings, from its digits.
struct WholeNumber(&'static str);

impl Visitor<'_> for WholeNumber {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() == 0.0 && (0.0..1.8e19).contains(&v) {
            Ok(v as u64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

fn whole_number<'de, D: Deserializer<'de>>(d: D, what: &'static str) -> Result<u64, D::Error> {
    d.deserialize_u64(WholeNumber(what))
}

/// The quantity of an order line: 1 to [`QUANTITY_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i64);

impl Quantity {
    pub fn new(n: i64) -> Result<Quantity, String> {
        if !(1..=QUANTITY_MAX).contains(&n) {
            return Err(format!(
                "must be a whole number from 1 to {QUANTITY_MAX}, not {n}"
            ));
        }
        Ok(Quantity(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// For an `INTEGER` column; never fails (a quantity is at most [`QUANTITY_MAX`]).
impl TryFrom<Quantity> for i32 {
    type Error = std::num::TryFromIntError;
    fn try_from(q: Quantity) -> Result<i32, Self::Error> {
        i32::try_from(q.0)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = whole_number(deserializer, "a whole number from 1 to 10000")?;
        Quantity::new(i64::try_from(n).unwrap_or(i64::MAX)).map_err(de::Error::custom)
    }
}

/// Which catalog product a line buys: by id or by SKU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProductRef {
    Id(Uuid),
    Sku(crate::catalog::Sku),
}

impl ProductRef {
    /// The request field that names the product (`product_id` or `sku`).
    pub fn field(&self) -> &'static str {
        match self {
            ProductRef::Id(_) => "product_id",
            ProductRef::Sku(_) => "sku",
        }
    }
}

impl fmt::Display for ProductRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProductRef::Id(id) => write!(f, "product {id}"),
            ProductRef::Sku(sku) => write!(f, "SKU {sku:?}"),
        }
    }
}

/// One line of a new order: a catalog product (`product_id` or `sku`), how many, and
/// optionally the unit price the client showed its user. Name and price are the
/// catalog's; a `price` that differs from it is refused (`failed_precondition`), so
/// nobody is charged what they did not see. A line without a product is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    pub product: ProductRef,
    pub quantity: Quantity,
    pub price: Option<Price>,
}

/// What a line is read from, before the rule between its fields.
#[derive(Deserialize)]
struct RawItem {
    #[serde(default)]
    product_id: Option<Uuid>,
    #[serde(default)]
    sku: Option<crate::catalog::Sku>,
    /// Only to say why a free-form item is refused.
    #[serde(default)]
    name: Option<serde::de::IgnoredAny>,
    quantity: Quantity,
    #[serde(default)]
    price: Option<Price>,
}

impl<'de> Deserialize<'de> for NewItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawItem::deserialize(deserializer)?;
        let product = match (raw.product_id, raw.sku) {
            (Some(id), None) => ProductRef::Id(id),
            (None, Some(sku)) => ProductRef::Sku(sku),
            (Some(_), Some(_)) => {
                return Err(de::Error::custom(
                    "name the product by product_id or by sku, not both",
                ));
            }
            (None, None) if raw.name.is_some() => {
                return Err(de::Error::custom(
                    "free-form items are not sold: name a catalog product with product_id or sku (its name and price come from the catalog)",
                ));
            }
            (None, None) => {
                return Err(de::Error::custom(
                    "an item names a catalog product with product_id or sku",
                ));
            }
        };
        Ok(NewItem {
            product,
            quantity: raw.quantity,
            price: raw.price,
        })
    }
}

impl Serialize for NewItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match &self.product {
            ProductRef::Id(id) => map.serialize_entry("product_id", id)?,
            ProductRef::Sku(sku) => map.serialize_entry("sku", sku)?,
        }
        map.serialize_entry("quantity", &self.quantity)?;
        if let Some(price) = &self.price {
            map.serialize_entry("price", price)?;
        }
        map.end()
    }
}

/// The lines of a new order: 1 to [`ITEMS_MAX`].
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLines(Vec<NewItem>);

impl OrderLines {
    pub fn new(items: Vec<NewItem>) -> Result<OrderLines, String> {
        if items.is_empty() || items.len() > ITEMS_MAX {
            return Err(format!(
                "an order has 1 to {ITEMS_MAX} items, not {}",
                items.len()
            ));
        }
        Ok(OrderLines(items))
    }

    pub fn items(&self) -> &[NewItem] {
        &self.0
    }
}

impl Serialize for OrderLines {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OrderLines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        OrderLines::new(Vec::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// `orders.create`. The owner is the actor; a `user_id` in the body is ignored. Stock is
/// reserved with the order (`failed_precondition` with the available quantity when
/// there is too little). Header `x-idempotency-key` makes a retried create return the
/// first order; the same key with different items is refused with
/// `failed_precondition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateOrderRequest {
    pub items: OrderLines,
}

/// One line of an order, with its subtotal (`price × quantity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderItem {
    /// The catalog product (absent on lines of orders placed before the catalog).
    #[serde(default)]
    pub product_id: Option<Uuid>,
    /// The product's name when the order was placed.
    #[cfg_attr(feature = "openapi", schema(example = "Product"))]
    pub name: String,
    /// The catalog's unit price when the order was placed.
    pub price: Money,
    #[cfg_attr(feature = "openapi", schema(example = 2))]
    pub quantity: i64,
    pub subtotal: Money,
}

/// An order as returned by every method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A page size of `orders.list`: 1 to [`PAGE_LIMIT_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const DEFAULT: PageLimit = PageLimit(PAGE_LIMIT_DEFAULT);

    pub fn new(n: u64) -> Result<PageLimit, String> {
        match u32::try_from(n) {
            Ok(n) if (1..=PAGE_LIMIT_MAX).contains(&n) => Ok(PageLimit(n)),
            _ => Err(format!("must be 1 to {PAGE_LIMIT_MAX}, not {n}")),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Serialize for PageLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for PageLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = whole_number(deserializer, "a whole number from 1 to 100")?;
        PageLimit::new(n).map_err(de::Error::custom)
    }
}

/// How many orders to skip: 0 to [`OFFSET_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageOffset(u64);

impl PageOffset {
    pub fn new(n: u64) -> Result<PageOffset, String> {
        if n > OFFSET_MAX {
            return Err(format!("must be at most {OFFSET_MAX}, not {n}"));
        }
        Ok(PageOffset(n))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl Serialize for PageOffset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for PageOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = whole_number(deserializer, "a whole number, 0 or more")?;
        PageOffset::new(n).map_err(de::Error::custom)
    }
}

/// Where the next page of `orders.list` starts: strictly after the order at this
/// position in (created_at, id) descending. Written `v1.<created_at in µs>.<id as 32
/// hex digits>`; callers treat it as opaque and pass `next_cursor` back unchanged.
/// The position does not depend on the filters, so a cursor stays correct for the same
/// query; with other filters it continues from that point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Version tag of the cursor format.
const CURSOR_VERSION: &str = "v1";
/// Most digits of the timestamp of a cursor (µs since 1970: beyond the year 5000).
const CURSOR_MICROS_DIGITS: usize = 17;

impl PageCursor {
    /// `created_at` is kept in microseconds: PostgreSQL's precision, so the position
    /// compares equal to the stored row. Times before 1970 cannot be cursors.
    pub fn encode(&self) -> String {
        format!(
            "{CURSOR_VERSION}.{}.{}",
            self.created_at.timestamp_micros().max(0),
            self.id.simple()
        )
    }

    pub fn parse(text: &str) -> Result<PageCursor, String> {
        let bad = || {
            "is not a cursor of this service; pass the next_cursor of a previous page unchanged"
                .to_owned()
        };
        let mut parts = text.split('.');
        let (Some(CURSOR_VERSION), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let digits = |s: &str, max: usize, ok: fn(u8) -> bool| {
            !s.is_empty() && s.len() <= max && s.bytes().all(ok)
        };
        if !digits(micros, CURSOR_MICROS_DIGITS, |b| b.is_ascii_digit())
            || !digits(id, 32, |b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            || id.len() != 32
        {
            return Err(bad());
        }
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        Ok(PageCursor {
            created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
            id: Uuid::parse_str(id).map_err(|_| bad())?,
        })
    }

    /// [`PageCursor::parse`] as a pattern; the empty string (a blank form field) means
    /// the first page.
    pub fn pattern() -> String {
        format!("^(?:{CURSOR_VERSION}\\.[0-9]{{1,{CURSOR_MICROS_DIGITS}}}\\.[0-9a-f]{{32}})?$")
    }
}

impl Serialize for PageCursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for PageCursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        PageCursor::parse(&String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// `null`, absent and `""` are no cursor (the first page).
fn optional_cursor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PageCursor>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => PageCursor::parse(&text)
            .map(Some)
            .map_err(de::Error::custom),
    }
}

/// `orders.list`: the actor's orders, newest first. An admin may pass `user_id`.
/// Page with `cursor` (from the previous page's `next_cursor`) or `offset`, not both.
/// Also the query of `GET /orders`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListOrdersRequest {
    /// Admins only: another user's orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// Only orders with this status (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub status: Option<OrderStatus>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub limit: Option<PageLimit>,
    /// The `next_cursor` of the previous page (not with `offset`).
    #[serde(
        default,
        deserialize_with = "optional_cursor",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub cursor: Option<PageCursor>,
    /// Orders to skip (instead of `cursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub offset: Option<PageOffset>,
}

/// Reply of `orders.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// The change `orders.update_status` asks for, without the order: the body of
/// `PATCH /orders/{id}/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewStatus {
    /// The new status (case-insensitive).
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

/// JSON Schemas of the field types, with the rules above (feature `openapi`).
#[cfg(feature = "openapi")]
mod openapi {
    use super::*;
    use crate::limits::schema::{integer, string, string_enum};
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    use utoipa::{PartialSchema, ToSchema};

    impl PartialSchema for OrderStatus {
        fn schema() -> RefOr<Schema> {
            string_enum(
                "`PENDING → CONFIRMED → SHIPPED → DELIVERED`, and `PENDING | CONFIRMED → \
                 CANCELLED`. Sent in capitals; read case-insensitively.",
                OrderStatus::ALL.iter().map(|s| s.as_str()),
            )
        }
    }
    impl ToSchema for OrderStatus {}

    impl PartialSchema for ItemName {
        fn schema() -> RefOr<Schema> {
            string(&format!(
                "1 to {ITEM_NAME_MAX_CHARS} characters once surrounding whitespace is dropped, \
                 no control characters."
            ))
            .pattern(Some(crate::limits::trimmed_text_pattern(
                ITEM_NAME_MAX_CHARS,
            )))
            .examples(["Product"])
            .into()
        }
    }
    impl ToSchema for ItemName {}

    impl PartialSchema for Price {
        fn schema() -> RefOr<Schema> {
            let max = PRICE_MAX.minor() / 100;
            OneOfBuilder::new()
                .description(Some(format!(
                    "A unit price, more than 0 and at most {PRICE_MAX}, with at most two \
                     decimal places: a decimal string or a JSON number."
                )))
                .item(string("A decimal string.").pattern(Some(PRICE_STRING_PATTERN)))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Number)
                        .exclusive_minimum(Some(0))
                        .maximum(Some(max))
                        .multiple_of(Some(0.01)),
                )
                .examples(["100.00"])
                .into()
        }
    }
    impl ToSchema for Price {}

    impl PartialSchema for Quantity {
        fn schema() -> RefOr<Schema> {
            integer("How many.", 1, QUANTITY_MAX).examples([2]).into()
        }
    }
    impl ToSchema for Quantity {}

    impl PartialSchema for NewItem {
        /// The properties; "exactly one of `product_id` and `sku`" is a `oneOf` of
        /// `required` lists, which the gateway adds to the document (utoipa's object
        /// builder has no `oneOf`).
        fn schema() -> RefOr<Schema> {
            let sku = string("The product's SKU.")
                .pattern(Some(crate::catalog::Sku::pattern()))
                .examples(["LAMP-01"]);
            let id = ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid),
            ));
            ObjectBuilder::new()
                .description(Some(
                    "A catalog product, by `product_id` or by `sku` (exactly one), and how \
                     many. `price`, if sent, is the unit price the client showed: it must \
                     equal the catalog's. Name and price come from the catalog; free-form \
                     items are refused.",
                ))
                .property("product_id", id)
                .property("sku", sku)
                .property("quantity", Quantity::schema())
                .required("quantity")
                .property("price", Price::schema())
                .into()
        }
    }
    impl ToSchema for NewItem {}

    impl PartialSchema for OrderLines {
        fn schema() -> RefOr<Schema> {
            ArrayBuilder::new()
                .items(NewItem::schema())
                .min_items(Some(1))
                .max_items(Some(ITEMS_MAX))
                .description(Some(format!("1 to {ITEMS_MAX} lines.")))
                .into()
        }
    }
    impl ToSchema for OrderLines {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((NewItem::name().into(), NewItem::schema()));
            <NewItem as ToSchema>::schemas(schemas);
        }
    }

    impl PartialSchema for PageLimit {
        fn schema() -> RefOr<Schema> {
            integer(
                &format!("1 to {PAGE_LIMIT_MAX}, default {PAGE_LIMIT_DEFAULT}."),
                1,
                i64::from(PAGE_LIMIT_MAX),
            )
            .default(Some(PAGE_LIMIT_DEFAULT.into()))
            .into()
        }
    }
    impl ToSchema for PageLimit {}

    impl PartialSchema for PageOffset {
        fn schema() -> RefOr<Schema> {
            integer("Orders to skip.", 0, i64::MAX).into()
        }
    }
    impl ToSchema for PageOffset {}

    impl PartialSchema for PageCursor {
        fn schema() -> RefOr<Schema> {
            string("The `next_cursor` of the previous page, unchanged; empty: the first page.")
                .pattern(Some(PageCursor::pattern()))
                .into()
        }
    }
    impl ToSchema for PageCursor {}
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
            "items": [{"sku": "P-1", "price": 100, "quantity": 2}]
        }))
        .unwrap();
        assert_eq!(req.items.items()[0].price.map(Price::minor), Some(10000));
    }

    fn path_of(body: serde_json::Value) -> String {
        let err = serde_path_to_error::deserialize::<_, CreateOrderRequest>(body).unwrap_err();
        err.path().to_string()
    }

    fn message_of(body: serde_json::Value) -> String {
        serde_json::from_value::<CreateOrderRequest>(body)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn lines_name_a_product_by_id_or_sku() {
        let id = Uuid::new_v4();
        let req: CreateOrderRequest = serde_json::from_value(json!({"items": [
            {"product_id": id, "quantity": 3},
            {"sku": "BOOK-1", "quantity": 2.0, "price": "100"},
        ]}))
        .unwrap();
        assert_eq!(req.items.items()[0].product, ProductRef::Id(id));
        assert_eq!(req.items.items()[1].product.field(), "sku");
        // Written back the same way.
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"items": [
                {"product_id": id, "quantity": 3},
                {"sku": "BOOK-1", "quantity": 2, "price": "100.00"},
            ]})
        );
        let free = message_of(json!({"items": [{"name": "TV", "price": "0.01", "quantity": 1}]}));
        assert!(free.contains("free-form items are not sold"), "{free}");
        let both = message_of(json!({"items": [{"sku": "A", "product_id": id, "quantity": 1}]}));
        assert!(both.contains("not both"), "{both}");
    }

    #[test]
    fn every_problem_names_its_path() {
        let ok = || json!({"sku": "A-1", "quantity": 1});
        assert_eq!(path_of(json!({"items": []})), "items");
        assert_eq!(path_of(json!({"items": "lots"})), "items");
        assert_eq!(
            path_of(json!({"items": vec![ok(); ITEMS_MAX + 1]})),
            "items"
        );
        assert_eq!(path_of(json!({"items": [ok(), 5]})), "items[1]");
        assert_eq!(
            path_of(json!({"items": [ok(), {"name": "x", "quantity": 1}]})),
            "items[1]"
        );
        let item = |price: serde_json::Value, qty: serde_json::Value| json!({"sku": "A-1", "price": price, "quantity": qty});
        for (bad, field) in [
            (json!({"sku": "a b", "quantity": 1}), "sku"),
            (json!({"product_id": "x", "quantity": 1}), "product_id"),
            (item(json!(0), json!(1)), "price"),
            (item(json!("-1"), json!(1)), "price"),
            (item(json!("0.105"), json!(1)), "price"),
            (item(json!("1000000.01"), json!(1)), "price"),
            (item(json!(1), json!(0)), "quantity"),
            (item(json!(1), json!(10001)), "quantity"),
            (item(json!(1), json!(1.5)), "quantity"),
            (item(json!(1), json!("2")), "quantity"),
        ] {
            assert_eq!(
                path_of(json!({"items": [ok(), ok(), bad.clone()]})),
                format!("items[2].{field}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_price_pattern_is_the_price_rule() {
        let re = regex::Regex::new(PRICE_STRING_PATTERN).unwrap();
        let rule = |s: &str| {
            s.parse::<Money>()
                .ok()
                .and_then(|m| Price::new(m).ok())
                .is_some()
        };
        for text in [
            "1",
            "0.01",
            "0.1",
            "0.10",
            "0.100",
            "19.99",
            "100",
            "0001.5",
            "999999.99",
            "1000000",
            "1000000.00",
            "1000000.000",
            "5.",
            ".5",
            "0",
            "0.00",
            "000",
            "-1",
            "0.105",
            "1000000.01",
            "1000001",
            "1e3",
            " 1",
            "1 ",
            "abc",
            "",
            "12345678",
            "0.001",
            "00.01",
            "0.09",
            "0.90",
            "1.990",
            "10.0000",
        ] {
            assert_eq!(re.is_match(text), rule(text), "{text:?}");
        }
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = PageCursor {
            created_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        let text = c.encode();
        let re = regex::Regex::new(&PageCursor::pattern()).unwrap();
        assert!(re.is_match(&text), "{text}");
        assert_eq!(PageCursor::parse(&text), Ok(c));
        let id = Uuid::from_u128(0xabcdef00_1234_5678_9abc_def012345678)
            .simple()
            .to_string();
        for bad in [
            "".to_owned(),
            "!!!".to_owned(),
            "v2.1.".to_owned() + &id,
            format!("v1.1.{id}.x"),
            format!("v1..{id}"),
            format!("v1.-1.{id}"),
            format!("v1.1.{}", id.to_uppercase()),
            format!("v1.123456789012345678.{id}"),
            format!("v1.1.{}", &id[1..]),
            "djE6MTIz".to_owned(),
        ] {
            assert!(PageCursor::parse(&bad).is_err(), "{bad}");
            assert_eq!(re.is_match(&bad), bad.is_empty(), "{bad}");
        }
        assert!(PageCursor::parse(&format!("v1.99999999999999999.{id}")).is_ok());
    }

    #[test]
    fn list_requests_are_checked_while_reading() {
        let req: ListOrdersRequest =
            serde_json::from_value(json!({"limit": 5, "cursor": "", "status": "shipped"})).unwrap();
        assert_eq!(req.limit, Some(PageLimit::new(5).unwrap()));
        assert!(req.cursor.is_none());
        assert_eq!(req.status, Some(OrderStatus::Shipped));
        for bad in [
            json!({"limit": 0}),
            json!({"limit": 101}),
            json!({"limit": -1}),
            json!({"limit": "5"}),
            json!({"offset": -3}),
            json!({"offset": 9223372036854775808u64}),
            json!({"cursor": "x"}),
            json!({"status": " SHIPPED"}),
            json!({"user_id": "me"}),
        ] {
            let err =
                serde_path_to_error::deserialize::<_, ListOrdersRequest>(bad.clone()).unwrap_err();
            let field = bad.as_object().unwrap().keys().next().unwrap().clone();
            assert_eq!(err.path().to_string(), field, "{bad}");
        }
        // The same type reads a query string (the gateway's `GET /orders`).
        let q: ListOrdersRequest =
            serde_urlencoded::from_str("limit=7&offset=3&status=pending&cursor=").unwrap();
        assert_eq!(
            (q.limit.map(PageLimit::get), q.offset.map(PageOffset::get)),
            (Some(7), Some(3))
        );
        assert!(serde_urlencoded::from_str::<ListOrdersRequest>("limit=1000").is_err());
    }
}
