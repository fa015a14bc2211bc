//! `user.registered` and `user.updated`, built from the row as committed.

use super::SOURCE;
use crate::db::entities::user;
use proto_msgs::events::types;
use proto_msgs::users::{UserRegistered, UserUpdated};
use proto_msgs::{CloudEvent, RequestContext};

/// `user.registered` for a new account; carries the request's trace when there is one.
pub fn registered(u: &user::Model, ctx: Option<&RequestContext>) -> CloudEvent<UserRegistered> {
    let data = UserRegistered {
        user_id: u.id,
        email: u.email.clone(),
        name: u.name.clone(),
        role: u.role.into(),
        created_at: u.created_at,
    };
    traced(
        CloudEvent::new(SOURCE, types::USER_REGISTERED, u.id.to_string(), data),
        ctx,
    )
}

/// `user.updated`: the user as they are after the change.
pub fn updated(u: &user::Model, ctx: Option<&RequestContext>) -> CloudEvent<UserUpdated> {
    let data = UserUpdated {
        user_id: u.id,
        email: u.email.clone(),
        name: u.name.clone(),
        role: u.role.into(),
        updated_at: u.updated_at,
    };
    traced(
        CloudEvent::new(SOURCE, types::USER_UPDATED, u.id.to_string(), data),
        ctx,
    )
}

fn traced<T>(event: CloudEvent<T>, ctx: Option<&RequestContext>) -> CloudEvent<T> {
    match ctx {
        Some(ctx) => event.with_trace(ctx.traceparent.as_ref(), ctx.tracestate.as_deref()),
        None => event,
    }
}
