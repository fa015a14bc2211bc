//! `catalog.*`, served on order-svc's queue: one file per method. Reads are public;
//! writes need an admin actor (from the trusted caller's `x-actor-*` headers) and store
//! their reply with their effect (svc-kit's stored replies).

pub mod adjust_stock;
pub mod create;
pub mod get;
pub mod list;
pub mod update;

use crate::error::{Error, Result};
use proto_msgs::{Actor, RequestContext};

/// The actor, if an admin: `unauthenticated` without one, `permission_denied` for a
/// user.
fn require_admin(ctx: &RequestContext) -> Result<Actor> {
    let actor = ctx.require_actor()?;
    if !actor.is_admin() {
        return Err(Error::PermissionDenied(
            "changing the catalog needs an admin".to_owned(),
        ));
    }
    Ok(actor)
}
