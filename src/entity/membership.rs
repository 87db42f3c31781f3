use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub joined_at: DateTimeUtc,
    pub role: RoomRole,
    /// The seq of the newest message the member has read (`markRead`): it never moves back.
    pub last_read_seq: i64,
    #[sea_orm(belongs_to, from = "room_id", to = "id")]
    pub room: BelongsTo<super::room::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}

/// A member's standing in a room, highest first: each role may do what the ones below it may
/// (see `service::chat::permissions`). Stored as text.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum RoomRole {
    #[sea_orm(string_value = "MEMBER")]
    Member,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    #[sea_orm(string_value = "OWNER")]
    Owner,
}
