//! `password_throttle`: failed password checks per account, shared by every instance.
//!
//! `key`: a keyed hash of what is guessed at (a normalized email for `users.login`,
//! the user id for `current_password`), so the table names no email, not even the
//! unknown ones people try. `failures`: attempts in a row not followed by a success
//! (an attempt counts as failed until it succeeds). `locked_until`: no check runs for
//! this key before then.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_throttle")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: Vec<u8>,
    pub failures: i32,
    pub last_attempt_at: DateTimeUtc,
    pub locked_until: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
