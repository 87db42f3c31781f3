//! Reactions: one per user, message and emoji, and a bounded number of different emoji on a
//! message. Adding and removing one is an event of the room's stream. Counts are read for many
//! messages at once (a page of history, a burst of subscribers): a fixed number of queries,
//! whatever the number of messages.
use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{Chat, ChatMessage, edits::still_there, events::Change};
use crate::{
    domain::Emoji,
    entity::{now, reaction, room_event::EventKind},
    error::{AppError, AppResult},
    service::auth::Viewer,
};

/// Different emoji on one message, at most.
pub const MAX_REACTIONS: u64 = 20;

/// How many reacted to a message with an emoji, in the order the emoji were first used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    pub emoji: String,
    pub count: i64,
}

impl Chat {
    /// Adds (`on`) or removes the viewer's `emoji` on a message; doing it twice is harmless.
    /// Returns the message.
    pub async fn react(
        &self,
        viewer: &Viewer,
        message_id: Uuid,
        emoji: Emoji,
        on: bool,
    ) -> AppResult<ChatMessage> {
        self.send_per_user.check(&viewer.user_id)?;
        let (txn, _, message) = self.begin_on_message(viewer, message_id).await?;
        still_there(&message)?;
        let key = (message_id, viewer.user_id, emoji.as_str().to_owned());
        let exists = reaction::Entity::find_by_id(key.clone())
            .one(&txn)
            .await?
            .is_some();
        let message = self.with_author(message).await?;
        if exists == on {
            return Ok(message);
        }
        if on {
            let used = reaction::Entity::find()
                .select_only()
                .column(reaction::Column::Emoji)
                .distinct()
                .filter(reaction::Column::MessageId.eq(message_id))
                .count(&txn)
                .await?;
            let new_emoji = reaction::Entity::find()
                .filter(reaction::Column::MessageId.eq(message_id))
                .filter(reaction::Column::Emoji.eq(emoji.as_str()))
                .one(&txn)
                .await?
                .is_none();
            if new_emoji && used >= MAX_REACTIONS {
                return Err(AppError::bad_input(
                    "emoji",
                    format!("a message has at most {MAX_REACTIONS} different reactions"),
                ));
            }
            reaction::Entity::insert(reaction::ActiveModel {
                message_id: Set(message_id),
                user_id: Set(viewer.user_id),
                emoji: Set(key.2),
                created_at: Set(now()),
            })
            .exec_without_returning(&txn)
            .await?;
        } else {
            reaction::Entity::delete_by_id(key).exec(&txn).await?;
        }
        let kind = match on {
            true => EventKind::ReactionAdded,
            false => EventKind::ReactionRemoved,
        };
        let emoji = Some(emoji.as_str());
        let change = Change::about_message(&message.message, kind, viewer.user_id, emoji);
        let event = change.record_about(&txn, message.clone()).await?;
        self.commit(txn, vec![event]).await?;
        Ok(message)
    }

    /// The reactions of each of `messages`, in one query.
    pub async fn reaction_counts(
        &self,
        messages: &[Uuid],
    ) -> AppResult<HashMap<Uuid, Vec<ReactionCount>>> {
        let rows: Vec<(Uuid, String, i64)> = reaction::Entity::find()
            .select_only()
            .column(reaction::Column::MessageId)
            .column(reaction::Column::Emoji)
            .column_as(Expr::col(reaction::Column::UserId).count(), "count")
            .filter(reaction::Column::MessageId.is_in(messages.iter().copied()))
            .group_by(reaction::Column::MessageId)
            .group_by(reaction::Column::Emoji)
            .order_by_asc(Expr::col(reaction::Column::CreatedAt).min())
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut counts: HashMap<Uuid, Vec<ReactionCount>> = HashMap::new();
        for (message_id, emoji, count) in rows {
            counts
                .entry(message_id)
                .or_default()
                .push(ReactionCount { emoji, count });
        }
        Ok(counts)
    }

    /// Which emoji each user reacted with to each message, for the given (message, user)
    /// pairs, in one query.
    pub async fn reactions_of(
        &self,
        pairs: &[(Uuid, Uuid)],
    ) -> AppResult<HashMap<(Uuid, Uuid), Vec<String>>> {
        let messages = pairs.iter().map(|p| p.0);
        let users = pairs.iter().map(|p| p.1);
        let rows = reaction::Entity::find()
            .filter(reaction::Column::MessageId.is_in(messages))
            .filter(reaction::Column::UserId.is_in(users))
            .all(&self.db)
            .await?;
        let mut mine: HashMap<(Uuid, Uuid), Vec<String>> = HashMap::new();
        for row in rows {
            mine.entry((row.message_id, row.user_id))
                .or_default()
                .push(row.emoji);
        }
        Ok(mine)
    }
}
