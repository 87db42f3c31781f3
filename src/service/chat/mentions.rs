//! Mentions: the members a message names with `@username`, stored with the message (and again
//! when it is edited; a deleted message mentions nobody), so that a member's unread mentions
//! are counted by an index, and a page of messages reads its mentions in one query.
use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, Func, Query},
};
use uuid::Uuid;

use super::Chat;
use crate::{
    domain::mentioned_usernames,
    entity::{membership, message, message_mention, user},
    error::AppResult,
};

/// Records whom `message` mentions among the members of its room, replacing what it
/// mentioned before.
pub(super) async fn record_mentions(
    txn: &impl ConnectionTrait,
    message: &message::Model,
) -> AppResult<()> {
    message_mention::Entity::delete_many()
        .filter(message_mention::Column::MessageId.eq(message.id))
        .exec(txn)
        .await?;
    let names = mentioned_usernames(&message.body);
    if names.is_empty() || message.deleted_at.is_some() {
        return Ok(());
    }
    let in_room = Query::select()
        .column(membership::Column::UserId)
        .from(membership::Entity)
        .and_where(membership::Column::RoomId.eq(message.room_id))
        .to_owned();
    let members: Vec<Uuid> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Id.in_subquery(in_room))
        .filter(Expr::expr(Func::lower(Expr::col(user::Column::Username))).is_in(names))
        .into_tuple()
        .all(txn)
        .await?;
    if members.is_empty() {
        return Ok(());
    }
    message_mention::Entity::insert_many(members.into_iter().map(|user_id| {
        message_mention::ActiveModel {
            message_id: sea_orm::ActiveValue::Set(message.id),
            user_id: sea_orm::ActiveValue::Set(user_id),
        }
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

impl Chat {
    /// Whom each of `messages` mentions, in one query.
    pub async fn mentions_of(&self, messages: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<Uuid>>> {
        let rows = message_mention::Entity::find()
            .filter(message_mention::Column::MessageId.is_in(messages.iter().copied()))
            .all(&self.db)
            .await?;
        let mut mentions: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for row in rows {
            mentions
                .entry(row.message_id)
                .or_default()
                .push(row.user_id);
        }
        Ok(mentions)
    }
}
