//! `orders.list {user_id?, status?, limit?, cursor? | offset?}` → `OrderPage`.
//!
//! The actor's orders, newest first (created_at DESC, id DESC). Keyset paging with an
//! opaque `cursor` (stable while orders are added), or `offset`; not both. An admin may
//! list anyone's orders through `user_id`; anyone else only their own.
//! `next_cursor` is set whenever `has_more`, in offset mode too, so a client can switch.

use crate::db::orders::{self, Position};
use crate::domain::cursor::Cursor;
use crate::error::{Error, Result};
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::orders::{ListOrdersRequest, OrderPage, PageLimit};
use std::sync::Arc;

pub async fn handle(
    app: Arc<App>,
    ctx: RequestContext,
    req: ListOrdersRequest,
) -> Result<OrderPage> {
    let actor = ctx.require_actor()?;
    let ListOrdersRequest {
        user_id,
        status,
        limit,
        cursor,
        offset,
    } = req;
    let limit = limit.unwrap_or(PageLimit::DEFAULT).get();
    let position = match (cursor, offset) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "cursor",
                "give either cursor or offset, not both",
            ));
        }
        (Some(cursor), None) => Position::After(cursor),
        (None, Some(offset)) => Position::Offset(offset.get()),
        (None, None) => Position::Start,
    };

    let owner = user_id.unwrap_or(actor.id);
    if owner != actor.id && !actor.is_admin() {
        return Err(Error::PermissionDenied(
            "only an admin may list another user's orders".into(),
        ));
    }

    // One row more than asked for tells whether another page exists.
    let mut orders =
        orders::list(&app.reads, owner, status, position, u64::from(limit) + 1).await?;
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
