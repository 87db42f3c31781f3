//! A room's messages: history pages, and sending (numbered by the room's `seq`, idempotent by
//! `clientMsgId`).
use std::{collections::HashMap, net::IpAddr, sync::Arc};

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Chat, ChatMessage,
    access::{Action, room_access},
    mentions::record_mentions,
};
use crate::{
    broker::{Event, RoomEvent},
    domain::{ClientMsgId, MessageBody},
    entity::{message, now, room, user},
    error::{AppError, AppResult, is_unique_violation},
    service::{Direction, Window, auth::Viewer, begin_write, detached},
};

/// Messages read from the database per query when replaying or catching up: what one replay
/// holds in memory at most (a few KB of typical messages; 1.6 MB of the largest).
pub(super) const CATCH_UP_BATCH: u64 = 100;

pub struct NewMessage {
    pub room_id: Uuid,
    pub body: MessageBody,
    pub client_msg_id: Option<ClientMsgId>,
    /// A message of the same room that this one answers.
    pub reply_to: Option<Uuid>,
}

impl Chat {
    /// One page of `room`'s messages. Seqs have no gaps, so whether there is anything before
    /// or after the page follows from the cursor and `last_seq`, with no extra query.
    pub async fn history(
        &self,
        room: &room::Model,
        direction: Direction,
        cursor: Option<i64>,
        limit: u64,
    ) -> AppResult<Window<ChatMessage>> {
        let mut query = message::Entity::find()
            .find_also_related(user::Entity)
            .filter(message::Column::RoomId.eq(room.id));
        query = match (direction, cursor) {
            (Direction::Forward, Some(after)) => query.filter(message::Column::Seq.gt(after)),
            (Direction::Backward, Some(before)) => query.filter(message::Column::Seq.lt(before)),
            (_, None) => query,
        };
        query = match direction {
            Direction::Forward => query.order_by_asc(message::Column::Seq),
            Direction::Backward => query.order_by_desc(message::Column::Seq),
        };
        let rows = query.limit(limit + 1).all(&self.db).await?;
        let more = rows.len() as u64 > limit;
        let mut items: Vec<ChatMessage> = rows
            .into_iter()
            .take(limit as usize)
            .map(with_author)
            .collect::<AppResult<_>>()?;
        // Oldest first, whichever way the page was read.
        if direction == Direction::Backward {
            items.reverse();
        }
        let (has_previous, has_next) = match direction {
            Direction::Forward => (cursor.is_some_and(|after| after >= 1), more),
            Direction::Backward => (more, cursor.is_some_and(|before| before <= room.last_seq)),
        };
        Ok(Window {
            items,
            has_previous,
            has_next,
        })
    }

