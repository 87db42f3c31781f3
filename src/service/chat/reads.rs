//! How far each member has read: `markRead` moves a member's marker forward, never back, and
//! unread counts follow from it. A marker that moves reaches the member's other devices
//! through `myEvents`.
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, Query},
};
use uuid::Uuid;

use super::{
    Chat,
    access::{Action, room_access},
};
use crate::{
    broker::Event,
    entity::{membership, room, user},
    error::{AppError, AppResult},
    service::{auth::Viewer, begin_write},
};

impl Chat {
    /// Marks the room read up to message `seq` for the viewer. A marker never moves back:
    /// marking an older message read changes nothing.
    pub async fn mark_read(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        seq: i64,
    ) -> AppResult<room::Model> {
        if seq < 0 {
            return Err(AppError::bad_input("seq", "seq must not be negative"));
        }
        let access = room_access(&self.db, room_id, viewer.user_id).await?;
        Action::Take.check(&access)?;
        if seq > access.room.last_seq {
            return Err(AppError::bad_input(
                "seq",
                "seq is past the newest message of this room",
            ));
        }
        let txn = begin_write(&self.writer).await?;
        let moved = membership::Entity::update_many()
            .col_expr(membership::Column::LastReadSeq, Expr::value(seq))
            .filter(membership::Column::RoomId.eq(room_id))
            .filter(membership::Column::UserId.eq(viewer.user_id))
            .filter(membership::Column::LastReadSeq.lt(seq))
            .exec(&txn)
            .await?
            .rows_affected;
        if moved == 1 {
            let user_id = viewer.user_id;
            let event = Event::ReadUpTo {
                user_id,
                room_id,
                seq,
            };
            self.commit(txn, vec![event]).await?;
        }
        Ok(access.room)
    }

    /// Who has read the room up to message `seq` (members whose marker is at or past it, in
    /// username order), in rooms of at most `READ_RECEIPTS_MAX_MEMBERS` members; `None` in
    /// larger ones. Members only.
    pub async fn read_by(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        seq: i64,
    ) -> AppResult<Option<Vec<user::Model>>> {
        Action::Take.check(&room_access(&self.db, room_id, viewer.user_id).await?)?;
        let members = self.member_counts(&[room_id]).await?;
        if members.get(&room_id).copied().unwrap_or(0) > self.receipts_max_members {
            return Ok(None);
        }
        let read = Query::select()
            .column(membership::Column::UserId)
            .from(membership::Entity)
            .and_where(membership::Column::RoomId.eq(room_id))
            .and_where(membership::Column::LastReadSeq.gte(seq))
            .to_owned();
        let readers = user::Entity::find()
            .filter(user::Column::Id.in_subquery(read))
            .order_by_asc(user::Column::Username)
            .limit(self.receipts_max_members)
            .all(&self.db)
            .await?;
        Ok(Some(readers))
    }
}
