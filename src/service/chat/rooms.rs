//! Creating, listing, joining and leaving rooms.
use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, JoinType, QueryFilter,
    QuerySelect, RelationTrait,
};
use uuid::Uuid;

use super::Chat;
use crate::{
    broker::Event,
    domain::RoomName,
    entity::{membership, now, room},
    error::AppResult,
    service::{Window, after_id, auth::Viewer, begin_write, detached},
};

impl Chat {
    /// Creates a room; its creator is its first member.
    pub async fn create_room(
        &self,
        viewer: &Viewer,
        name: RoomName,
        is_private: bool,
    ) -> AppResult<room::Model> {
        let txn = begin_write(&self.writer).await?;
        let created = room::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name.into_inner()),
            is_private: Set(is_private),
            created_by: Set(viewer.user_id),
            created_at: Set(now()),
            last_seq: Set(0),
        }
        .insert(&txn)
        .await?;
        add_member(&txn, created.id, viewer.user_id).await?;
        txn.commit().await?;
        Ok(created)
    }

    /// Joins a public room (joining twice is fine). Private rooms are invite-only.
    pub async fn join_room(&self, viewer: &Viewer, room_id: Uuid) -> AppResult<room::Model> {
        let access = self.room_access(room_id, viewer.user_id).await?;
        if access.is_member {
            return Ok(access.room);
        }
        let room = access.readable()?;
        let inserted = membership::Entity::insert(membership::ActiveModel {
            room_id: Set(room_id),
            user_id: Set(viewer.user_id),
            joined_at: Set(now()),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(room),
            Err(err) => Err(err.into()),
        }
    }

    /// Leaves a room; the viewer's subscriptions to it end, on every instance. False if not a
    /// member.
    pub async fn leave_room(self: &Arc<Self>, viewer: &Viewer, room_id: Uuid) -> AppResult<bool> {
        if !self.room_access(room_id, viewer.user_id).await?.is_member {
            return Ok(false);
        }
        let (this, user_id) = (self.clone(), viewer.user_id);
        detached(async move { this.end_membership(room_id, user_id).await }).await
    }

    async fn end_membership(&self, room_id: Uuid, user_id: Uuid) -> AppResult<bool> {
        let txn = begin_write(&self.writer).await?;
        let left = membership::Entity::delete_many()
            .filter(membership::Column::RoomId.eq(room_id))
            .filter(membership::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !left {
            return Ok(false);
        }
        let event = Event::Left { room_id, user_id };
        self.broker.stage(&txn, &event).await?;
        txn.commit().await?;
        self.broker.committed(event);
        Ok(true)
    }

    /// Rooms the viewer is a member of, in creation order, after `after`.
    pub async fn my_rooms(
        &self,
        viewer: &Viewer,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Window<room::Model>> {
        let query = room::Entity::find()
            .join(JoinType::InnerJoin, room::Relation::Membership.def())
            .filter(membership::Column::UserId.eq(viewer.user_id));
        after_id(&self.db, query, room::Column::Id, after, limit).await
    }

    /// Public rooms, for finding one to join, in creation order.
    pub async fn public_rooms(
        &self,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Window<room::Model>> {
        let query = room::Entity::find().filter(room::Column::IsPrivate.eq(false));
        after_id(&self.db, query, room::Column::Id, after, limit).await
    }

    /// A room the viewer may read: NOT_FOUND if there is none, FORBIDDEN if private and the
    /// viewer is not a member.
    pub async fn readable_room(&self, viewer: &Viewer, room_id: Uuid) -> AppResult<room::Model> {
        self.room_access(room_id, viewer.user_id).await?.readable()
    }
}

async fn add_member(
    txn: &sea_orm::DatabaseTransaction,
    room_id: Uuid,
    user_id: Uuid,
) -> AppResult<()> {
    membership::Entity::insert(membership::ActiveModel {
        room_id: Set(room_id),
        user_id: Set(user_id),
        joined_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
