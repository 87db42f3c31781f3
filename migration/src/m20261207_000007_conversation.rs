//! What a conversation needs of its messages: edits and deletions (a deleted message keeps its
//! row and seq as a tombstone), replies, and reactions; the events of a room's stream that
//! are about a message (which message, and for reactions which emoji); who a message mentions;
//! how far each member has read; and when each room last had a message, to list rooms by it.
use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261122_000001_accounts::Users,
    m20261122_000002_chat::{Memberships, Messages, Rooms},
    m20261206_000006_room_events::RoomEvents,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            timestamp_with_time_zone_null(Conversation::DeletedAt),
            uuid_null(Conversation::ReplyToId),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            uuid_null(Conversation::MessageId),
            string_len_null(Conversation::Emoji, 64),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RoomEvents::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Memberships::Table)
                    .add_column(big_integer(Conversation::LastReadSeq).default(0))
                    .to_owned(),
            )
            .await?;
        // What was sent before markers existed counts as read.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE memberships SET last_read_seq = \
                 (SELECT r.last_seq FROM rooms r WHERE r.id = memberships.room_id)",
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .add_column(timestamp_with_time_zone_null(Conversation::LastActivityAt))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE rooms SET last_activity_at = COALESCE((SELECT MAX(m.created_at) \
                 FROM messages m WHERE m.room_id = rooms.id), rooms.created_at)",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reactions::Table)
                    .col(uuid(Reactions::MessageId))
                    .col(uuid(Reactions::UserId))
                    .col(string_len(Reactions::Emoji, 64))
                    .col(timestamp_with_time_zone(Reactions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Reactions::MessageId)
                            .col(Reactions::UserId)
                            .col(Reactions::Emoji),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reactions_message")
                            .from(Reactions::Table, Reactions::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reactions_user")
                            .from(Reactions::Table, Reactions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Mentions::Table)
                    .col(uuid(Mentions::MessageId))
                    .col(uuid(Mentions::UserId))
                    .primary_key(
                        Index::create()
                            .col(Mentions::MessageId)
                            .col(Mentions::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mentions_message")
                            .from(Mentions::Table, Mentions::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mentions_user")
                            .from(Mentions::Table, Mentions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A user's mentions, for their unread mention counts.
        manager
            .create_index(
                Index::create()
                    .name("ix_mentions_user")
                    .table(Mentions::Table)
                    .col(Mentions::UserId)
                    .col(Mentions::MessageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Mentions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Reactions::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Memberships::Table)
                    .drop_column(Conversation::LastReadSeq)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .drop_column(Conversation::LastActivityAt)
                    .to_owned(),
            )
            .await?;
        for column in [Conversation::Emoji, Conversation::MessageId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RoomEvents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [Conversation::ReplyToId, Conversation::DeletedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Conversation {
    /// `messages.deleted_at`: set when the message was deleted (its body is gone).
    DeletedAt,
    /// `messages.reply_to_id`: the message of the same room this one answers.
    ReplyToId,
    /// `room_events.message_id`: the message an edit, deletion or reaction was about.
    MessageId,
    /// `room_events.emoji`: the reaction added or removed.
    Emoji,
    /// `memberships.last_read_seq`: the seq of the newest message the member has read.
    LastReadSeq,
    /// `rooms.last_activity_at`: when its newest message was sent (its creation, before).
    LastActivityAt,
}

#[derive(DeriveIden)]
enum Reactions {
    Table,
    MessageId,
    UserId,
    Emoji,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Mentions {
    #[sea_orm(iden = "message_mentions")]
    Table,
    MessageId,
    UserId,
}
