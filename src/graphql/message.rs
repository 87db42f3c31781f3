//! `Message`, room history, `searchMessages`, `sendMessage` and the `messageAdded` subscription.
use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Context, ID, InputObject, Object, SimpleObject, Subscription, connection::CursorType,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::{
    event::{established, messages_only, subscriber},
    guard::{SignedIn, caller_ip, viewer},
    loaders,
    member::user as member_user,
    pagination::{
        Connection, InvalidCursor, Page, Window, connection, cursor, decode_cursor, encode_cursor,
        page_cost,
    },
    parse_id,
    shared::unless_answered,
    state, to_int,
    user::User,
};
use crate::{
    broker::Shared,
    domain::{ClientMsgId, Emoji, MessageBody, SearchText},
    entity::room,
    error::{AppError, AppResult},
    service::chat::{After, ChatMessage, NewMessage, ReactionCount},
};

pub struct Message {
    row: Arc<ChatMessage>,
    /// What a page of history read for all its messages at once; without it, each field
    /// reads through the schema's loaders.
    page: Option<Arc<PageReads>>,
}

impl Message {
    pub fn new(row: impl Into<Arc<ChatMessage>>) -> Self {
        Self {
            row: row.into(),
            page: None,
        }
    }
}

/// Reactions by message, and the viewer's own by (message, viewer).
type PageReactions = (
    HashMap<Uuid, Vec<ReactionCount>>,
    HashMap<(Uuid, Uuid), Vec<String>>,
);

/// Reads for a whole page of messages, one query each, for the fields its selection has.
#[derive(Default)]
struct PageReads {
    /// `None` when not selected.
    reactions: Option<PageReactions>,
    /// The messages replied to, by id; `None` when not selected.
    replied: Option<HashMap<Uuid, ChatMessage>>,
    /// Whom each message mentions; `None` when not selected.
    mentions: Option<HashMap<Uuid, Vec<Uuid>>>,
}

#[Object]
impl Message {
    async fn id(&self) -> ID {
        ID(self.row.message.id.to_string())
    }

    async fn room_id(&self) -> ID {
        ID(self.row.message.room_id.to_string())
    }

    /// Position in the room: 1, 2, 3... strictly increasing, with no gaps.
    async fn seq(&self) -> i32 {
        to_int(self.row.message.seq.max(0) as u64)
    }

    async fn author(&self) -> User {
        User::new(self.row.author.clone())
    }

    async fn body(&self) -> &str {
        &self.row.message.body
    }

    /// The sender's idempotency key, if it sent one.
    async fn client_msg_id(&self) -> Option<&str> {
        self.row.message.client_msg_id.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.message.created_at
    }

    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.row.message.edited_at
    }

    /// When the message was deleted; its body is then empty and it has no reactions.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.row.message.deleted_at
    }

    /// The message this one answers; null if it was deleted.
    async fn reply_to(&self, ctx: &Context<'_>) -> AppResult<Option<Message>> {
        let Some(id) = self.row.message.reply_to_id else {
            return Ok(None);
        };
        let target = match self.page.as_ref().and_then(|p| p.replied.as_ref()) {
            Some(replied) => replied.get(&id).cloned().map(Arc::new),
            None => loaders(ctx)?.messages.load_one(id).await?,
        };
        Ok(target
            .filter(|target| target.message.deleted_at.is_none())
            .map(Message::new))
    }

    /// The members the body mentions (`@username`; at most 20), as they were when it was
    /// sent or last edited.
    async fn mentions(&self, ctx: &Context<'_>) -> AppResult<Vec<User>> {
        let id = self.row.message.id;
        let ids = match self.page.as_ref().and_then(|p| p.mentions.as_ref()) {
            Some(mentions) => mentions.get(&id).cloned().unwrap_or_default(),
            None => match loaders(ctx)?.mentions.load_one(id).await? {
                Some(ids) => ids.as_ref().clone(),
                None => Vec::new(),
            },
        };
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            users.push(member_user(ctx, id).await?);
        }
        Ok(users)
    }

    /// Each emoji reacted with, in the order they were first used.
    async fn reactions(&self, ctx: &Context<'_>) -> AppResult<Vec<Reaction>> {
        let id = self.row.message.id;
        // The viewer's own reactions only when asked for: without them the answer is the same
        // for everyone, and subscriptions share it (`shared`).
        let viewer = match ctx.look_ahead().field("viewerHasReacted").exists() {
            true => Some(viewer(ctx)?.user_id),
            false => None,
        };
        let (counts, mine) = match self.page.as_ref().and_then(|p| p.reactions.as_ref()) {
            Some((counts, mine)) => (
                counts.get(&id).cloned().map(Arc::new),
                viewer.and_then(|viewer| mine.get(&(id, viewer)).cloned().map(Arc::new)),
            ),
            None => {
                let loaders = loaders(ctx)?;
                let Some(counts) = loaders.reactions.load_one(id).await? else {
                    return Ok(Vec::new());
                };
                let mine = match viewer {
                    Some(viewer) => loaders.own_reactions.load_one((id, viewer)).await?,
                    None => None,
                };
                (Some(counts), mine)
            }
        };
        let mine = mine.as_deref().map(Vec::as_slice).unwrap_or_default();
        Ok(counts
            .as_deref()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|c| Reaction {
                emoji: c.emoji.clone(),
                count: to_int(c.count.max(0) as u64),
                viewer_has_reacted: mine.contains(&c.emoji),
            })
            .collect())
    }

    /// This message's position, as a cursor for `messages(after:)`, `messages(before:)` or
    /// `messageAdded(after:)`.
    async fn cursor(&self) -> String {
        MessageCursor(self.row.message.seq).encode_cursor()
    }
}