    /// Stores a message under the room's next seq and announces it. With a `clientMsgId`
    /// the send is idempotent: repeating it returns the message already stored.
    pub async fn send_message(
        self: &Arc<Self>,
        viewer: &Viewer,
        client: IpAddr,
        new: NewMessage,
    ) -> AppResult<ChatMessage> {
        self.send_per_ip.check(&client.into())?;
        self.send_per_user.check(&viewer.user_id)?;
        let author = self
            .users
            .get(viewer.user_id)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))?;
        if self.require_verified_email && author.email_verified_at.is_none() {
            // The cached row may predate a verification on another instance.
            let verified = self.users.fresh(viewer.user_id).await?;
            if verified.is_none_or(|user| user.email_verified_at.is_none()) {
                return Err(AppError::Forbidden(
                    "verify your email address before sending messages",
                ));
            }
        }
        Action::Take.check(&room_access(&self.db, new.room_id, viewer.user_id).await?)?;
        if let Some(client_msg_id) = &new.client_msg_id
            && let Some(existing) = self.find_sent(viewer.user_id, client_msg_id).await?
        {
            return same_room(existing, new.room_id, author);
        }
        if let Some(reply_to) = new.reply_to {
            self.answerable(new.room_id, reply_to).await?;
        }

        let this = self.clone();
        let sent = detached(async move { this.store(author, new).await }).await?;
        metrics::counter!("chat_messages_sent_total").increment(1);
        Ok(sent)
    }

    /// The transaction of a send, and its announcement.
    async fn store(&self, author: Arc<user::Model>, new: NewMessage) -> AppResult<ChatMessage> {
        let txn = begin_write(&self.writer).await?;
        let created_at = now();
        // The increments come first: they take the room's row lock (SQLite: the write lock)
        // for the rest of the transaction, so concurrent sends get consecutive seqs in commit
        // order, and a send that fails rolls its seqs back: no gaps. A message has two: its
        // place among the messages, and in the room's event stream (see `events`).
        let (seq, event_seq) = room::Entity::update_many()
            .col_expr(
                room::Column::LastSeq,
                Expr::col(room::Column::LastSeq).add(1),
            )
            .col_expr(
                room::Column::LastEventSeq,
                Expr::col(room::Column::LastEventSeq).add(1),
            )
            .col_expr(room::Column::LastActivityAt, Expr::value(created_at))
            .filter(room::Column::Id.eq(new.room_id))
            .exec_with_returning(&txn)
            .await?
            .first()
            .map(|r| (r.last_seq, r.last_event_seq))
            .ok_or(AppError::NotFound("room"))?;
        let inserted = message::ActiveModel {
            id: Set(Uuid::now_v7()),
            room_id: Set(new.room_id),
            seq: Set(seq),
            event_seq: Set(event_seq),
            author_id: Set(author.id),
            body: Set(new.body.into_inner()),
            client_msg_id: Set(new.client_msg_id.as_ref().map(|c| c.as_str().to_owned())),
            created_at: Set(created_at),
            edited_at: Set(None),
            deleted_at: Set(None),
            reply_to_id: Set(new.reply_to),
        }
        .insert(&txn)
        .await;
        let stored = match (inserted, &new.client_msg_id) {
            (Ok(stored), _) => stored,
            // The same send raced itself (a client retry): the other one won.
            (Err(err), Some(client_msg_id)) if is_unique_violation(&err) => {
                txn.rollback().await?;
                let existing = self
                    .find_sent(author.id, client_msg_id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("duplicate clientMsgId but no message"))?;
                return same_room(existing, new.room_id, author);
            }
            (Err(err), _) => return Err(err.into()),
        };
        if stored.body.contains('@') {
            record_mentions(&txn, &stored).await?;
        }
        let sent = ChatMessage {
            message: stored,
            author,
        };
        let event = Event::Room(RoomEvent::Message(Arc::new(sent.clone())));
        self.broker.stage(&txn, &event).await?;
        txn.commit().await?;
        self.broker.committed(event);
        Ok(sent)
    }

    /// Messages with their authors, by id, in one query.
    pub async fn messages_by_id(&self, ids: &[Uuid]) -> AppResult<HashMap<Uuid, ChatMessage>> {
        message::Entity::find()
            .find_also_related(user::Entity)
            .filter(message::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| with_author(row).map(|m| (m.message.id, m)))
            .collect()
    }

    /// Refuses a reply to anything but a message of the same room that is still there.
    async fn answerable(&self, room_id: Uuid, reply_to: Uuid) -> AppResult<()> {
        let target = message::Entity::find_by_id(reply_to).one(&self.db).await?;
        match target {
            Some(target) if target.room_id == room_id && target.deleted_at.is_none() => Ok(()),
            Some(target) if target.room_id == room_id => Err(AppError::bad_input(
                "replyToId",
                "the message replied to was deleted",
            )),
            _ => Err(AppError::bad_input(
                "replyToId",
                "replyToId is not a message of this room",
            )),
        }
    }

    async fn find_sent(
        &self,
        author_id: Uuid,
        client_msg_id: &ClientMsgId,
    ) -> AppResult<Option<message::Model>> {
        Ok(message::Entity::find()
            .filter(message::Column::AuthorId.eq(author_id))
            .filter(message::Column::ClientMsgId.eq(client_msg_id.as_str()))
            .one(&self.db)
            .await?)
    }
}

/// A repeated send returns the original, unless the key was used for another room.
fn same_room(
    existing: message::Model,
    room_id: Uuid,
    author: Arc<user::Model>,
) -> AppResult<ChatMessage> {
    if existing.room_id != room_id {
        return Err(AppError::Conflict {
            field: "clientMsgId",
            message: "clientMsgId was already used for a message in another room".into(),
        });
    }
    Ok(ChatMessage {
        message: existing,
        author,
    })
}

pub(super) fn with_author(
    (message, author): (message::Model, Option<user::Model>),
) -> AppResult<ChatMessage> {
    let author = author.ok_or_else(|| anyhow::anyhow!("message {} has no author", message.id))?;
    Ok(ChatMessage {
        message,
        author: Arc::new(author),
    })
}
