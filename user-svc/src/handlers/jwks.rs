//! `users.jwks {}` → the public keys that verify access tokens. Needs no actor.

use crate::error::Error;
use crate::state::AppState;
use proto_msgs::RequestContext;
use proto_msgs::users::{Empty, Jwks};
use std::sync::Arc;

pub async fn handle(
    state: Arc<AppState>,
    _ctx: RequestContext,
    _req: Empty,
) -> Result<Jwks, Error> {
    Ok(state.tokens.jwks().clone())
}
