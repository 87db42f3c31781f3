//! Creating, listing, joining, leaving, changing and deleting rooms.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, ExprTrait, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, TryInsertResult,
    sea_query::{Expr, Func, LikeExpr, Query},
};
use uuid::Uuid;

use super::{
    Chat,
    access::{Action, RoomAccess, room_access, room_access_for_update},
    events::Change,
    members::hand_over,
};
use crate::{
    broker::Event,
    domain::{Note, RoomName},
    entity::{
        membership::{self, RoomRole},
        now, room,
        room_event::LeaveReason,
    },
    error::AppResult,
    service::{Window, after_id, auth::Viewer, begin_write, detached, first_rows},
};

/// Where a page of the viewer's rooms starts, and so in which order they come.
pub enum RoomsAfter {
    /// In creation order, after this room (from the first, without).
    Created(Option<Uuid>),
    /// By activity, after the room at this place (when it last had a message, its id).
    Active(Option<(DateTime<Utc>, Uuid)>),
}

/// A change to a room's settings: `None` leaves a setting as it is.
pub struct RoomChange {
    pub name: Option<RoomName>,
    /// `Some(None)` clears the topic.
    pub topic: Option<Option<Note>>,
}

impl Chat {
    /// Creates a room; its creator is its OWNER.
    pub async fn create_room(
        &self,
        viewer: &Viewer,
        name: RoomName,
        is_private: bool,
    ) -> AppResult<room::Model> {
        let txn = begin_write(&self.writer).await?;
        let created_at = now();
        let created = room::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name.into_inner()),
            is_private: Set(is_private),
            created_by: Set(viewer.user_id),
            created_at: Set(created_at),
            last_activity_at: Set(Some(created_at)),
            last_seq: Set(0),
            last_event_seq: Set(0),
            topic: Set(None),
            is_direct: Set(false),
            direct_key: Set(None),
        }
        .insert(&txn)
        .await?;
        let joined = add_member(&txn, &created, viewer.user_id, RoomRole::Owner, None).await?;
        let room = room::Entity::find_by_id(created.id)
            .one(&txn)
            .await?
            .ok_or_else(|| anyhow::anyhow!("room missing after its insert"))?;
        self.commit(txn, joined.into_iter().collect()).await?;
        Ok(room)
    }

    /// Joins a public room (joining twice is fine). Private rooms are joined by invitation
    /// (`add_members`), and the banned join nothing until unbanned.
    pub async fn join_room(&self, viewer: &Viewer, room_id: Uuid) -> AppResult<room::Model> {
        let access = room_access(&self.db, room_id, viewer.user_id).await?;
        if access.role.is_some() {
            return Ok(access.room);
        }
        let (txn, access) = self.begin_on(room_id, viewer.user_id, Action::Join).await?;
        let joined = add_member(&txn, &access.room, viewer.user_id, RoomRole::Member, None).await?;
        self.commit(txn, joined.into_iter().collect()).await?;
        Ok(access.room)
    }

    /// Leaves a room; the viewer's subscriptions to it end, on every instance. An OWNER who
    /// leaves hands the room to the longest-standing ADMIN, else MEMBER. False if not a
    /// member.
    pub async fn leave_room(&self, viewer: &Viewer, room_id: Uuid) -> AppResult<bool> {
        let access = room_access(&self.db, room_id, viewer.user_id).await?;
        if access.role.is_none() {
            return Ok(false);
        }
        Action::Leave.check(&access)?;
        let txn = begin_write(&self.writer).await?;
        let reason = LeaveReason::Left;
        let events = end_membership(&txn, room_id, viewer.user_id, reason, None).await?;
        if events.is_empty() {
            return Ok(false);
        }
        self.commit(txn, events).await?;
        Ok(true)
    }

    /// Renames a room or sets its topic (OWNER and ADMIN).
    pub async fn update_room(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        change: RoomChange,
    ) -> AppResult<room::Model> {
        let (txn, access) = self
            .begin_on(room_id, viewer.user_id, Action::Update)
            .await?;
        let mut room: room::ActiveModel = access.room.into();
        if let Some(name) = change.name {
            room.name = Set(name.into_inner());
        }
        if let Some(topic) = change.topic {
            room.topic = Set(topic.map(Note::into_inner));
        }
        // The event first: it counts the room's events, which the update returns.
        let event = Change::room_updated(
            room_id,
            viewer.user_id,
            room.name.as_ref(),
            room.topic.as_ref().as_deref(),
        )
        .record(&txn)
        .await?;
        let updated = room.update(&txn).await?;
        self.commit(txn, vec![event]).await?;
        Ok(updated)
    }

    /// Deletes a room with its members, bans and history (OWNER). Its members' subscriptions
    /// end with FORBIDDEN, on every instance.
    pub async fn delete_room(&self, viewer: &Viewer, room_id: Uuid) -> AppResult<bool> {
        let (txn, _) = self.begin_on(room_id, viewer.user_id, Action::Own).await?;
        room::Entity::delete_by_id(room_id).exec(&txn).await?;
        self.commit(txn, vec![Event::RoomDeleted { room_id }])
            .await?;
        Ok(true)
    }

    /// Rooms the viewer is a member of, after `after`: in creation order, or by activity (the
    /// newest message first; rooms without messages by creation).
    pub async fn my_rooms(
        &self,
        viewer: &Viewer,
        after: RoomsAfter,
        limit: u64,
    ) -> AppResult<Window<room::Model>> {
        let query = room::Entity::find()
            .join(JoinType::InnerJoin, room::Relation::Membership.def())
            .filter(membership::Column::UserId.eq(viewer.user_id));
        let (at, id) = match after {
            RoomsAfter::Created(after) => {
                return after_id(&self.db, query, room::Column::Id, after, limit).await;
            }
            RoomsAfter::Active(None) => {
                let query = query
                    .order_by_desc(room::Column::LastActivityAt)
                    .order_by_desc(room::Column::Id);
                return first_rows(&self.db, query, false, limit).await;
            }
            RoomsAfter::Active(Some(position)) => position,
        };
        let query = query
            .filter(
                Condition::any()
                    .add(room::Column::LastActivityAt.lt(at))
                    .add(
                        Condition::all()
                            .add(room::Column::LastActivityAt.eq(at))
                            .add(room::Column::Id.lt(id)),
                    ),
            )
            .order_by_desc(room::Column::LastActivityAt)
            .order_by_desc(room::Column::Id);
        first_rows(&self.db, query, true, limit).await
    }

    /// Public rooms someone is in, for finding one to join, in creation order; with `search`,
    /// those whose name contains it (in any case).
    pub async fn public_rooms(
        &self,
        search: Option<&str>,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Window<room::Model>> {
        let inhabited = Query::select()
            .expr(Expr::val(1))
            .from(membership::Entity)
            .and_where(
                Expr::col((membership::Entity, membership::Column::RoomId))
                    .equals((room::Entity, room::Column::Id)),
            )
            .to_owned();
        let mut query = room::Entity::find()
            .filter(room::Column::IsPrivate.eq(false))
            .filter(Expr::exists(inhabited));
        if let Some(search) = search {
            let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
            let name = Expr::expr(Func::lower(Expr::col((room::Entity, room::Column::Name))));
            query = query.filter(name.like(LikeExpr::new(pattern).escape('\\')));
        }
        after_id(&self.db, query, room::Column::Id, after, limit).await
    }

    /// A room the viewer may read: NOT_FOUND if there is none (or nobody is in it),
    /// FORBIDDEN if private and the viewer is not a member.
    pub async fn readable_room(&self, viewer: &Viewer, room_id: Uuid) -> AppResult<room::Model> {
        let access = room_access(&self.db, room_id, viewer.user_id).await?;
        Action::Read.check(&access)?;
        Ok(access.room)
    }

    /// A write transaction on a room, the room's row locked (see `room_access_for_update`) and
    /// `action` allowed to `user_id`.
    pub(super) async fn begin_on(
        &self,
        room_id: Uuid,
        user_id: Uuid,
        action: Action,
    ) -> AppResult<(DatabaseTransaction, RoomAccess)> {
        let txn = begin_write(&self.writer).await?;
        let access = room_access_for_update(&txn, room_id, user_id).await?;
        action.check(&access)?;
        Ok((txn, access))
    }

    /// Stages `events` in the transaction, commits it, and announces them, to the end
    /// whatever becomes of the request (`detached`): what commits is announced.
    pub(super) async fn commit(
        &self,
        txn: DatabaseTransaction,
        events: Vec<Event>,
    ) -> AppResult<()> {
        let broker = self.broker.clone();
        detached(async move {
            for event in &events {
                broker.stage(&txn, event).await?;
            }
            txn.commit().await?;
            for event in events {
                broker.committed(event);
            }
            Ok(())
        })
        .await
    }
}

