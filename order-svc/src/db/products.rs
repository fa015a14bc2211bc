//! The `products` table: the catalog, and the stock that orders reserve.

use super::entities::product;
use crate::error::{Error, Result};
use proto_msgs::Money;
use proto_msgs::catalog::{CreateProductRequest, ListProductsRequest, Product, ProductChanges};
use proto_msgs::orders::PageLimit;
use sea_orm::sea_query::extension::postgres::PgExpr;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

impl From<product::Model> for Product {
    fn from(m: product::Model) -> Product {
        Product {
            id: m.id,
            sku: m.sku,
            name: m.name,
            description: m.description,
            category: m.category,
            price: Money::from_minor(m.price_cents),
            stock: m.stock,
            active: m.active,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Inserts a product; `None` when its SKU exists (the unique index decides).
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    req: &CreateProductRequest,
) -> Result<Option<Product>> {
    let now = chrono::Utc::now();
    let row = product::ActiveModel {
        id: Set(Uuid::now_v7()),
        sku: Set(req.sku.as_str().to_owned()),
        name: Set(req.name.as_str().to_owned()),
        description: Set(req
            .description
            .as_ref()
            .map(|d| d.as_str().to_owned())
            .unwrap_or_default()),
        category: Set(req.category.as_str().to_owned()),
        price_cents: Set(req.price.minor()),
        stock: Set(req.stock.map_or(0, |s| s.get())),
        active: Set(req.active),
        created_at: Set(now),
        updated_at: Set(now),
    };
    match row.insert(conn).await {
        Ok(m) => Ok(Some(m.into())),
        Err(e) if svc_kit::db::is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub async fn find<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Product>> {
    Ok(product::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(Product::from))
}

pub async fn find_by_sku<C: ConnectionTrait>(conn: &C, sku: &str) -> Result<Option<Product>> {
    Ok(product::Entity::find()
        .filter(product::Column::Sku.eq(sku))
        .one(conn)
        .await?
        .map(Product::from))
}

/// Applies `changes` (not empty); `None` when there is no such product.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    changes: &ProductChanges,
) -> Result<Option<Product>> {
    let mut update = product::Entity::update_many()
        .col_expr(
            product::Column::UpdatedAt,
            Func::cust("clock_timestamp").into(),
        )
        .filter(product::Column::Id.eq(id));
    if let Some(name) = &changes.name {
        update = update.col_expr(product::Column::Name, Expr::val(name.as_str()));
    }
    if let Some(d) = &changes.description {
        update = update.col_expr(product::Column::Description, Expr::val(d.as_str()));
    }
    if let Some(c) = &changes.category {
        update = update.col_expr(product::Column::Category, Expr::val(c.as_str()));
    }
    if let Some(p) = changes.price {
        update = update.col_expr(product::Column::PriceCents, Expr::val(p.minor()));
    }
    if let Some(a) = changes.active {
        update = update.col_expr(product::Column::Active, Expr::val(a));
    }
    let updated = update.exec_with_returning(conn).await?;
    Ok(updated.into_iter().next().map(Product::from))
}

/// Adds `delta` (negative: removes) unless that would take the stock below 0:
/// one conditional `UPDATE`, so concurrent adjustments and orders can't oversell.
/// `Ok(None)`: no such product; `Err(OutOfStock)`: too little.
pub async fn adjust_stock<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    delta: i64,
) -> Result<Option<Product>> {
    let updated = product::Entity::update_many()
        .col_expr(
            product::Column::Stock,
            Expr::col(product::Column::Stock).add(delta),
        )
        .col_expr(
            product::Column::UpdatedAt,
            Func::cust("clock_timestamp").into(),
        )
        .filter(product::Column::Id.eq(id))
        .filter(Expr::col(product::Column::Stock).add(delta).gte(0))
        .exec_with_returning(conn)
        .await?;
    if let Some(p) = updated.into_iter().next() {
        return Ok(Some(p.into()));
    }
    match find(conn, id).await? {
        None => Ok(None),
        Some(p) => Err(Error::StockBelowZero {
            id,
            stock: p.stock,
            delta,
        }),
    }
}

/// One page of active products, by name, and how many match in all.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    req: &ListProductsRequest,
) -> Result<(Vec<Product>, u64)> {
    use product::Column;
    let mut cond = Condition::all().add(Column::Active.eq(true));
    if let Some(c) = &req.category {
        cond = cond.add(Column::Category.eq(c.as_str()));
    }
    if let Some(q) = &req.q {
        // ILIKE with the user's text as a literal: `%`, `_` and `\` escaped.
        let escaped: String = q
            .as_str()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        cond = cond.add(
            Condition::any()
                .add(Expr::col(Column::Name).ilike(pattern.clone()))
                .add(Expr::col(Column::Sku).ilike(pattern.clone()))
                .add(Expr::col(Column::Description).ilike(pattern)),
        );
    }
    if let Some(min) = req.min_price {
        cond = cond.add(Column::PriceCents.gte(min.get().minor()));
    }
    if let Some(max) = req.max_price {
        cond = cond.add(Column::PriceCents.lte(max.get().minor()));
    }
    let query = product::Entity::find().filter(cond);
    let total = query.clone().count(conn).await?;
    let limit = u64::from(req.limit.unwrap_or(PageLimit::DEFAULT).get());
    let offset = Ord::min(req.offset.map_or(0, |o| o.get()), i64::MAX as u64);
    let rows = query
        .order_by_asc(Column::Name)
        .order_by_asc(Column::Id)
        .limit(limit)
        .offset(offset)
        .all(conn)
        .await?;
    Ok((rows.into_iter().map(Product::from).collect(), total))
}

/// Locks the products named by `ids` or `skus` (`FOR UPDATE`), in id order: every
/// transaction that reserves stock takes its locks in the same order, so two orders
/// for the same products wait for each other instead of deadlocking.
pub async fn lock_for_order<C: ConnectionTrait>(
    txn: &C,
    ids: &[Uuid],
    skus: &[String],
) -> Result<Vec<product::Model>> {
    Ok(product::Entity::find()
        .filter(
            Condition::any()
                .add(product::Column::Id.is_in(ids.iter().copied()))
                .add(product::Column::Sku.is_in(skus.iter().cloned())),
        )
        .order_by_asc(product::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?)
}

/// Takes `quantity` off the stock if that much is there (call with the row locked).
/// Returns whether it was.
pub async fn reserve<C: ConnectionTrait>(txn: &C, id: Uuid, quantity: i64) -> Result<bool> {
    let done = product::Entity::update_many()
        .col_expr(
            product::Column::Stock,
            Expr::col(product::Column::Stock).sub(quantity),
        )
        .filter(product::Column::Id.eq(id))
        .filter(product::Column::Stock.gte(quantity))
        .exec(txn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Puts `quantity` back (a cancelled order's reservation).
pub async fn release<C: ConnectionTrait>(txn: &C, id: Uuid, quantity: i64) -> Result<()> {
    product::Entity::update_many()
        .col_expr(
            product::Column::Stock,
            Expr::col(product::Column::Stock).add(quantity),
        )
        .filter(product::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}
