//! SQL of the `orders` and `order_items` tables.

use crate::domain::cursor::Cursor;
use crate::domain::items::NewItems;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use proto_msgs::Money;
use proto_msgs::orders::{Order, OrderItem, OrderStatus};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use std::collections::HashMap;
use uuid::Uuid;

const COLUMNS: &str = "id, user_id, status, total_cents, created_at, updated_at";

/// An order without its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub total: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrderRow {
    fn read(row: &QueryResult) -> Result<OrderRow> {
        let status: String = row.try_get("", "status")?;
        Ok(OrderRow {
            id: row.try_get("", "id")?,
            user_id: row.try_get("", "user_id")?,
            status: status.parse().map_err(Error::Corrupt)?,
            total: Money::from_minor(row.try_get("", "total_cents")?),
            created_at: row.try_get("", "created_at")?,
            updated_at: row.try_get("", "updated_at")?,
        })
    }

    pub fn with_items(self, items: Vec<OrderItem>) -> Order {
        Order {
            id: self.id,
            user_id: self.user_id,
            items,
            total: self.total,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn stmt(sql: impl Into<String>, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Inserts a new `PENDING` order and its lines. Returns `None`, having written
/// nothing, when this user already has an order with `idempotency_key`: the unique
/// index decides, so two concurrent creates with one key can't both insert (the second
/// waits for the first's transaction, then sees the conflict).
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    idempotency_key: Option<&str>,
    items: &NewItems,
) -> Result<Option<Order>> {
    let row = conn
        .query_one_raw(stmt(
            format!(
                "INSERT INTO orders (id, user_id, status, total_cents, idempotency_key)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, idempotency_key) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            [
                Uuid::now_v7().into(),
                user_id.into(),
                OrderStatus::Pending.as_str().into(),
                items.total().minor().into(),
                idempotency_key.map(str::to_owned).into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let order = OrderRow::read(&row)?;

    let mut placeholders = Vec::with_capacity(items.items().len());
    let mut values: Vec<Value> = Vec::with_capacity(items.items().len() * 5);
    for (position, item) in items.items().iter().enumerate() {
        let n = values.len();
        placeholders.push(format!(
            "(${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5
        ));
        values.extend([
            order.id.into(),
            i32::try_from(position).unwrap_or(i32::MAX).into(),
            item.name.as_str().into(),
            item.price.minor().into(),
            i32::try_from(item.quantity).unwrap_or(i32::MAX).into(),
        ]);
    }
    conn.execute_raw(stmt(
        format!(
            "INSERT INTO order_items (order_id, position, name, price_cents, quantity) VALUES {}",
            placeholders.join(", ")
        ),
        values,
    ))
    .await?;
    let lines = items.items().iter().map(|i| i.to_order_item()).collect();
    Ok(Some(order.with_items(lines)))
}

/// The order this user created with `idempotency_key`, if any.
pub async fn find_by_idempotency_key<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    idempotency_key: &str,
) -> Result<Option<Order>> {
    let row = conn
        .query_one_raw(stmt(
            format!("SELECT {COLUMNS} FROM orders WHERE user_id = $1 AND idempotency_key = $2"),
            [user_id.into(), idempotency_key.to_owned().into()],
        ))
        .await?;
    with_items(conn, row).await
}

/// An order with its lines, in one round trip (one row per line; every order has at
/// least one line).
pub async fn find<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Order>> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT o.id, o.user_id, o.status, o.total_cents, o.created_at, o.updated_at,
                    i.order_id, i.name, i.price_cents, i.quantity
             FROM orders o JOIN order_items i ON i.order_id = o.id
             WHERE o.id = $1 ORDER BY i.position"
                .to_owned(),
            [id.into()],
        ))
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let order = OrderRow::read(first)?;
    let items = rows.iter().map(item_of).collect::<Result<Vec<_>>>()?;
    Ok(Some(order.with_items(items)))
}

async fn with_items<C: ConnectionTrait>(
    conn: &C,
    row: Option<QueryResult>,
) -> Result<Option<Order>> {
    let Some(row) = row else {
        return Ok(None);
    };
    let order = OrderRow::read(&row)?;
    let mut items = items_of(conn, &[order.id]).await?;
    let lines = items.remove(&order.id).unwrap_or_default();
    Ok(Some(order.with_items(lines)))
}

/// Locks the order's row until the transaction ends, so two status changes of one
/// order run one after the other and the second sees the first's result.
pub async fn lock<C: ConnectionTrait>(txn: &C, id: Uuid) -> Result<Option<OrderRow>> {
    let row = txn
        .query_one_raw(stmt(
            format!("SELECT {COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"),
            [id.into()],
        ))
        .await?;
    row.as_ref().map(OrderRow::read).transpose()
}

/// Sets the status (call with the row locked); returns the order as it is now.
pub async fn set_status<C: ConnectionTrait>(
    txn: &C,
    id: Uuid,
    status: OrderStatus,
) -> Result<OrderRow> {
    let row = txn
        .query_one_raw(stmt(
            format!(
                "UPDATE orders SET status = $2, updated_at = clock_timestamp() WHERE id = $1 RETURNING {COLUMNS}"
            ),
            [id.into(), status.as_str().into()],
        ))
        .await?
        .ok_or(Error::OrderNotFound(id))?;
    OrderRow::read(&row)
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Start,
    After(Cursor),
    Offset(u64),
}

/// One user's orders, newest first (created_at DESC, id DESC), at most `limit`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    status: Option<OrderStatus>,
    position: Position,
    limit: u64,
) -> Result<Vec<Order>> {
    let mut sql = format!("SELECT {COLUMNS} FROM orders WHERE user_id = $1");
    let mut values: Vec<Value> = vec![user_id.into()];
    if let Some(status) = status {
        values.push(status.as_str().into());
        sql.push_str(&format!(" AND status = ${}", values.len()));
    }
    if let Position::After(cursor) = position {
        values.push(cursor.created_at.into());
        values.push(cursor.id.into());
        sql.push_str(&format!(
            " AND (created_at, id) < (${}, ${})",
            values.len() - 1,
            values.len()
        ));
    }
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT ${}",
        values.len()
    ));
    if let Position::Offset(offset) = position {
        values.push(i64::try_from(offset).unwrap_or(i64::MAX).into());
        sql.push_str(&format!(" OFFSET ${}", values.len()));
    }
    let rows = conn.query_all_raw(stmt(sql, values)).await?;
    let rows = rows
        .iter()
        .map(OrderRow::read)
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut items = items_of(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let lines = items.remove(&r.id).unwrap_or_default();
            r.with_items(lines)
        })
        .collect())
}