/// `%`, `_` and `\` taken literally in a LIKE pattern (escaped with `\`).
pub(super) fn escape_like(s: &str) -> String {
    let mut escaped = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Makes `user_id` a member of `room` (as read in `txn`, its row locked), unless they are one:
/// the event to announce if they were not. A new member has read what came before them.
pub(super) async fn add_member(
    txn: &impl ConnectionTrait,
    room: &room::Model,
    user_id: Uuid,
    role: RoomRole,
    by: Option<Uuid>,
) -> AppResult<Option<Event>> {
    let room_id = room.id;
    let member = membership::ActiveModel {
        room_id: Set(room_id),
        user_id: Set(user_id),
        joined_at: Set(now()),
        role: Set(role),
        last_read_seq: Set(room.last_seq),
    };
    let added = membership::Entity::insert(member)
        .on_conflict_do_nothing()
        .exec_without_returning(txn)
        .await?;
    if !matches!(added, TryInsertResult::Inserted(1..)) {
        return Ok(None);
    }
    Ok(Some(
        Change::joined(room_id, user_id, role, by)
            .record(txn)
            .await?,
    ))
}

/// Ends a membership, handing the room over if it was its OWNER's: the events to announce,
/// none if there was no such membership.
pub(super) async fn end_membership(
    txn: &DatabaseTransaction,
    room_id: Uuid,
    user_id: Uuid,
    reason: LeaveReason,
    by: Option<Uuid>,
) -> AppResult<Vec<Event>> {
    let removed = membership::Entity::delete_many()
        .filter(membership::Column::RoomId.eq(room_id))
        .filter(membership::Column::UserId.eq(user_id))
        .exec(txn)
        .await?
        .rows_affected;
    if removed == 0 {
        return Ok(Vec::new());
    }
    let mut events = vec![
        Change::left(room_id, user_id, reason, by)
            .record(txn)
            .await?,
    ];
    events.extend(hand_over(txn, &[room_id]).await?);
    Ok(events)
}
