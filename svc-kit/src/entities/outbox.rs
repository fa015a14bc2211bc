//! `outbox`: events written in the transaction of the change they describe, waiting
//! for [`crate::outbox::OutboxRelay`] to publish them. `seq` orders publication;
//! `payload` is the whole CloudEvent.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    #[sea_orm(unique)]
    pub id: Uuid,
    pub event_type: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub traceparent: Option<String>,
    pub created_at: DateTimeUtc,
    /// Publications that found no queue bound for the event (see `next_attempt_at`).
    pub attempts: i32,
    /// Not published before this time: an unroutable event backs off, alone.
    pub next_attempt_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
