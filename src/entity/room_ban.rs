use sea_orm::entity::prelude::*;

/// A user barred from a room: they cannot join it or be added to it until unbanned.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room_bans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// Null once that user's account is gone.
    pub banned_by: Option<Uuid>,
    pub reason: Option<String>,
    pub banned_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
