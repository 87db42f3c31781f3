//! A room's event stream (`roomEvents`) and a user's (`myEvents`): what they carry and the
//! subscriptions themselves.
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Subscription, Union, connection::CursorType};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, future};

use super::{
    guard::{SignedIn, viewer},
    loaders,
    member::{RoomRole, user},
    message::{Message, MessageCursor},
    pagination::cursor,
    parse_id,
    room::Room,
    shared::unless_answered,
    state, to_int,
    user::User,
};
use crate::{
    broker::{self, Mine, PresenceChange, Shared, Typing},
    entity::room_event::{self, EventKind},
    error::{AppError, AppResult},
    service::chat::{After, ChatMessage, FeedItem, Subscriber},
};

cursor!(
    /// A position in a room's event stream: the event's seq there.
    EventCursor(i64),
    "event"
);

/// Something that happened in a room, in the order it happened.
#[derive(Union)]
pub enum RoomEvent {
    MessageAdded(MessageAdded),
    MessageEdited(MessageEdited),
    MessageDeleted(MessageDeleted),
    ReactionAdded(ReactionAdded),
    ReactionRemoved(ReactionRemoved),
    MemberJoined(MemberJoined),
    MemberLeft(MemberLeft),
    MemberRoleChanged(MemberRoleChanged),
    RoomUpdated(RoomUpdated),
    TypingChanged(TypingChanged),
    PresenceChanged(PresenceChanged),
}

impl From<FeedItem> for RoomEvent {
    fn from(item: FeedItem) -> Self {
        match item {
            FeedItem::Event(event) => event.into(),
            FeedItem::Typing(typing) => RoomEvent::TypingChanged(TypingChanged(typing)),
            FeedItem::Presence(room_id, change) => {
                RoomEvent::PresenceChanged(PresenceChanged(room_id, change))
            }
        }
    }
}

impl From<broker::RoomEvent> for RoomEvent {
    fn from(event: broker::RoomEvent) -> Self {
        let (change, message) = match event {
            broker::RoomEvent::Message(message) => {
                return RoomEvent::MessageAdded(MessageAdded(message));
            }
            broker::RoomEvent::Change(change) => (change, None),
            broker::RoomEvent::MessageChange(change, message) => (change, Some(message)),
        };
        let parts = Parts { change, message };
        match parts.change.kind {
            EventKind::Joined => RoomEvent::MemberJoined(MemberJoined(parts)),
            EventKind::Left => RoomEvent::MemberLeft(MemberLeft(parts)),
            EventKind::RoleChanged => RoomEvent::MemberRoleChanged(MemberRoleChanged(parts)),
            EventKind::RoomUpdated => RoomEvent::RoomUpdated(RoomUpdated(parts)),
            EventKind::MessageEdited => RoomEvent::MessageEdited(MessageEdited(parts)),
            EventKind::MessageDeleted => RoomEvent::MessageDeleted(MessageDeleted(parts)),
            EventKind::ReactionAdded => RoomEvent::ReactionAdded(ReactionAdded(parts)),
            EventKind::ReactionRemoved => RoomEvent::ReactionRemoved(ReactionRemoved(parts)),
        }
    }
}

/// A stored event, and the message it is about (as it is now), if it is about one.
pub struct Parts {
    change: Arc<room_event::Model>,
    message: Option<Arc<ChatMessage>>,
}

impl Parts {
    fn message(&self) -> AppResult<Message> {
        let message = self
            .message
            .clone()
            .ok_or_else(|| missing(&self.change, "message"))?;
        Ok(Message::new(message))
    }
}

/// What a user's list of rooms needs to stay current, from all their rooms at once.
#[derive(Union)]
pub enum MyEvent {
    NewMessage(NewMessage),
    /// The viewer joined a room, or was added to one.
    MemberJoined(MemberJoined),
    /// The viewer left a room, or was removed or banned from one.
    MemberLeft(MemberLeft),
    /// The viewer's role in a room changed.
    MemberRoleChanged(MemberRoleChanged),
    RoomUpdated(RoomUpdated),
    RoomDeleted(RoomDeleted),
    RoomRead(RoomRead),
}

