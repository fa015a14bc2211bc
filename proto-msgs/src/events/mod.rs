//! Domain events on the `events` topic exchange: the CloudEvents envelope, a publisher
//! with confirms, and a consumer with bounded retries and a dead-letter queue.

pub mod cloudevent;
pub mod consume;
pub mod publish;

pub use cloudevent::CloudEvent;
pub use consume::{EventConsumer, EventObserver, HandlerError, RetryPolicy, RunningConsumer};
pub use publish::{EventPublisher, Published};

/// Routing keys (= CloudEvents `type`) of the domain events.
pub mod types {
    pub const USER_REGISTERED: &str = "user.registered";
    pub const USER_UPDATED: &str = "user.updated";
    /// Sessions ended (logout, password or role change, disabled account, refresh
    /// reuse); the gateway refuses their access tokens from then on.
    pub const USER_SESSIONS_REVOKED: &str = "user.sessions_revoked";
    pub const ORDER_CREATED: &str = "order.created";
    pub const ORDER_UPDATED: &str = "order.updated";
}
