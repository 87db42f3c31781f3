//! One numbered stream of everything that happens in a room. Messages and the other events
//! (members joining, leaving, changing role; the room's settings changing) share one counter,
//! `rooms.last_event_seq`: a message's place in it is `messages.event_seq`, and the other
//! events are rows of `room_events`. Existing messages keep their order: their event seq is
//! their seq.
use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261122_000001_accounts::Users,
    m20261122_000002_chat::{Messages, Rooms},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(big_integer(EventSeq::EventSeq).default(0))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("UPDATE messages SET event_seq = seq")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_room_event_seq")
                    .table(Messages::Table)
                    .col(Messages::RoomId)
                    .col(EventSeq::EventSeq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .add_column(big_integer(EventSeq::LastEventSeq).default(0))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("UPDATE rooms SET last_event_seq = last_seq")
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoomEvents::Table)
                    .col(uuid(RoomEvents::RoomId))
                    .col(big_integer(RoomEvents::Seq))
                    .col(string_len(RoomEvents::Kind, 16))
                    .col(uuid(RoomEvents::UserId))
                    .col(uuid_null(RoomEvents::ActorId))
                    .col(string_len_null(RoomEvents::Role, 16))
                    .col(string_len_null(RoomEvents::Reason, 16))
                    .col(text_null(RoomEvents::Name))
                    .col(text_null(RoomEvents::Topic))
                    .col(timestamp_with_time_zone(RoomEvents::CreatedAt))
                    .primary_key(Index::create().col(RoomEvents::RoomId).col(RoomEvents::Seq))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_events_room")
                            .from(RoomEvents::Table, RoomEvents::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_events_user")
                            .from(RoomEvents::Table, RoomEvents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_events_actor")
                            .from(RoomEvents::Table, RoomEvents::ActorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomEvents::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .drop_column(EventSeq::LastEventSeq)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_messages_room_event_seq")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(EventSeq::EventSeq)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum EventSeq {
    /// `messages.event_seq`: the message's place in its room's event stream.
    EventSeq,
    /// `rooms.last_event_seq`: the newest event's.
    LastEventSeq,
}

#[derive(DeriveIden)]
pub enum RoomEvents {
    Table,
    RoomId,
    Seq,
    Kind,
    UserId,
    ActorId,
    Role,
    Reason,
    Name,
    Topic,
    CreatedAt,
}