/// One emoji on a message.
#[derive(SimpleObject)]
pub struct Reaction {
    emoji: String,
    /// How many reacted with it.
    count: i32,
    viewer_has_reacted: bool,
}

cursor!(
    /// A position in a room's history: the message's seq.
    MessageCursor(i64),
    "msg"
);

/// A place among the results of a search: a result's rank and its message's id. The rank is
/// kept bit for bit (in hex), since the next page starts at exactly this rank; the cursor is
/// `search:` and 8 + 1 + 32 characters, 64 in base64.
pub struct SearchCursor {
    rank: f32,
    id: Uuid,
}

impl CursorType for SearchCursor {
    type Error = InvalidCursor;

    fn decode_cursor(s: &str) -> Result<Self, InvalidCursor> {
        let value: String = decode_cursor("search", s)?;
        let (bits, id) = value.split_once('.').ok_or(InvalidCursor)?;
        let rank = u32::from_str_radix(bits, 16)
            .map(f32::from_bits)
            .ok()
            .filter(|rank| rank.is_finite())
            .ok_or(InvalidCursor)?;
        let id = id.parse().map_err(|_| InvalidCursor)?;
        Ok(Self { rank, id })
    }

    fn encode_cursor(&self) -> String {
        let value = format!("{:08x}.{}", self.rank.to_bits(), self.id.simple());
        encode_cursor("search", value)
    }
}

/// The cursor of an edge of a `MessageConnection`: the message's place in its room's history,
/// or among the results of a search. Each list takes back only its own (`Page` decodes the
/// kind it expects), so both can share the one connection type, and a search result is the
/// same `Message` a page of history holds.
pub enum EdgeCursor {
    History(MessageCursor),
    Search(SearchCursor),
}

impl CursorType for EdgeCursor {
    type Error = InvalidCursor;

    fn decode_cursor(s: &str) -> Result<Self, InvalidCursor> {
        MessageCursor::decode_cursor(s)
            .map(Self::History)
            .or_else(|_| SearchCursor::decode_cursor(s).map(Self::Search))
    }

    fn encode_cursor(&self) -> String {
        match self {
            Self::History(cursor) => cursor.encode_cursor(),
            Self::Search(cursor) => cursor.encode_cursor(),
        }
    }
}

pub type MessageConnection = Connection<EdgeCursor, Message>;

/// One page of a readable room's history.
pub async fn message_page(
    ctx: &Context<'_>,
    room: &room::Model,
    page: Page<MessageCursor>,
) -> AppResult<MessageConnection> {
    let chat = &state(ctx)?.chat;
    let history = chat
        .history(room, page.direction, page.cursor.map(|c| c.0), page.limit)
        .await?;
    message_connection(ctx, history, |message| {
        let cursor = EdgeCursor::History(MessageCursor(message.message.seq));
        (cursor, message)
    })
    .await
}

