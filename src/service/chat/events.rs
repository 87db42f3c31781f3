//! A room's event stream: messages and every other change (members joining, leaving, changing
//! role; the room's settings) numbered by one counter, `rooms.last_event_seq`, with no gaps.
//! Messages are numbered as they are stored (`messages.event_seq`); the other events are rows
//! of `room_events`, written here, in the transaction that makes them true.
use std::{collections::HashMap, sync::Arc};

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use futures_util::Stream;

use super::{
    Chat, ChatMessage, Subscriber,
    access::{Action, room_access},
    feed::{self, Feed, FeedItem},
    messages::with_author,
};
use crate::{
    broker::{Event, RoomEvent, Shared, Topic},
    entity::{
        membership::RoomRole,
        message, now, room,
        room_event::{self, EventKind, LeaveReason},
        user,
    },
    error::{AppError, AppResult},
    service::auth::Viewer,
};

/// Where a subscription to a room's events starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// After this message (by its seq: a cursor from history or `messageAdded`).
    Message(i64),
    /// After this event (by its event seq: a `roomEvents` cursor).
    Event(i64),
}

impl Chat {
    /// The room's events after `after` (or from now on), live, for one of `subscriber`'s
    /// subscriptions: see `feed`.
    pub async fn subscribe(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        after: Option<After>,
        subscriber: Subscriber,
    ) -> AppResult<impl Stream<Item = AppResult<Shared<FeedItem>>> + use<>> {
        // Subscribe before reading where the room is: whatever commits after this is in the
        // channel, whatever committed before is in the database.
        let live = self.hub.subscribe(room_id);
        self.hub.heard(Topic::Room(room_id)).await;
        let access = room_access(&self.db, room_id, viewer.user_id).await?;
        Action::Take.check(&access)?;
        let room = access.room;
        // No cursor past the room's newest was ever handed out, and taken at its word it would
        // skip everything up to it as delivered.
        let past = |what| {
            AppError::bad_input(
                "after",
                format!("the cursor is past the newest {what} of this room"),
            )
        };
        let next_seq = match after {
            None => room.last_event_seq + 1,
            Some(After::Event(seq)) if seq > room.last_event_seq => return Err(past("event")),
            Some(After::Event(seq)) => Ord::max(seq, 0) + 1,
            Some(After::Message(seq)) if seq > room.last_seq => return Err(past("message")),
            Some(After::Message(seq)) => event_seq_after_message(&self.db, room_id, seq).await?,
        };
        Ok(feed::feed(Feed {
            db: self.db.clone(),
            room_id,
            viewer_id: viewer.user_id,
            next_seq,
            last_seq: room.last_event_seq,
            live,
            resyncs: self.hub.resyncs(),
            subscriber,
        }))
    }
}

/// A change to record: what happened to whom in which room, and who did it (if not they).
pub(super) struct Change {
    room_id: Uuid,
    kind: EventKind,
    user_id: Uuid,
    actor_id: Option<Uuid>,
    role: Option<RoomRole>,
    reason: Option<LeaveReason>,
    name: Option<String>,
    topic: Option<String>,
    message_id: Option<Uuid>,
    emoji: Option<&'static str>,
}

impl Change {
    fn new(room_id: Uuid, kind: EventKind, user_id: Uuid, actor_id: Option<Uuid>) -> Self {
        Self {
            room_id,
            kind,
            user_id,
            actor_id: actor_id.filter(|&actor| actor != user_id),
            role: None,
            reason: None,
            name: None,
            topic: None,
            message_id: None,
            emoji: None,
        }
    }

    pub fn joined(room_id: Uuid, user_id: Uuid, role: RoomRole, by: Option<Uuid>) -> Self {
        Self {
            role: Some(role),
            ..Self::new(room_id, EventKind::Joined, user_id, by)
        }
    }

    pub fn left(room_id: Uuid, user_id: Uuid, reason: LeaveReason, by: Option<Uuid>) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new(room_id, EventKind::Left, user_id, by)
        }
    }

    pub fn role_changed(room_id: Uuid, user_id: Uuid, role: RoomRole, by: Option<Uuid>) -> Self {
        Self {
            role: Some(role),
            ..Self::new(room_id, EventKind::RoleChanged, user_id, by)
        }
    }

    /// The room's settings from now on, set by `by`.
    pub fn room_updated(room_id: Uuid, by: Uuid, name: &str, topic: Option<&str>) -> Self {
        Self {
            name: Some(name.to_owned()),
            topic: topic.map(str::to_owned),
            ..Self::new(room_id, EventKind::RoomUpdated, by, None)
        }
    }

    /// `by` edited, deleted (`kind`), or reacted to `message` with `emoji` (added or removed).
    pub fn about_message(
        message: &message::Model,
        kind: EventKind,
        by: Uuid,
        emoji: Option<&'static str>,
    ) -> Self {
        debug_assert!(kind.is_about_a_message());
        Self {
            message_id: Some(message.id),
            emoji,
            ..Self::new(message.room_id, kind, by, None)
        }
    }

    /// Stores the change under its room's next event seq, in `txn`: the event to announce
    /// once `txn` commits. The increment locks the room's row (SQLite: the database) until
    /// then, so events are numbered in commit order, and a rollback takes the number back.
    pub async fn record(self, txn: &impl ConnectionTrait) -> AppResult<Event> {
        let stored = self.store(txn).await?;
        Ok(Event::Room(RoomEvent::Change(Arc::new(stored))))
    }

    /// The same for a change to `message` (as it is after the change).
    pub async fn record_about(
        self,
        txn: &impl ConnectionTrait,
        message: ChatMessage,
    ) -> AppResult<Event> {
        let stored = self.store(txn).await?;
        Ok(Event::Room(RoomEvent::MessageChange(
            Arc::new(stored),
            Arc::new(message),
        )))
    }

    async fn store(self, txn: &impl ConnectionTrait) -> AppResult<room_event::Model> {
        let seq = next_event_seq(txn, self.room_id).await?;
        let stored = room_event::ActiveModel {
            room_id: Set(self.room_id),
            seq: Set(seq),
            kind: Set(self.kind),
            user_id: Set(self.user_id),
            actor_id: Set(self.actor_id),
            role: Set(self.role),
            reason: Set(self.reason),
            name: Set(self.name),
            topic: Set(self.topic),
            created_at: Set(now()),
            message_id: Set(self.message_id),
            emoji: Set(self.emoji.map(str::to_owned)),
        }
        .insert(txn)
        .await?;
        Ok(stored)
    }
}

