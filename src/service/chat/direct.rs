//! Direct rooms: the one room of a pair of users, created the first time either opens it.
//! Its `direct_key` (the two ids, smaller first) is unique, so two users opening it at once,
//! from either side, get the same room: the second insert finds the first and does nothing.
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{OnConflict, Query},
};
use uuid::Uuid;

use super::{Chat, rooms::add_member};
use crate::{
    entity::{
        membership::{self, RoomRole},
        now, room, user,
    },
    error::{AppError, AppResult},
    service::{auth::Viewer, begin_write},
};

impl Chat {
    /// The direct room of the viewer and `user_id`, created on first use.
    pub async fn open_direct_room(&self, viewer: &Viewer, user_id: Uuid) -> AppResult<room::Model> {
        if user_id == viewer.user_id {
            return Err(AppError::bad_input(
                "userId",
                "a direct room is with someone else",
            ));
        }
        let other = self
            .users
            .get(user_id)
            .await?
            .filter(|user| user.deleted_at.is_none())
            .ok_or(AppError::NotFound("user"))?;
        let me = self
            .users
            .get(viewer.user_id)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))?;
        let (first, second) = if me.id < other.id {
            (&me, &other)
        } else {
            (&other, &me)
        };
        let key = format!("{}:{}", first.id, second.id);
        let txn = begin_write(&self.writer).await?;
        let created_at = now();
        let created = room::Entity::insert(room::ActiveModel {
            id: Set(Uuid::now_v7()),
            // What a direct room is called when the other member is gone; while they are
            // here, each member sees the other's name (see `direct_name`).
            name: Set(format!("{}, {}", first.username, second.username)),
            is_private: Set(true),
            created_by: Set(viewer.user_id),
            created_at: Set(created_at),
            last_activity_at: Set(Some(created_at)),
            last_seq: Set(0),
            last_event_seq: Set(0),
            topic: Set(None),
            is_direct: Set(true),
            direct_key: Set(Some(key.clone())),
        })
        .on_conflict(
            OnConflict::column(room::Column::DirectKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        let find = || async {
            let found = room::Entity::find()
                .filter(room::Column::DirectKey.eq(&key))
                .one(&txn)
                .await?;
            AppResult::Ok(
                found.ok_or_else(|| anyhow::anyhow!("direct room missing after its insert"))?,
            )
        };
        let mut room: room::Model = find().await?;
        let mut events = Vec::new();
        if created == 1 {
            let by = Some(me.id);
            for user_id in [me.id, other.id] {
                let role = RoomRole::Member;
                events.extend(add_member(&txn, &room, user_id, role, by).await?);
            }
            // As the events left it.
            room = find().await?;
        }
        self.commit(txn, events).await?;
        Ok(room)
    }

    /// What `viewer` calls a direct room: the other member's name, while they are in it.
    pub async fn direct_name(&self, room: &room::Model, viewer: &Viewer) -> AppResult<String> {
        let others = Query::select()
            .column(membership::Column::UserId)
            .from(membership::Entity)
            .and_where(membership::Column::RoomId.eq(room.id))
            .and_where(membership::Column::UserId.ne(viewer.user_id))
            .to_owned();
        let other: Option<String> = user::Entity::find()
            .select_only()
            .column(user::Column::Username)
            .filter(user::Column::Id.in_subquery(others))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(other.unwrap_or_else(|| room.name.clone()))
    }
}