/// The lines of these orders, in their original order, in one query.
async fn items_of<C: ConnectionTrait>(
    conn: &C,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<OrderItem>>> {
    let mut out: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
    if order_ids.is_empty() {
        return Ok(out);
    }
    let placeholders: Vec<String> = (1..=order_ids.len()).map(|i| format!("${i}")).collect();
    let rows = conn
        .query_all_raw(stmt(
            format!(
                "SELECT order_id, name, price_cents, quantity FROM order_items
                 WHERE order_id IN ({}) ORDER BY order_id, position",
                placeholders.join(", ")
            ),
            order_ids.iter().map(|id| Value::from(*id)),
        ))
        .await?;
    for row in rows {
        let order_id: Uuid = row.try_get("", "order_id")?;
        out.entry(order_id).or_default().push(item_of(&row)?);
    }
    Ok(out)
}

/// One order line from a row with `order_id, name, price_cents, quantity`.
fn item_of(row: &QueryResult) -> Result<OrderItem> {
    let order_id: Uuid = row.try_get("", "order_id")?;
    let price = Money::from_minor(row.try_get("", "price_cents")?);
    let quantity = i64::from(row.try_get::<i32>("", "quantity")?);
    let subtotal = price
        .checked_mul(quantity)
        .ok_or_else(|| Error::Corrupt(format!("subtotal overflow in order {order_id}")))?;
    Ok(OrderItem {
        name: row.try_get("", "name")?,
        price,
        quantity,
        subtotal,
    })
}