async fn next_event_seq(txn: &impl ConnectionTrait, room_id: Uuid) -> AppResult<i64> {
    room::Entity::update_many()
        .col_expr(
            room::Column::LastEventSeq,
            Expr::col(room::Column::LastEventSeq).add(1),
        )
        .filter(room::Column::Id.eq(room_id))
        .exec_with_returning(txn)
        .await?
        .first()
        .map(|r| r.last_event_seq)
        .ok_or(AppError::NotFound("room"))
}

/// Events of `room_id` from event seq `from` on, oldest first: the messages and the other
/// events, `limit` of each at most, read side by side and merged up to where both reads are
/// complete. True with them if they are all there is (so far).
pub(super) async fn events_from(
    db: &DatabaseConnection,
    room_id: Uuid,
    from: i64,
    limit: u64,
) -> AppResult<(Vec<RoomEvent>, bool)> {
    let messages = message::Entity::find()
        .find_also_related(user::Entity)
        .filter(message::Column::RoomId.eq(room_id))
        .filter(message::Column::EventSeq.gte(from))
        .order_by_asc(message::Column::EventSeq)
        .limit(limit)
        .all(db)
        .await?;
    let changes = room_event::Entity::find()
        .filter(room_event::Column::RoomId.eq(room_id))
        .filter(room_event::Column::Seq.gte(from))
        .order_by_asc(room_event::Column::Seq)
        .limit(limit)
        .all(db)
        .await?;
    // A full read may have stopped short of events the other read found: the merge goes as
    // far as the shorter of the full ones.
    let complete_to = |full: bool, last: Option<i64>| match (full, last) {
        (true, Some(last)) => last,
        _ => i64::MAX,
    };
    let until = Ord::min(
        complete_to(
            messages.len() as u64 == limit,
            messages.last().map(|(m, _)| m.event_seq),
        ),
        complete_to(changes.len() as u64 == limit, changes.last().map(|c| c.seq)),
    );
    // The messages that changes name, as they are now: one query for the batch.
    let named: Vec<Uuid> = changes.iter().filter_map(|c| c.message_id).collect();
    let mut current: HashMap<Uuid, Arc<ChatMessage>> = HashMap::new();
    if !named.is_empty() {
        for row in message::Entity::find()
            .find_also_related(user::Entity)
            .filter(message::Column::Id.is_in(named))
            .all(db)
            .await?
        {
            let message = with_author(row)?;
            current.insert(message.message.id, Arc::new(message));
        }
    }
    let mut events: Vec<RoomEvent> = messages
        .into_iter()
        .map(|row| Ok(RoomEvent::Message(Arc::new(with_author(row)?))))
        .chain(changes.into_iter().map(|change| {
            Ok(match change.message_id {
                None => RoomEvent::Change(Arc::new(change)),
                Some(id) => {
                    let message = current.get(&id).cloned().ok_or_else(|| {
                        anyhow::anyhow!(
                            "room event {}/{} names no message",
                            change.room_id,
                            change.seq
                        )
                    })?;
                    RoomEvent::MessageChange(Arc::new(change), message)
                }
            })
        }))
        .collect::<AppResult<_>>()?;
    events.retain(|event| event.seq() <= until);
    events.sort_unstable_by_key(RoomEvent::seq);
    Ok((events, until == i64::MAX))
}

/// The event seq just after the message `seq` of a room (1 for seq 0: the whole stream).
async fn event_seq_after_message(
    db: &DatabaseConnection,
    room_id: Uuid,
    seq: i64,
) -> AppResult<i64> {
    if seq <= 0 {
        return Ok(1);
    }
    let event_seq: Option<i64> = message::Entity::find()
        .select_only()
        .column(message::Column::EventSeq)
        .filter(message::Column::RoomId.eq(room_id))
        .filter(message::Column::Seq.eq(seq))
        .into_tuple()
        .one(db)
        .await?;
    event_seq
        .map(|e| e + 1)
        .ok_or_else(|| AppError::bad_input("after", "no message of this room has this cursor"))
}
