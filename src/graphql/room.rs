//! `Room`, the room lists, and creating, joining, leaving, changing, deleting and opening
//! (direct) rooms.
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, connection::CursorType};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    guard::{SignedIn, viewer},
    loaders,
    member::{BanCursor, MemberCursor, RoomBan, RoomMember, RoomRole, ban_edge, member_edge},
    message::{MessageConnection, message_page},
    pagination::{
        Connection, InvalidCursor, Page, connection, decode_cursor, encode_cursor, page_cost,
    },
    parse_id, state, to_int,
    user::User,
};
use crate::{
    domain::{Note, RoomName, check_length},
    entity::{membership, room},
    error::{AppError, AppResult},
    service::chat::{RoomChange, RoomsAfter},
};

pub struct Room(pub room::Model);

#[Object]
impl Room {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// For a direct room, the other member's username (while they are in it).
    async fn name(&self, ctx: &Context<'_>) -> AppResult<String> {
        if !self.0.is_direct {
            return Ok(self.0.name.clone());
        }
        state(ctx)?.chat.direct_name(&self.0, viewer(ctx)?).await
    }

    /// At most 500 characters; null if none.
    async fn topic(&self) -> Option<&str> {
        self.0.topic.as_deref()
    }

    /// Private rooms are read by their members only, who join by invitation (`addMembers`).
    async fn is_private(&self) -> bool {
        self.0.is_private
    }

    /// The room of two users (`openDirectRoom`): private, with no roles, and nothing about it
    /// can be changed.
    async fn is_direct(&self) -> bool {
        self.0.is_direct
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the newest message was sent (when the room was created, before any): what
    /// `rooms(orderBy: ACTIVITY)` sorts by.
    async fn last_activity_at(&self) -> DateTime<Utc> {
        self.0.last_activity_at.unwrap_or(self.0.created_at)
    }

    /// The viewer's role in the room; null if not a member.
    async fn viewer_role(&self, ctx: &Context<'_>) -> AppResult<Option<RoomRole>> {
        Ok(self.membership(ctx).await?.map(|m| m.role.into()))
    }

    /// The seq of the newest message the viewer has read (`markRead`); null if not a member.
    async fn last_read_seq(&self, ctx: &Context<'_>) -> AppResult<Option<i32>> {
        let membership = self.membership(ctx).await?;
        Ok(membership.map(|m| to_int(m.last_read_seq.max(0) as u64)))
    }

    /// Messages of others after `lastReadSeq` that are still there, counted up to 1000;
    /// null if not a member.
    async fn unread_count(&self, ctx: &Context<'_>) -> AppResult<Option<i32>> {
        let Some(m) = self.membership(ctx).await? else {
            return Ok(None);
        };
        let key = (self.0.id, m.user_id, m.last_read_seq);
        let unread = loaders(ctx)?.unread.load_one(key).await?;
        Ok(Some(to_int(unread.unwrap_or(0))))
    }

    /// Messages after `lastReadSeq` that mention the viewer and are still there, counted up to
    /// 1000; null if not a member.
    async fn mention_count(&self, ctx: &Context<'_>) -> AppResult<Option<i32>> {
        let Some(m) = self.membership(ctx).await? else {
            return Ok(None);
        };
        let key = (self.0.id, m.user_id, m.last_read_seq);
        let mentions = loaders(ctx)?.mention_counts.load_one(key).await?;
        Ok(Some(to_int(mentions.unwrap_or(0))))
    }

    async fn member_count(&self, ctx: &Context<'_>) -> AppResult<i32> {
        let members = loaders(ctx)?.member_counts.load_one(self.0.id).await?;
        Ok(to_int(members.unwrap_or(0)))
    }

    /// Who has read the room up to message `seq`: the members whose read marker is at or
    /// past it (the viewer among them), in username order. Null in rooms of more than
    /// `READ_RECEIPTS_MAX_MEMBERS` members (members only).
    async fn read_by(&self, ctx: &Context<'_>, seq: i32) -> AppResult<Option<Vec<User>>> {
        let readers = state(ctx)?
            .chat
            .read_by(viewer(ctx)?, self.0.id, seq.into())
            .await?;
        Ok(readers.map(|users| users.into_iter().map(User::new).collect()))
    }

    /// How many members have a socket open (on any instance).
    async fn online_count(&self, ctx: &Context<'_>) -> AppResult<i32> {
        let online = loaders(ctx)?.online_counts.load_one(self.0.id).await?;
        Ok(to_int(online.unwrap_or(0)))
    }

    /// The room's members, in sign-up order (members only).
    #[graphql(complexity = "page_cost(first, None) * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<Connection<MemberCursor, RoomMember>> {
        let page = Page::<MemberCursor>::forward(first, after)?;
        let after = page.cursor.as_ref().map(|c| c.0);
        let chat = &state(ctx)?.chat;
        let members = chat
            .members(viewer(ctx)?, self.0.id, after, page.limit)
            .await?;
        Ok(connection(members, member_edge))
    }

