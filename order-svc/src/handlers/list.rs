//! `orders.list {user_id?, status?, limit?, cursor? | offset?}` → `OrderPage`.
//!
//! The actor's orders, newest first (created_at DESC, id DESC). Keyset paging with an
//! opaque `cursor` (stable while orders are added), or `offset`; not both. An admin may
//! list anyone's orders through `user_id`; anyone else only their own.
//! `next_cursor` is set whenever `has_more`, in offset mode too, so a client can switch.

use crate::db::orders::{self, Position};
use crate::domain::cursor::Cursor;
use crate::domain::fields;
use crate::error::{Error, Result};
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::orders::{DEFAULT_PAGE, MAX_PAGE, OrderPage};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Largest offset accepted (beyond it, PostgreSQL's BIGINT is the limit anyway).
const MAX_OFFSET: u64 = i64::MAX as u64;

#[derive(Debug, Deserialize)]
pub struct Body {
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    limit: Option<Value>,
    #[serde(default)]
    cursor: Option<Value>,
    #[serde(default)]
    offset: Option<Value>,
}

pub async fn handle(app: Arc<App>, ctx: RequestContext, body: Body) -> Result<OrderPage> {
    let actor = ctx.require_actor()?;
    let user_id = fields::optional_uuid("user_id", body.user_id.as_ref())?;
    let status = fields::optional_status("status", body.status.as_ref())?;
    let limit = match fields::optional_count("limit", body.limit.as_ref(), u64::from(u32::MAX))? {
        None => DEFAULT_PAGE,
        Some(n) if (1..=u64::from(MAX_PAGE)).contains(&n) => n as u32,
        Some(n) => {
            return Err(Error::invalid(
                "limit",
                format!("limit must be from 1 to {MAX_PAGE}, not {n}"),
            ));
        }
    };
    // An empty cursor is what a client sends for "first page" from a blank form field.
    let cursor =
        fields::optional_string("cursor", body.cursor.as_ref())?.filter(|c| !c.trim().is_empty());
    let offset = fields::optional_count("offset", body.offset.as_ref(), MAX_OFFSET)?;
    let position = match (cursor, offset) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "cursor",
                "give either cursor or offset, not both",
            ));
        }
        (Some(text), None) => Position::After(Cursor::decode(&text).ok_or_else(|| {
            Error::invalid(
                "cursor",
                "cursor is not valid; pass the next_cursor of a previous page unchanged",
            )
        })?),
        (None, Some(offset)) => Position::Offset(offset),
        (None, None) => Position::Start,
    };

    let owner = user_id.unwrap_or(actor.id);
    if owner != actor.id && !actor.is_admin() {
        return Err(Error::PermissionDenied(
            "only an admin may list another user's orders".into(),
        ));
    }

    // One row more than asked for tells whether another page exists.
    let mut orders = orders::list(&app.db, owner, status, position, u64::from(limit) + 1).await?;
    let has_more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    let next_cursor = match orders.last() {
        Some(last) if has_more => Some(
            Cursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode(),
        ),
        _ => None,
    };
    Ok(OrderPage {
        orders,
        next_cursor,
        has_more,
        limit,
    })
}
