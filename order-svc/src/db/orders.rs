//! The `orders` and `order_items` tables.

use super::entities::order::{self, DbStatus};
use super::entities::order_item;
use crate::domain::cursor::Cursor;
use crate::domain::items::{PricedLine, total};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use proto_msgs::Money;
use proto_msgs::orders::{Order, OrderItem, OrderStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use uuid::Uuid;

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

impl From<order::Model> for OrderRow {
    fn from(m: order::Model) -> OrderRow {
        OrderRow {
            id: m.id,
            user_id: m.user_id,
            status: m.status.into(),
            total: Money::from_minor(m.total_cents),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl OrderRow {
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

/// Inserts a new `PENDING` order and its priced lines.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    lines: &[PricedLine],
) -> Result<Order> {
    let new = order::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        status: Set(OrderStatus::Pending.into()),
        total_cents: Set(total(lines).minor()),
        ..Default::default()
    };
    let order = OrderRow::from(new.insert(conn).await?);
    let rows = lines
        .iter()
        .enumerate()
        .map(|(position, line)| order_item::ActiveModel {
            order_id: Set(order.id),
            position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            product_id: Set(Some(line.product_id)),
            name: Set(line.name.clone()),
            price_cents: Set(line.price.minor()),
            quantity: Set(i32::try_from(line.quantity).unwrap_or(i32::MAX)),
        });
    order_item::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(order.with_items(lines.iter().map(PricedLine::to_order_item).collect()))
}

/// An order with its lines, in one round trip (an inner join, one row per line; every
/// order has at least one line).
pub async fn find<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Order>> {
    let rows = order::Entity::find_by_id(id)
        .find_both_related(order_item::Entity)
        .order_by_asc(order_item::Column::Position)
        .all(conn)
        .await?;
    let Some((first, _)) = rows.first() else {
        return Ok(None);
    };
    let order = OrderRow::from(first.clone());
    let items = rows
        .iter()
        .map(|(_, item)| item_of(item))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(order.with_items(items)))
}

/// Locks the order's row until the transaction ends (`FOR UPDATE`), so two status
/// changes of one order run one after the other and the second sees the first's result.
pub async fn lock<C: ConnectionTrait>(txn: &C, id: Uuid) -> Result<Option<OrderRow>> {
    let found = order::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?;
    Ok(found.map(OrderRow::from))
}

/// Sets the status (call with the row locked); returns the order as it is now.
pub async fn set_status<C: ConnectionTrait>(
    txn: &C,
    id: Uuid,
    status: OrderStatus,
) -> Result<OrderRow> {
    let updated = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::val(DbStatus::from(status)))
        // The time of this statement, not of the transaction's start (`now()`).
        .col_expr(
            order::Column::UpdatedAt,
            Func::cust("clock_timestamp").into(),
        )
        .filter(order::Column::Id.eq(id))
        .exec_with_returning(txn)
        .await?;
    updated
        .into_iter()
        .next()
        .map(OrderRow::from)
        .ok_or(Error::OrderNotFound(id))
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
    use order::Column;
    // Bound values travel as BIGINT.
    let bigint = |n: u64| Ord::min(n, i64::MAX as u64);
    let mut query = order::Entity::find().filter(Column::UserId.eq(user_id));
    if let Some(status) = status {
        query = query.filter(Column::Status.eq(DbStatus::from(status)));
    }
    if let Position::After(cursor) = position {
        // Keyset: `(created_at, id) < (cursor)`, what the `(user_id, created_at DESC,
        // id DESC)` indexes serve.
        query = query.filter(
            Expr::tuple([Expr::col(Column::CreatedAt), Expr::col(Column::Id)]).lt(Expr::tuple([
                Expr::val(cursor.created_at),
                Expr::val(cursor.id),
            ])),
        );
    }
    query = query
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(bigint(limit));
    if let Position::Offset(offset) = position {
        query = query.offset(bigint(offset));
    }
    let rows: Vec<OrderRow> = query
        .all(conn)
        .await?
        .into_iter()
        .map(OrderRow::from)
        .collect();
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
    let rows = order_item::Entity::find()
        .filter(order_item::Column::OrderId.is_in(order_ids.iter().copied()))
        .order_by_asc(order_item::Column::OrderId)
        .order_by_asc(order_item::Column::Position)
        .all(conn)
        .await?;
    for row in &rows {
        out.entry(row.order_id).or_default().push(item_of(row)?);
    }
    Ok(out)
}

/// One order line.
fn item_of(row: &order_item::Model) -> Result<OrderItem> {
    let price = Money::from_minor(row.price_cents);
    let quantity = i64::from(row.quantity);
    let subtotal = price
        .checked_mul(quantity)
        .ok_or_else(|| Error::Corrupt(format!("subtotal overflow in order {}", row.order_id)))?;
    Ok(OrderItem {
        product_id: row.product_id,
        name: row.name.clone(),
        price,
        quantity,
        subtotal,
    })
}
