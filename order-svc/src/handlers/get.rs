//! `orders.get {id}` → the order with its items. Someone else's order is `not_found`,
//! word for word the answer for a missing one, unless the actor is an admin.

use crate::db::orders;
use crate::error::{Error, Result};
use crate::handlers::App;
use proto_msgs::RequestContext;
use proto_msgs::orders::{GetOrderRequest, Order};
use std::sync::Arc;

pub async fn handle(app: Arc<App>, ctx: RequestContext, req: GetOrderRequest) -> Result<Order> {
    let actor = ctx.require_actor()?;
    let id = req.id;
    orders::find(&app.reads, id)
        .await?
        .filter(|order| order.user_id == actor.id || actor.is_admin())
        .ok_or(Error::OrderNotFound(id))
}
