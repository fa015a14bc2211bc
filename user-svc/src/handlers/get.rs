//! `users.get {id}` → that user's [`UserProfile`], for the user themself or an admin.
//!
//! Errors: `unauthenticated` (no actor), `not_found` (no such user, or someone else's
//! id for a non-admin: the same answer, so ids can't be probed), `invalid_argument`
//! (`id` missing or not a UUID), `unavailable`, `internal`.

use crate::error::{Error, user_not_found};
use crate::state::AppState;
use proto_msgs::RequestContext;
use proto_msgs::users::{GetUserRequest, UserProfile};
use std::sync::Arc;

pub async fn handle(
    state: Arc<AppState>,
    ctx: RequestContext,
    req: GetUserRequest,
) -> Result<UserProfile, Error> {
    let actor = ctx.require_actor()?;
    if actor.id != req.id && !actor.is_admin() {
        return Err(user_not_found());
    }
    crate::profile::load(&state.reads, req.id)
        .await?
        .ok_or_else(user_not_found)
}