/// A page of messages as a connection, each with its cursor (`edge`), and what its selection
/// reads of them read for all of them at once.
async fn message_connection<T>(
    ctx: &Context<'_>,
    window: Window<T>,
    edge: impl FnMut(T) -> (EdgeCursor, ChatMessage),
) -> AppResult<MessageConnection> {
    let window = Window {
        items: window.items.into_iter().map(edge).collect::<Vec<_>>(),
        has_previous: window.has_previous,
        has_next: window.has_next,
    };
    let messages: Vec<&ChatMessage> = window.items.iter().map(|(_, m)| m).collect();
    let reads = Arc::new(page_reads(ctx, &messages).await?);
    Ok(connection(window, |(cursor, message)| {
        let page = Some(reads.clone());
        (
            cursor,
            Message {
                row: Arc::new(message),
                page,
            },
        )
    }))
}

/// One query per selected field that needs one, for the whole page: a page of 100 messages
/// costs what a page of one does.
async fn page_reads(ctx: &Context<'_>, messages: &[&ChatMessage]) -> AppResult<PageReads> {
    let chat = &state(ctx)?.chat;
    let node = ctx.look_ahead().field("edges").field("node");
    let ids: Vec<Uuid> = messages.iter().map(|m| m.message.id).collect();
    let mut reads = PageReads::default();
    if node.field("reactions").exists() && !ids.is_empty() {
        let viewer = viewer(ctx)?.user_id;
        let pairs: Vec<(Uuid, Uuid)> = ids.iter().map(|&id| (id, viewer)).collect();
        reads.reactions = Some((
            chat.reaction_counts(&ids).await?,
            chat.reactions_of(&pairs).await?,
        ));
    }
    let replied: Vec<Uuid> = messages
        .iter()
        .filter_map(|m| m.message.reply_to_id)
        .collect();
    if node.field("replyTo").exists() && !replied.is_empty() {
        reads.replied = Some(chat.messages_by_id(&replied).await?);
    }
    if node.field("mentions").exists() && !ids.is_empty() {
        reads.mentions = Some(chat.mentions_of(&ids).await?);
    }
    Ok(reads)
}

#[derive(InputObject)]
pub struct SendMessageInput {
    room_id: ID,
    /// 1–4000 characters, not blank.
    body: String,
    /// An idempotency key: sending the same key again returns the message stored the first
    /// time instead of storing a copy (retry a send safely after a network error).
    client_msg_id: Option<String>,
    /// A message of the same room that this one answers (not a deleted one).
    reply_to_id: Option<ID>,
}

#[derive(Default)]
pub struct MessageQuery;

#[Object]
impl MessageQuery {
    /// A room's history (see `Room.messages`).
    #[graphql(
        guard = "SignedIn",
        complexity = "page_cost(first, last) * child_complexity"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> AppResult<MessageConnection> {
        let room_id = parse_id("roomId", &room_id)?;
        let page = Page::new(first, after, last, before)?;
        let room = state(ctx)?
            .chat
            .readable_room(viewer(ctx)?, room_id)
            .await?;
        message_page(ctx, &room, page).await
    }

    /// Messages with every word of `query` (1–200 characters: whole words, in any case; no
    /// character has a meaning of its own), best match first and newest first among equals,
    /// from the rooms the viewer may read, or from `roomId` alone. Deleted messages are not
    /// found; edited ones are, by their words as they are now. An edge's cursor continues the
    /// search (`after`); the message's own `cursor` is its place in its room's history, to
    /// read around it. Each page counts against a rate limit per user.
    #[graphql(
        guard = "SignedIn",
        complexity = "page_cost(first, None) * child_complexity"
    )]
    async fn search_messages(
        &self,
        ctx: &Context<'_>,
        query: String,
        room_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<MessageConnection> {
        let text = SearchText::parse("query", &query)?;
        let room_id = room_id.map(|id| parse_id("roomId", &id)).transpose()?;
        let page = Page::<SearchCursor>::forward(first, after)?;
        let after = page.cursor.map(|c| (c.rank, c.id));
        let found = state(ctx)?
            .chat
            .search_messages(viewer(ctx)?, &text, room_id, after, page.limit)
            .await?;
        message_connection(ctx, found, |found| {
            let id = found.message.message.id;
            let cursor = EdgeCursor::Search(SearchCursor {
                rank: found.rank,
                id,
            });
            (cursor, found.message)
        })
        .await
    }
}

