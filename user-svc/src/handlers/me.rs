//! `users.me {}` → the actor's [`UserProfile`].
//!
//! Errors: `unauthenticated` (no actor headers), `not_found` (the actor's account is
//! gone), `unavailable`, `internal`.

use crate::error::{Error, user_not_found};
use crate::state::AppState;
use proto_msgs::RequestContext;
use proto_msgs::users::{Empty, UserProfile};
use std::sync::Arc;

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    _req: Empty,
) -> Result<UserProfile, Error> {
    let actor = ctx.require_actor()?;
    crate::profile::load(&state.reads, actor.id)
        .await?
        .ok_or_else(user_not_found)
}
