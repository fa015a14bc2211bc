//! `sessions`: one row per login, the family of its refresh tokens. Its id is the
//! `sid` of the session's access tokens; `revoked_at` set means the session is over.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// A [`proto_msgs::users::RevocationReason`] in snake_case.
    pub revoked_reason: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
