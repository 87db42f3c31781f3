//! The figures a list of rooms shows beside each room (the viewer's role and marker, unread
//! messages and mentions, members, members online), each for many rooms in one query: a page
//! of 100 rooms costs what a page of one does (through the schema's loaders).
//!
//! Unread counts stop at `MAX_UNREAD` per room, so that a room with a million unread messages
//! costs a thousand rows, not a million: each room's count is a subquery with its own limit,
//! and the rooms' subqueries are one statement (`UNION ALL`), on both databases.
use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    sea_query::{Alias, Expr, Query, SelectStatement, UnionType},
};
use uuid::Uuid;

use super::Chat;
use crate::{
    entity::{self, membership, message, message_mention, presence},
    error::AppResult,
};

/// Unread messages are counted up to this many: past it, a client shows "999+", and the
/// count stops costing more.
pub const MAX_UNREAD: u64 = 1000;

impl Chat {
    /// `user_id`'s memberships of `rooms`, by room.
    pub async fn memberships_of(
        &self,
        user_id: Uuid,
        rooms: &[Uuid],
    ) -> AppResult<HashMap<Uuid, membership::Model>> {
        let found = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .filter(membership::Column::RoomId.is_in(rooms.iter().copied()))
            .all(&self.db)
            .await?;
        Ok(found.into_iter().map(|m| (m.room_id, m)).collect())
    }

    /// For each (room, marker): messages of others after the marker that are still there.
    pub async fn unread_counts(
        &self,
        user_id: Uuid,
        markers: &[(Uuid, i64)],
    ) -> AppResult<HashMap<Uuid, u64>> {
        let each = markers.iter().map(|&(room_id, after)| {
            let unread = Query::select()
                .expr(Expr::val(1))
                .from(message::Entity)
                .and_where(message::Column::RoomId.eq(room_id))
                .and_where(message::Column::Seq.gt(after))
                .and_where(message::Column::AuthorId.ne(user_id))
                .and_where(message::Column::DeletedAt.is_null())
                .limit(MAX_UNREAD)
                .to_owned();
            (room_id, unread)
        });
        count_each(&self.db, each).await
    }

    /// For each (room, marker): messages after the marker that mention `user_id` and are
    /// still there.
    pub async fn mention_counts(
        &self,
        user_id: Uuid,
        markers: &[(Uuid, i64)],
    ) -> AppResult<HashMap<Uuid, u64>> {
        let (mention, msg) = (message_mention::Entity, message::Entity);
        let each = markers.iter().map(|&(room_id, after)| {
            let mentioned = Query::select()
                .expr(Expr::val(1))
                .from(mention)
                .inner_join(
                    msg,
                    Expr::col((msg, message::Column::Id))
                        .equals((mention, message_mention::Column::MessageId)),
                )
                .and_where(Expr::col((mention, message_mention::Column::UserId)).eq(user_id))
                .and_where(Expr::col((msg, message::Column::RoomId)).eq(room_id))
                .and_where(Expr::col((msg, message::Column::Seq)).gt(after))
                .and_where(Expr::col((msg, message::Column::DeletedAt)).is_null())
                .limit(MAX_UNREAD)
                .to_owned();
            (room_id, mentioned)
        });
        count_each(&self.db, each).await
    }

    /// Members of each of `rooms`.
    pub async fn member_counts(&self, rooms: &[Uuid]) -> AppResult<HashMap<Uuid, u64>> {
        let counts: Vec<(Uuid, i64)> = membership::Entity::find()
            .select_only()
            .column(membership::Column::RoomId)
            .column_as(membership::Column::UserId.count(), "n")
            .filter(membership::Column::RoomId.is_in(rooms.iter().copied()))
            .group_by(membership::Column::RoomId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(counts
            .into_iter()
            .map(|(room, n)| (room, to_u64(n)))
            .collect())
    }

    /// Members of each of `rooms` with a socket open.
    pub async fn online_counts(&self, rooms: &[Uuid]) -> AppResult<HashMap<Uuid, u64>> {
        let (m, p) = (membership::Entity, presence::Entity);
        let query = Query::select()
            .column((m, membership::Column::RoomId))
            .expr(Expr::col((p, presence::Column::UserId)).count_distinct())
            .from(p)
            .inner_join(
                m,
                Expr::col((m, membership::Column::UserId)).equals((p, presence::Column::UserId)),
            )
            .and_where(Expr::col((m, membership::Column::RoomId)).is_in(rooms.iter().copied()))
            .and_where(Expr::col((p, presence::Column::ExpiresAt)).gt(entity::now()))
            .group_by_col((m, membership::Column::RoomId))
            .to_owned();
        let mut counts = HashMap::new();
        for row in self.db.query_all(&query).await? {
            let room: Uuid = row.try_get_by_index(0)?;
            counts.insert(room, to_u64(row.try_get_by_index(1)?));
        }
        Ok(counts)
    }
}

/// How many rows each query returns (each carries its own limit), by key, in one statement.
async fn count_each(
    db: &impl ConnectionTrait,
    queries: impl Iterator<Item = (Uuid, SelectStatement)>,
) -> AppResult<HashMap<Uuid, u64>> {
    let mut keys = Vec::new();
    let mut union: Option<SelectStatement> = None;
    for (key, query) in queries {
        // The key goes in as its position: a bare parameter in a select list needs no type.
        let counted = Query::select()
            .expr_as(Expr::val(keys.len() as i64), Alias::new("k"))
            .expr_as(Expr::val(1).count(), Alias::new("n"))
            .from_subquery(query, Alias::new(format!("c{}", keys.len())))
            .to_owned();
        keys.push(key);
        match &mut union {
            None => union = Some(counted),
            Some(union) => _ = union.union(UnionType::All, counted),
        }
    }
    let Some(union) = union else {
        return Ok(HashMap::new());
    };
    let mut counts = HashMap::new();
    for row in db.query_all(&union).await? {
        let (k, n): (i64, i64) = (row.try_get("", "k")?, row.try_get("", "n")?);
        if let Some(key) = usize::try_from(k).ok().and_then(|k| keys.get(k)) {
            counts.insert(*key, to_u64(n));
        }
    }
    Ok(counts)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
