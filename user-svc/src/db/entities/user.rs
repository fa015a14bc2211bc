//! `users`: accounts. `email` is stored lower-cased under a unique constraint, which is
//! what makes registration race-safe.

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

impl From<Role> for DbRole {
    fn from(role: Role) -> DbRole {
        match role {
            Role::User => DbRole::User,
            Role::Admin => DbRole::Admin,
        }
    }
}

impl From<DbRole> for Role {
    fn from(role: DbRole) -> Role {
        match role {
            DbRole::User => Role::User,
            DbRole::Admin => Role::Admin,
        }
    }
}

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: DbRole,
    /// Set by an admin: no login, no refresh.
    pub disabled: bool,
    /// Unix seconds: the user's access tokens issued before it are revoked, and new
    /// ones carry an `iat` of at least this.
    pub tokens_not_before: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}

impl From<Model> for proto_msgs::users::User {
    fn from(m: Model) -> Self {
        proto_msgs::users::User {
            id: m.id,
            email: m.email,
            name: m.name,
            role: m.role.into(),
            disabled: m.disabled,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}
