use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use super::membership::RoomRole;

/// Something that happened to a room or to its membership, numbered in the room's event
/// stream. Messages share that numbering (`message::Model::event_seq`) but are not rows here.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: Uuid,
    /// Position in the room's events: 1, 2, 3... with no gaps, messages included.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub kind: EventKind,
    /// The member who joined, left or changed role; for `RoomUpdated`, who changed the room;
    /// for a message's events, who edited, deleted or reacted.
    pub user_id: Uuid,
    /// Who did it to them, when it was somebody else (null: themselves, or the server).
    pub actor_id: Option<Uuid>,
    /// `Joined`, `RoleChanged`: the member's role from then on.
    pub role: Option<RoomRole>,
    /// `Left`: how.
    pub reason: Option<LeaveReason>,
    /// `RoomUpdated`: the room's name and topic from then on.
    pub name: Option<String>,
    pub topic: Option<String>,
    pub created_at: DateTimeUtc,
    /// The events about a message (edited, deleted, reacted to): which one.
    pub message_id: Option<Uuid>,
    /// `ReactionAdded`, `ReactionRemoved`: which reaction.
    pub emoji: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum EventKind {
    #[sea_orm(string_value = "JOINED")]
    #[serde(rename = "j")]
    Joined,
    #[sea_orm(string_value = "LEFT")]
    #[serde(rename = "l")]
    Left,
    #[sea_orm(string_value = "ROLE_CHANGED")]
    #[serde(rename = "r")]
    RoleChanged,
    #[sea_orm(string_value = "ROOM_UPDATED")]
    #[serde(rename = "u")]
    RoomUpdated,
    #[sea_orm(string_value = "MESSAGE_EDITED")]
    #[serde(rename = "e")]
    MessageEdited,
    #[sea_orm(string_value = "MESSAGE_DELETED")]
    #[serde(rename = "d")]
    MessageDeleted,
    #[sea_orm(string_value = "REACTION_ADDED")]
    #[serde(rename = "a")]
    ReactionAdded,
    #[sea_orm(string_value = "REACTION_REMOVED")]
    #[serde(rename = "x")]
    ReactionRemoved,
}

impl EventKind {
    /// Whether the event is about a message (and names it in `message_id`).
    pub fn is_about_a_message(self) -> bool {
        matches!(
            self,
            Self::MessageEdited
                | Self::MessageDeleted
                | Self::ReactionAdded
                | Self::ReactionRemoved
        )
    }
}

/// How a membership ended: leaving ends the member's subscriptions quietly, being removed or
/// banned ends them with FORBIDDEN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum LeaveReason {
    #[sea_orm(string_value = "LEFT")]
    #[serde(rename = "l")]
    Left,
    #[sea_orm(string_value = "REMOVED")]
    #[serde(rename = "r")]
    Removed,
    #[sea_orm(string_value = "BANNED")]
    #[serde(rename = "b")]
    Banned,
}
