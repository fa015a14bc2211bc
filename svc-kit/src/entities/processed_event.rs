//! `processed_events`: the ids of events a consumer has handled (see [`crate::inbox`]).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "processed_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    pub event_type: String,
    pub processed_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
