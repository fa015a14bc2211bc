//! `customers`: the projection of user-svc's users, fed by user events. `updated_at`
//! is the user's own timestamp, so an older event never overwrites a newer one.

use proto_msgs::Role;
use sea_orm::entity::prelude::*;

/// `role` column: `user` or `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum DbRole {
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "admin")]
    Admin,
}

impl From<DbRole> for Role {
    fn from(role: DbRole) -> Role {
        match role {
            DbRole::User => Role::User,
            DbRole::Admin => Role::Admin,
        }
    }
}

impl From<Role> for DbRole {
    fn from(role: Role) -> DbRole {
        match role {
            Role::User => DbRole::User,
            Role::Admin => DbRole::Admin,
        }
    }
}

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: DbRole,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
