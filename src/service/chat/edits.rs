//! Changing what was said: editing a message (its author only) and deleting it (its author,
//! or the room's OWNER and ADMINs). A deleted message stays as a tombstone: its seq and its
//! place in the history, not its body or its reactions. Each change is an event of the room's
//! stream, carrying the message as it is after it.
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    Chat, ChatMessage,
    access::{Action, RoomAccess},
    events::Change,
    mentions::record_mentions,
};
use crate::{
    domain::MessageBody,
    entity::{message, now, reaction, room_event::EventKind},
    error::{AppError, AppResult},
    service::auth::Viewer,
};

impl Chat {
    /// Replaces the body of one of the viewer's messages, and sets its `edited_at`.
    pub async fn edit_message(
        &self,
        viewer: &Viewer,
        message_id: Uuid,
        body: MessageBody,
    ) -> AppResult<ChatMessage> {
        self.send_per_user.check(&viewer.user_id)?;
        let (txn, _, message) = self.begin_on_message(viewer, message_id).await?;
        if message.author_id != viewer.user_id {
            return Err(AppError::Forbidden("only its author may edit a message"));
        }
        still_there(&message)?;
        let mut edited: message::ActiveModel = message.into();
        edited.body = Set(body.into_inner());
        edited.edited_at = Set(Some(now()));
        let edited = edited.update(&txn).await?;
        record_mentions(&txn, &edited).await?;
        let edited = self.with_author(edited).await?;
        let change = Change::about_message(
            &edited.message,
            EventKind::MessageEdited,
            viewer.user_id,
            None,
        );
        let event = change.record_about(&txn, edited.clone()).await?;
        self.commit(txn, vec![event]).await?;
        Ok(edited)
    }

    /// Deletes a message, leaving its tombstone. False if it was deleted already.
    pub async fn delete_message(&self, viewer: &Viewer, message_id: Uuid) -> AppResult<bool> {
        let (txn, access, message) = self.begin_on_message(viewer, message_id).await?;
        if message.deleted_at.is_some() {
            return Ok(false);
        }
        if message.author_id != viewer.user_id {
            Action::Moderate.check(&access)?;
        }
        reaction::Entity::delete_many()
            .filter(reaction::Column::MessageId.eq(message_id))
            .exec(&txn)
            .await?;
        let mut deleted: message::ActiveModel = message.into();
        deleted.body = Set(String::new());
        deleted.deleted_at = Set(Some(now()));
        let deleted = deleted.update(&txn).await?;
        record_mentions(&txn, &deleted).await?;
        let deleted = self.with_author(deleted).await?;
        let change = Change::about_message(
            &deleted.message,
            EventKind::MessageDeleted,
            viewer.user_id,
            None,
        );
        let event = change.record_about(&txn, deleted).await?;
        self.commit(txn, vec![event]).await?;
        Ok(true)
    }

    /// A write transaction on a message's room (its row locked, the viewer a member of it),
    /// and the message as it is in that transaction.
    pub(super) async fn begin_on_message(
        &self,
        viewer: &Viewer,
        message_id: Uuid,
    ) -> AppResult<(DatabaseTransaction, RoomAccess, message::Model)> {
        let room_id: Uuid = message::Entity::find_by_id(message_id)
            .select_only()
            .column(message::Column::RoomId)
            .into_tuple()
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound("message"))?;
        let (txn, access) = self.begin_on(room_id, viewer.user_id, Action::Take).await?;
        let message = message::Entity::find_by_id(message_id)
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("message"))?;
        Ok((txn, access, message))
    }

    pub(super) async fn with_author(&self, message: message::Model) -> AppResult<ChatMessage> {
        let author = self
            .users
            .get(message.author_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("message {} has no author", message.id))?;
        Ok(ChatMessage { message, author })
    }
}

/// Refuses to change a deleted message.
pub(super) fn still_there(message: &message::Model) -> AppResult<()> {
    match message.deleted_at {
        None => Ok(()),
        Some(_) => Err(AppError::bad_input("messageId", "the message was deleted")),
    }
}
