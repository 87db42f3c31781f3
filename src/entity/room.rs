use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rooms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub is_private: bool,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    /// The seq of the newest message (0: none yet).
    pub last_seq: i64,
    /// The event seq of the newest event, message or other (0: none yet).
    pub last_event_seq: i64,
    pub topic: Option<String>,
    /// A conversation of two users: private, with no roles beyond membership.
    pub is_direct: bool,
    /// For a direct room, `<smaller user id>:<larger user id>`: unique, so a pair has one.
    pub direct_key: Option<String>,
    /// When the newest message was sent; when the room was created, before any. Always set
    /// (nullable because SQLite adds a column without a default that way).
    pub last_activity_at: Option<DateTimeUtc>,
    #[sea_orm(has_many)]
    pub messages: HasMany<super::message::Entity>,
    #[sea_orm(has_many)]
    pub memberships: HasMany<super::membership::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