    /// Users banned from the room, in sign-up order (OWNER and ADMIN).
    #[graphql(complexity = "page_cost(first, None) * child_complexity")]
    async fn bans(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<Connection<BanCursor, RoomBan>> {
        let page = Page::<BanCursor>::forward(first, after)?;
        let after = page.cursor.as_ref().map(|c| c.0);
        let chat = &state(ctx)?.chat;
        let bans = chat
            .bans(viewer(ctx)?, self.0.id, after, page.limit)
            .await?;
        Ok(connection(bans, ban_edge))
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

/// A position in a list of rooms: in creation order, the room's id (a UUIDv7); by activity,
/// when the room last had a message, and its id.
pub enum RoomCursor {
    Created(Uuid),
    Active(DateTime<Utc>, Uuid),
}

impl Room {
    /// The viewer's membership of this room (batched with the other rooms of the response).
    async fn membership(&self, ctx: &Context<'_>) -> AppResult<Option<Arc<membership::Model>>> {
        let key = (self.0.id, viewer(ctx)?.user_id);
        loaders(ctx)?.memberships.load_one(key).await
    }
}

impl CursorType for RoomCursor {
    type Error = InvalidCursor;

    fn decode_cursor(s: &str) -> Result<Self, InvalidCursor> {
        if let Ok(id) = decode_cursor("room", s) {
            return Ok(Self::Created(id));
        }
        let value: String = decode_cursor("active", s)?;
        let (micros, id) = value.split_once('.').ok_or(InvalidCursor)?;
        let at = micros
            .parse()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or(InvalidCursor)?;
        Ok(Self::Active(at, id.parse().map_err(|_| InvalidCursor)?))
    }

    fn encode_cursor(&self) -> String {
        match self {
            Self::Created(id) => encode_cursor("room", id),
            Self::Active(at, id) => encode_cursor(
                "active",
                format!("{}.{}", at.timestamp_micros(), id.simple()),
            ),
        }
    }
}

fn room_edge(row: room::Model) -> (RoomCursor, Room) {
    (RoomCursor::Created(row.id), Room(row))
}

fn active_room_edge(row: room::Model) -> (RoomCursor, Room) {
    let at = row.last_activity_at.unwrap_or(row.created_at);
    (RoomCursor::Active(at, row.id), Room(row))
}

/// The order of `rooms`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum RoomOrder {
    /// Oldest first.
    #[default]
    Created,
    /// The room with the newest message first (a room without messages counts from its
    /// creation). Rooms move as messages arrive: a client paging through it may see a room
    /// twice, or miss one that moved ahead of its cursor, and reads the first page again
    /// when it wants the current order.
    Activity,
}

/// The cursor of a page of rooms, if it is one of `order`'s.
fn rooms_after(order: RoomOrder, cursor: Option<RoomCursor>) -> AppResult<RoomsAfter> {
    Ok(match (order, cursor) {
        (RoomOrder::Created, cursor) => RoomsAfter::Created(created_after(cursor)?),
        (RoomOrder::Activity, None) => RoomsAfter::Active(None),
        (RoomOrder::Activity, Some(RoomCursor::Active(at, id))) => {
            RoomsAfter::Active(Some((at, id)))
        }
        (RoomOrder::Activity, Some(RoomCursor::Created(_))) => return Err(other_order()),
    })
}

/// The room a page in creation order starts after.
fn created_after(cursor: Option<RoomCursor>) -> AppResult<Option<Uuid>> {
    match cursor {
        None => Ok(None),
        Some(RoomCursor::Created(id)) => Ok(Some(id)),
        Some(RoomCursor::Active(..)) => Err(other_order()),
    }
}

fn other_order() -> AppError {
    AppError::bad_input("after", "the cursor is of another order of rooms")
}

#[derive(InputObject)]
pub struct CreateRoomInput {
    /// 1–100 characters.
    name: String,
    /// A private room is read by its members only, who join by invitation (`addMembers`).
    /// Left out or `null`: a public room.
    // Nullable with a default (`Boolean = false`), as the contract has it.
    #[graphql(default_with = "Some(false)")]
    is_private: Option<bool>,
}

/// What to change; what is left out stays as it is.
#[derive(InputObject)]
pub struct UpdateRoomInput {
    /// 1–100 characters.
    name: Option<String>,
    /// At most 500 characters; an empty one clears it.
    topic: Option<String>,
}

/// What `publicRooms(search:)` may be: characters of a room name.
const MAX_SEARCH: usize = RoomName::MAX;

#[derive(Default)]
pub struct RoomQuery;

#[Object]
impl RoomQuery {
    /// Rooms the viewer is a member of: oldest first, or by activity (`orderBy: ACTIVITY`).
    #[graphql(
        guard = "SignedIn",
        complexity = "page_cost(first, None) * child_complexity"
    )]
    async fn rooms(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default)] order_by: RoomOrder,
    ) -> AppResult<Connection<RoomCursor, Room>> {
        let page = Page::<RoomCursor>::forward(first, after)?;
        let after = rooms_after(order_by, page.cursor)?;
        let rooms = state(ctx)?
            .chat
            .my_rooms(viewer(ctx)?, after, page.limit)
            .await?;
        Ok(match order_by {
            RoomOrder::Created => connection(rooms, room_edge),
            RoomOrder::Activity => connection(rooms, active_room_edge),
        })
    }

    /// Every public room someone is in, oldest first: the directory to find rooms to join.
    /// With `search` (1–100 characters), those whose name contains it, in any case.
    #[graphql(
        guard = "SignedIn",
        complexity = "page_cost(first, None) * child_complexity"
    )]
    async fn public_rooms(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
    ) -> AppResult<Connection<RoomCursor, Room>> {
        if let Some(search) = &search {
            check_length("search", "search", search, 1..=MAX_SEARCH)?;
        }
        let page = Page::<RoomCursor>::forward(first, after)?;
        let after = created_after(page.cursor)?;
        let chat = &state(ctx)?.chat;
        let rooms = chat
            .public_rooms(search.as_deref(), after, page.limit)
            .await?;
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
            .create_room(viewer(ctx)?, name, input.is_private.unwrap_or(false))
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

    /// Leaves a room, ending the viewer's subscriptions to it. An OWNER who leaves hands the
    /// room to its longest-standing ADMIN, else MEMBER; a room its last member left is seen by
    /// nobody. False if not a member. Direct rooms cannot be left.
    #[graphql(guard = "SignedIn")]
    async fn leave_room(&self, ctx: &Context<'_>, room_id: ID) -> AppResult<bool> {
        let room_id = parse_id("roomId", &room_id)?;
        state(ctx)?.chat.leave_room(viewer(ctx)?, room_id).await
    }

    /// Renames a room or sets its topic (OWNER and ADMIN).
    #[graphql(guard = "SignedIn")]
    async fn update_room(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        input: UpdateRoomInput,
    ) -> AppResult<Room> {
        let room_id = parse_id("roomId", &room_id)?;
        let change = RoomChange {
            name: input
                .name
                .map(|n| RoomName::parse("name", &n))
                .transpose()?,
            topic: input.topic.map(|t| Note::parse("topic", &t)).transpose()?,
        };
        let chat = &state(ctx)?.chat;
        Ok(Room(chat.update_room(viewer(ctx)?, room_id, change).await?))
    }

    /// Deletes a room with its members, bans and history (OWNER). Its members' subscriptions
    /// to it end with FORBIDDEN.
    #[graphql(guard = "SignedIn")]
    async fn delete_room(&self, ctx: &Context<'_>, room_id: ID) -> AppResult<bool> {
        let room_id = parse_id("roomId", &room_id)?;
        state(ctx)?.chat.delete_room(viewer(ctx)?, room_id).await
    }

    /// Marks the room read up to the message `seq` for the viewer (members). A marker never
    /// moves back: an older seq changes nothing. The viewer's other devices hear it through
    /// `myEvents` (RoomRead).
    #[graphql(guard = "SignedIn")]
    async fn mark_read(&self, ctx: &Context<'_>, room_id: ID, seq: i32) -> AppResult<Room> {
        let room_id = parse_id("roomId", &room_id)?;
        let chat = &state(ctx)?.chat;
        let room = chat
            .mark_read(viewer(ctx)?, room_id, i64::from(seq))
            .await?;
        Ok(Room(room))
    }

    /// Says that the viewer is typing in a room (members), or stopped. The other members'
    /// `roomEvents` hear it (TypingChanged); it ends by itself after a few seconds
    /// (`TYPING_TIMEOUT_SECONDS`) unless renewed. True.
    #[graphql(guard = "SignedIn")]
    async fn set_typing(&self, ctx: &Context<'_>, room_id: ID, typing: bool) -> AppResult<bool> {
        let room_id = parse_id("roomId", &room_id)?;
        let chat = &state(ctx)?.chat;
        chat.set_typing(viewer(ctx)?, room_id, typing).await?;
        Ok(true)
    }

    /// The direct room of the viewer and another user, created the first time either opens
    /// it: the same room every time, from either side.
    #[graphql(guard = "SignedIn")]
    async fn open_direct_room(&self, ctx: &Context<'_>, user_id: ID) -> AppResult<Room> {
        let user_id = parse_id("userId", &user_id)?;
        let chat = &state(ctx)?.chat;
        Ok(Room(chat.open_direct_room(viewer(ctx)?, user_id).await?))
    }
}
