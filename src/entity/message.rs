use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub room_id: Uuid,
    /// Position in the room: 1, 2, 3... with no gaps.
    pub seq: i64,
    /// Position in the room's event stream, which other events share (`room_event`).
    pub event_seq: i64,
    pub author_id: Uuid,
    pub body: String,
    pub client_msg_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub edited_at: Option<DateTimeUtc>,
    /// Set when the message was deleted: a tombstone keeps its seq, not its body.
    pub deleted_at: Option<DateTimeUtc>,
    /// The message of the same room this one answers.
    pub reply_to_id: Option<Uuid>,
    #[sea_orm(belongs_to, from = "room_id", to = "id")]
    pub room: BelongsTo<super::room::Entity>,
    #[sea_orm(belongs_to, from = "author_id", to = "id")]
    pub author: BelongsTo<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
