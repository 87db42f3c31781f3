//! Rooms, memberships and messages.
use sea_orm_migration::{prelude::*, schema::*};

use super::m20261122_000001_accounts::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rooms::Table)
                    .col(pk_uuid(Rooms::Id))
                    .col(string(Rooms::Name))
                    .col(boolean(Rooms::IsPrivate))
                    .col(uuid(Rooms::CreatedBy))
                    .col(timestamp_with_time_zone(Rooms::CreatedAt))
                    // The seq of the room's latest message. Sending increments it first thing
                    // in its transaction, which takes the room's write lock: seqs are assigned
                    // one at a time, in commit order, with no gaps.
                    .col(big_integer(Rooms::LastSeq).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_rooms_created_by")
                            .from(Rooms::Table, Rooms::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // For the directory of public rooms.
        manager
            .create_index(
                Index::create()
                    .name("ix_rooms_public")
                    .table(Rooms::Table)
                    .col(Rooms::IsPrivate)
                    .col(Rooms::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(uuid(Memberships::RoomId))
                    .col(uuid(Memberships::UserId))
                    .col(timestamp_with_time_zone(Memberships::JoinedAt))
                    .primary_key(
                        Index::create()
                            .col(Memberships::RoomId)
                            .col(Memberships::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_memberships_room")
                            .from(Memberships::Table, Memberships::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_memberships_user")
                            .from(Memberships::Table, Memberships::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "My rooms", in room order.
        manager
            .create_index(
                Index::create()
                    .name("ix_memberships_user")
                    .table(Memberships::Table)
                    .col(Memberships::UserId)
                    .col(Memberships::RoomId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(pk_uuid(Messages::Id))
                    .col(uuid(Messages::RoomId))
                    .col(big_integer(Messages::Seq))
                    .col(uuid(Messages::AuthorId))
                    .col(text(Messages::Body))
                    .col(string_null(Messages::ClientMsgId))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone_null(Messages::EditedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_room")
                            .from(Messages::Table, Messages::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_author")
                            .from(Messages::Table, Messages::AuthorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // History pages, replay and catch-up all read a seq range of one room.
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_room_seq")
                    .table(Messages::Table)
                    .col(Messages::RoomId)
                    .col(Messages::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Idempotent sends: one message per (author, clientMsgId). NULLs never collide.
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_author_client_msg_id")
                    .table(Messages::Table)
                    .col(Messages::AuthorId)
                    .col(Messages::ClientMsgId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Messages::Table.into_iden(),
            Memberships::Table.into_iden(),
            Rooms::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub enum Rooms {
    Table,
    Id,
    Name,
    IsPrivate,
    CreatedBy,
    CreatedAt,
    LastSeq,
}

#[derive(DeriveIden)]
pub enum Memberships {
    Table,
    RoomId,
    UserId,
    JoinedAt,
}

#[derive(DeriveIden)]
pub enum Messages {
    Table,
    Id,
    RoomId,
    Seq,
    AuthorId,
    Body,
    ClientMsgId,
    CreatedAt,
    EditedAt,
}
