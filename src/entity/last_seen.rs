use sea_orm::entity::prelude::*;

/// When a user came online or went offline, whichever was last.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_last_seen")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub seen_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