impl MyEvent {
    /// What an inbox hears, as `myEvents` shows it (it hears nothing else).
    fn from(mine: Mine) -> Option<Self> {
        let event = match mine {
            Mine::RoomDeleted(room_id) => return Some(MyEvent::RoomDeleted(RoomDeleted(room_id))),
            Mine::ReadUpTo { room_id, seq } => {
                return Some(MyEvent::RoomRead(RoomRead { room_id, seq }));
            }
            Mine::Event(broker::RoomEvent::Message(message)) => {
                return Some(MyEvent::NewMessage(NewMessage(message)));
            }
            Mine::Event(event) => event,
        };
        match RoomEvent::from(event) {
            RoomEvent::MemberJoined(e) => Some(MyEvent::MemberJoined(e)),
            RoomEvent::MemberLeft(e) => Some(MyEvent::MemberLeft(e)),
            RoomEvent::MemberRoleChanged(e) => Some(MyEvent::MemberRoleChanged(e)),
            RoomEvent::RoomUpdated(e) => Some(MyEvent::RoomUpdated(e)),
            _ => None,
        }
    }
}

/// A type for one kind of stored room event: the fields they all have, and its own.
macro_rules! room_change {
    ($(#[$doc:meta])* $name:ident { $($own:tt)* }) => {
        $(#[$doc])*
        pub struct $name(Parts);

        #[Object]
        impl $name {
            async fn room_id(&self) -> ID {
                ID(self.0.change.room_id.to_string())
            }

            /// This event's position, for `roomEvents(after:)`.
            async fn cursor(&self) -> String {
                EventCursor(self.0.change.seq).encode_cursor()
            }

            async fn at(&self) -> DateTime<Utc> {
                self.0.change.created_at
            }

            /// Whom it is about (for RoomUpdated and a message's events: who did it).
            async fn user(&self, ctx: &Context<'_>) -> AppResult<User> {
                user(ctx, self.0.change.user_id).await
            }

            /// Who did it, when it was somebody else: null when the user did it themself, or
            /// the server did (handing a room over when its OWNER goes).
            async fn by(&self, ctx: &Context<'_>) -> AppResult<Option<User>> {
                match self.0.change.actor_id {
                    Some(id) => Ok(Some(user(ctx, id).await?)),
                    None => Ok(None),
                }
            }

            $($own)*
        }
    };
}

room_change!(
    /// A member joined, was added, or was in a direct room as it was opened.
    MemberJoined {
        async fn role(&self) -> AppResult<RoomRole> {
            Ok(self.0.change.role.ok_or_else(|| missing(&self.0.change, "role"))?.into())
        }

        /// The room as it is now; null if the viewer can no longer read it.
        async fn room(&self, ctx: &Context<'_>) -> AppResult<Option<Room>> {
            let chat = &state(ctx)?.chat;
            match chat.readable_room(viewer(ctx)?, self.0.change.room_id).await {
                Ok(room) => Ok(Some(Room(room))),
                Err(AppError::NotFound(_) | AppError::Forbidden(_)) => Ok(None),
                Err(err) => Err(err),
            }
        }
    }
);

room_change!(
    /// A member left, or was removed or banned.
    MemberLeft {
        async fn reason(&self) -> LeaveReason {
            self.0.change.reason.unwrap_or(room_event::LeaveReason::Left).into()
        }
    }
);

room_change!(
    /// A member's role changed. Handing a room over changes two: the new OWNER's and the old
    /// one's (to ADMIN, or gone with them).
    MemberRoleChanged {
        async fn role(&self) -> AppResult<RoomRole> {
            Ok(self.0.change.role.ok_or_else(|| missing(&self.0.change, "role"))?.into())
        }
    }
);

room_change!(
    /// The room's name or topic changed: these are its settings from then on.
    RoomUpdated {
        async fn name(&self) -> &str {
            self.0.change.name.as_deref().unwrap_or_default()
        }

        async fn topic(&self) -> Option<&str> {
            self.0.change.topic.as_deref()
        }
    }
);

room_change!(
    /// A message was edited (by its author).
    MessageEdited {
        /// The message as it is now (on a replay, with any later edit).
        async fn message(&self) -> AppResult<Message> {
            self.0.message()
        }
    }
);

room_change!(
    /// A message was deleted (`user`: by whom); it stays as a tombstone.
    MessageDeleted {
        /// The message as it is now: its tombstone.
        async fn message(&self) -> AppResult<Message> {
            self.0.message()
        }
    }
);

room_change!(
    /// Somebody (`user`) reacted to a message.
    ReactionAdded {
        async fn emoji(&self) -> &str {
            self.0.change.emoji.as_deref().unwrap_or_default()
        }

        /// The message as it is now, with its reactions.
        async fn message(&self) -> AppResult<Message> {
            self.0.message()
        }
    }
);

room_change!(
    /// Somebody (`user`) took their reaction to a message back.
    ReactionRemoved {
        async fn emoji(&self) -> &str {
            self.0.change.emoji.as_deref().unwrap_or_default()
        }

        /// The message as it is now, with its reactions.
        async fn message(&self) -> AppResult<Message> {
            self.0.message()
        }
    }
);

fn missing(event: &room_event::Model, field: &str) -> AppError {
    anyhow::anyhow!("room event {}/{} has no {field}", event.room_id, event.seq).into()
}

/// How a membership ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::entity::room_event::LeaveReason")]
pub enum LeaveReason {
    /// The member left (`leaveRoom`, or deleted their account).
    Left,
    /// An OWNER or ADMIN removed them (`removeMember`).
    Removed,
    /// An OWNER or ADMIN banned them (`banMember`).
    Banned,
}

/// Another member started or stopped typing: live only (never replayed), and without a
/// cursor. It holds until `until` unless renewed; the server also says when it ends.
pub struct TypingChanged(Typing);

#[Object]
impl TypingChanged {
    async fn room_id(&self) -> ID {
        ID(self.0.room_id.to_string())
    }

    async fn user(&self, ctx: &Context<'_>) -> AppResult<User> {
        user(ctx, self.0.user_id).await
    }

    async fn typing(&self) -> bool {
        self.0.typing
    }

    /// When to stop showing it if nothing more is heard.
    async fn until(&self) -> DateTime<Utc> {
        self.0.until
    }
}

/// Another member came online (their first socket opened, on any instance) or went offline
/// (their last closed, or their instance stopped answering): live only, without a cursor.
pub struct PresenceChanged(uuid::Uuid, PresenceChange);

#[Object]
impl PresenceChanged {
    async fn room_id(&self) -> ID {
        ID(self.0.to_string())
    }

    async fn user(&self, ctx: &Context<'_>) -> AppResult<User> {
        user(ctx, self.1.user_id).await
    }

    async fn online(&self) -> bool {
        self.1.online
    }

    /// When it happened: the user's `lastSeenAt` from now on.
    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.1.at
    }
}

/// A message was sent.
pub struct MessageAdded(Arc<ChatMessage>);

#[Object]
impl MessageAdded {
    async fn room_id(&self) -> ID {
        ID(self.0.message.room_id.to_string())
    }

    /// This event's position, for `roomEvents(after:)` (the message's own cursor is for
    /// history and `messageAdded`).
    async fn cursor(&self) -> String {
        EventCursor(self.0.message.event_seq).encode_cursor()
    }

    async fn at(&self) -> DateTime<Utc> {
        self.0.message.created_at
    }

    async fn message(&self) -> Message {
        Message::new(self.0.clone())
    }
}

/// At most this many characters of a message's body in `NewMessage.preview`.
const PREVIEW_CHARS: usize = 100;

/// A message was sent to one of the viewer's rooms: enough to show it in a list of rooms.
pub struct NewMessage(Arc<ChatMessage>);

#[Object]
impl NewMessage {
    async fn room_id(&self) -> ID {
        ID(self.0.message.room_id.to_string())
    }

    async fn message_id(&self) -> ID {
        ID(self.0.message.id.to_string())
    }

    /// The message's seq in its room.
    async fn seq(&self) -> i32 {
        to_int(self.0.message.seq.max(0) as u64)
    }

    async fn author(&self) -> User {
        User::new(self.0.author.clone())
    }

    /// Whether the message mentions the viewer.
    async fn mentions_viewer(&self, ctx: &Context<'_>) -> AppResult<bool> {
        let mentions = loaders(ctx)?.mentions.load_one(self.0.message.id).await?;
        let viewer = viewer(ctx)?.user_id;
        Ok(mentions.is_some_and(|ids| ids.contains(&viewer)))
    }

    /// The start of the body: at most 100 characters, ending in "…" where it was cut.
    async fn preview(&self) -> String {
        preview(&self.0.message.body)
    }

    async fn at(&self) -> DateTime<Utc> {
        self.0.message.created_at
    }
}

fn preview(body: &str) -> String {
    match body.char_indices().nth(PREVIEW_CHARS) {
        None => body.to_owned(),
        Some(_) => {
            let cut = body
                .char_indices()
                .nth(PREVIEW_CHARS - 1)
                .map_or(0, |(i, _)| i);
            format!("{}…", &body[..cut])
        }
    }
}

/// One of the viewer's rooms was deleted.
pub struct RoomDeleted(uuid::Uuid);

#[Object]
impl RoomDeleted {
    async fn room_id(&self) -> ID {
        ID(self.0.to_string())
    }
}

/// The viewer read a room up to a message, on one of their devices (`markRead`).
pub struct RoomRead {
    room_id: uuid::Uuid,
    seq: i64,
}

#[Object]
impl RoomRead {
    async fn room_id(&self) -> ID {
        ID(self.room_id.to_string())
    }

    /// The room's `lastReadSeq` from now on.
    async fn last_read_seq(&self) -> i32 {
        to_int(self.seq.max(0) as u64)
    }
}

#[derive(Default)]
pub struct EventSubscription;

#[Subscription]
impl EventSubscription {
    /// Everything that happens in a room the viewer is a member of, in order: messages,
    /// their edits, deletions and reactions, members joining, leaving and changing role, and
    /// changes to the room; and, live only, who is typing. With `after` (the
    /// cursor of an event of this stream, or of a message from history), it first replays
    /// every later event, then goes live, with no gap and no duplicate. It ends after the
    /// viewer's own MemberLeft: quietly when they left, with FORBIDDEN when they were removed
    /// or banned (or the room was deleted). With `presence`, it also says when members come
    /// online or go offline (PresenceChanged): off by default, since in a large room that is
    /// most of what happens.
    #[graphql(guard = "SignedIn")]
    async fn room_events(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        after: Option<String>,
        #[graphql(default_with = "Some(false)")] presence: Option<bool>,
    ) -> Result<impl Stream<Item = AppResult<Shared<RoomEvent>>> + use<>, AppError> {
        let room_id = parse_id("roomId", &room_id)?;
        let after = after
            .map(|cursor| {
                EventCursor::decode_cursor(&cursor)
                    .map(|c| After::Event(c.0))
                    .or_else(|_| MessageCursor::decode_cursor(&cursor).map(|c| After::Message(c.0)))
            })
            .transpose()
            .map_err(|_| AppError::bad_input("after", "invalid cursor"))?;
        let feed = Box::pin(state(ctx)?.chat.subscribe(
            viewer(ctx)?,
            room_id,
            after,
            subscriber(ctx)?,
        ))
        .await?;
        established(ctx);
        let presence = presence.unwrap_or(false);
        let wanted = move |item: &AppResult<Shared<FeedItem>>| {
            future::ready(
                presence
                    || !matches!(
                        item,
                        Ok(Shared {
                            item: FeedItem::Presence(..),
                            ..
                        })
                    ),
            )
        };
        let events = feed
            .filter(wanted)
            .map(|item| item.map(|shared| shared.map(RoomEvent::from)));
        Ok(unless_answered(ctx, events))
    }

    /// What the viewer's list of rooms needs, from all their rooms at once, from now on:
    /// every new message (with a preview), changes to the rooms, rooms deleted, and the
    /// viewer's own joining, leaving and change of role. Nothing is replayed: a client that
    /// was away reads its rooms (`rooms`) again.
    #[graphql(guard = "SignedIn")]
    async fn my_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = AppResult<MyEvent>> + use<>, AppError> {
        let events = Box::pin(state(ctx)?.chat.my_events(viewer(ctx)?, subscriber(ctx)?)).await?;
        established(ctx);
        Ok(events.filter_map(|item| future::ready(item.map(MyEvent::from).transpose())))
    }
}

/// Cancelled by a subscription once it is established: it hears whatever commits from then
/// on. The socket waits for it before reading its next message, so a client that has an
/// answer to anything it sent after `subscribe` (a `pong`, say) knows the subscription is
/// live. Before that, "from now" would be whenever the subscription's first read finished.
#[derive(Clone, Default)]
pub struct Established(pub tokio_util::sync::CancellationToken);

/// Says the subscription is established, to the transport that asked (`Established`).
pub(super) fn established(ctx: &Context<'_>) {
    if let Some(Established(token)) = ctx.data_opt::<Established>() {
        token.cancel();
    }
}

/// The transport's: subscriptions run over a WebSocket, which gives each its socket's.
pub(super) fn subscriber(ctx: &Context<'_>) -> AppResult<Subscriber> {
    ctx.data_opt::<Subscriber>()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("a subscription without a subscriber").into())
}

/// Keeps the messages of a room's event stream: `messageAdded` is that view of it.
pub(super) fn messages_only(
    events: impl Stream<Item = AppResult<Shared<FeedItem>>>,
) -> impl Stream<Item = AppResult<Shared<Arc<ChatMessage>>>> {
    events.filter_map(|item| {
        future::ready(match item {
            Ok(Shared {
                item: FeedItem::Event(broker::RoomEvent::Message(message)),
                memo,
            }) => Some(Ok(Shared {
                item: message,
                memo,
            })),
            Ok(_) => None,
            Err(err) => Some(Err(err)),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn previews_cut_long_bodies_at_a_character() {
        assert_eq!(preview("hello"), "hello");
        let exact = "é".repeat(100);
        assert_eq!(preview(&exact), exact);
        let long = preview(&"é".repeat(101));
        assert_eq!(long.chars().count(), 100);
        assert!(long.ends_with("é…"));
    }
}
