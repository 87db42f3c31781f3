//! `Room`, the room lists, and creating, joining and leaving rooms.
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    guard::{SignedIn, viewer},
    message::{MessageConnection, message_page},
    pagination::{Connection, Page, connection, cursor, page_cost},
    parse_id, state,
};
use crate::{
    domain::RoomName,
    entity::room,
    error::{AppError, AppResult},
};

pub struct Room(pub room::Model);

#[Object]
impl Room {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Private rooms are read and joined by their members only.
    async fn is_private(&self) -> bool {
        self.0.is_private
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The room's messages, oldest first within a page: `first`/`after` reads forward,
    /// `last`/`before` reads back from the newest.
    #[graphql(complexity = "page_cost(first, last) * child_complexity")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> AppResult<MessageConnection> {
        message_page(ctx, &self.0, Page::new(first, after, last, before)?).await
    }
}

cursor!(RoomCursor(Uuid), "room");

fn room_edge(row: room::Model) -> (RoomCursor, Room) {
    (RoomCursor(row.id), Room(row))
}

#[derive(InputObject)]
pub struct CreateRoomInput {
    /// 1–100 characters.
    name: String,
    #[graphql(default = false)]
    is_private: bool,
}

#[derive(Default)]
pub struct RoomQuery;

#[Object]
impl RoomQuery {
    /// Rooms the viewer is a member of, oldest first.
    #[graphql(
        guard = "SignedIn",
        complexity = "page_cost(first, None) * child_complexity"
    )]
    async fn rooms(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<Connection<RoomCursor, Room>> {
        let page = Page::<RoomCursor>::forward(first, after)?;
        let after = page.cursor.as_ref().map(|c| c.0);
        let rooms = state(ctx)?
            .chat
            .my_rooms(viewer(ctx)?, after, page.limit)
            .await?;
        Ok(connection(rooms, room_edge))
    }

    /// Every public room, oldest first: the directory to find rooms to join.
    #[graphql(
        guard = "SignedIn",
        complexity = "page_cost(first, None) * child_complexity"
    )]
    async fn public_rooms(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<Connection<RoomCursor, Room>> {
        let page = Page::<RoomCursor>::forward(first, after)?;
        let after = page.cursor.as_ref().map(|c| c.0);
        let rooms = state(ctx)?.chat.public_rooms(after, page.limit).await?;
        Ok(connection(rooms, room_edge))
    }

    /// A room the viewer may read (members; anyone signed in for a public room), or null if
    /// there is no such room.
    #[graphql(guard = "SignedIn")]
    async fn room(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<Room>> {
        let id = parse_id("id", &id)?;
        match state(ctx)?.chat.readable_room(viewer(ctx)?, id).await {
            Ok(room) => Ok(Some(Room(room))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

#[derive(Default)]
pub struct RoomMutation;

#[Object]
impl RoomMutation {
    /// Creates a room; the creator becomes a member.
    #[graphql(guard = "SignedIn")]
    async fn create_room(&self, ctx: &Context<'_>, input: CreateRoomInput) -> AppResult<Room> {
        let name = RoomName::parse("name", &input.name)?;
        let room = state(ctx)?
            .chat
            .create_room(viewer(ctx)?, name, input.is_private)
            .await?;
        Ok(Room(room))
    }

    /// Joins a public room. Joining again is harmless.
    #[graphql(guard = "SignedIn")]
    async fn join_room(&self, ctx: &Context<'_>, room_id: ID) -> AppResult<Room> {
        let room_id = parse_id("roomId", &room_id)?;
        Ok(Room(
            state(ctx)?.chat.join_room(viewer(ctx)?, room_id).await?,
        ))
    }

    /// Leaves a room, ending the viewer's subscriptions to it. False if not a member.
    #[graphql(guard = "SignedIn")]
    async fn leave_room(&self, ctx: &Context<'_>, room_id: ID) -> AppResult<bool> {
        let room_id = parse_id("roomId", &room_id)?;
        state(ctx)?.chat.leave_room(viewer(ctx)?, room_id).await
    }
}
