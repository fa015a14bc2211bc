//! `stored_replies`: the reply of each mutating call, keyed by method, caller and
//! idempotency key (see [`crate::replies`]).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stored_replies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub method: String,
    /// The actor's id, or empty for a call without one (register).
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    /// The client's `x-idempotency-key`, else `message:<AMQP message_id>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 of the request body (with method, scope and key), hex.
    pub fingerprint: String,
    /// The reply's data as the method returned it (the `data` of the envelope); NULL only
    /// inside the transaction that claimed the key.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub reply: Option<Json>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
