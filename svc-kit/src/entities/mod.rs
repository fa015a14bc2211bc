//! One sea-orm entity per table svc-kit owns ([`crate::migration`] creates them).

pub mod outbox;
pub mod processed_event;
pub mod stored_reply;