#[derive(Default)]
pub struct MessageMutation;

#[Object]
impl MessageMutation {
    /// Sends a message to a room the viewer is a member of.
    #[graphql(guard = "SignedIn")]
    async fn send_message(&self, ctx: &Context<'_>, input: SendMessageInput) -> AppResult<Message> {
        let new = NewMessage {
            room_id: parse_id("roomId", &input.room_id)?,
            body: MessageBody::parse("body", &input.body)?,
            client_msg_id: input
                .client_msg_id
                .as_deref()
                .map(|id| ClientMsgId::parse("clientMsgId", id))
                .transpose()?,
            reply_to: input
                .reply_to_id
                .map(|id| parse_id("replyToId", &id))
                .transpose()?,
        };
        let sent = state(ctx)?
            .chat
            .send_message(viewer(ctx)?, caller_ip(ctx), new)
            .await?;
        Ok(Message::new(sent))
    }

    /// Replaces the body of one of the viewer's messages (1–4000 characters) and sets its
    /// `editedAt`. A deleted message cannot be edited.
    #[graphql(guard = "SignedIn")]
    async fn edit_message(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
        body: String,
    ) -> AppResult<Message> {
        let message_id = parse_id("messageId", &message_id)?;
        let body = MessageBody::parse("body", &body)?;
        let chat = &state(ctx)?.chat;
        let edited = chat.edit_message(viewer(ctx)?, message_id, body).await?;
        Ok(Message::new(edited))
    }

    /// Deletes a message (its author, or the room's OWNER and ADMINs): it stays in the history
    /// as a tombstone, with its seq, without its body or reactions. False if it was deleted
    /// already.
    #[graphql(guard = "SignedIn")]
    async fn delete_message(&self, ctx: &Context<'_>, message_id: ID) -> AppResult<bool> {
        let message_id = parse_id("messageId", &message_id)?;
        state(ctx)?
            .chat
            .delete_message(viewer(ctx)?, message_id)
            .await
    }

    /// Reacts to a message with one emoji (members; once per user and emoji; at most 20
    /// different emoji on a message). Reacting again is harmless.
    #[graphql(guard = "SignedIn")]
    async fn add_reaction(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
        emoji: String,
    ) -> AppResult<Message> {
        react(ctx, message_id, emoji, true).await
    }

    /// Takes the viewer's reaction back. Taking it back again is harmless.
    #[graphql(guard = "SignedIn")]
    async fn remove_reaction(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
        emoji: String,
    ) -> AppResult<Message> {
        react(ctx, message_id, emoji, false).await
    }
}

async fn react(ctx: &Context<'_>, message_id: ID, emoji: String, on: bool) -> AppResult<Message> {
    let message_id = parse_id("messageId", &message_id)?;
    let emoji = Emoji::parse("emoji", &emoji)?;
    let chat = &state(ctx)?.chat;
    let message = chat.react(viewer(ctx)?, message_id, emoji, on).await?;
    Ok(Message::new(message))
}

#[derive(Default)]
pub struct MessageSubscription;

#[Subscription]
impl MessageSubscription {
    /// New messages in a room the viewer is a member of: the messages of `roomEvents`. With
    /// `after` (a message cursor), it first replays every later message, then goes live, with
    /// no gap and no duplicate. It ends when the viewer leaves the room, and with FORBIDDEN
    /// first when they are removed or banned or the room is deleted.
    #[graphql(guard = "SignedIn")]
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = AppResult<Shared<Message>>> + use<>, AppError> {
        let room_id = parse_id("roomId", &room_id)?;
        let after = after
            .map(|cursor| MessageCursor::decode_cursor(&cursor))
            .transpose()
            .map_err(|_| AppError::bad_input("after", "invalid cursor"))?
            .map(|c| After::Message(c.0));
        // Boxed: async-graphql keeps this future's space for the subscription's lifetime (it
        // shares an allocation with the stream), and the access query inside it is large.
        let feed = Box::pin(state(ctx)?.chat.subscribe(
            viewer(ctx)?,
            room_id,
            after,
            subscriber(ctx)?,
        ))
        .await?;
        established(ctx);
        let messages = messages_only(feed).map(|item| item.map(|shared| shared.map(Message::new)));
        Ok(unless_answered(ctx, messages))
    }
}
