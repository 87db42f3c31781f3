//! Rooms people share: a role for every member (the creator, or the longest-standing member
//! where the creator has left, is the OWNER), a topic, direct rooms (one per pair of users,
//! which `direct_key` keeps unique), and bans.
use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261122_000001_accounts::Users,
    m20261122_000002_chat::{Memberships, Rooms},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Memberships::Table)
                    .add_column(string_len(MembershipRole::Role, 16).default("MEMBER"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE memberships SET role = 'OWNER' WHERE EXISTS (SELECT 1 FROM rooms \
             WHERE rooms.id = memberships.room_id AND rooms.created_by = memberships.user_id)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE memberships SET role = 'OWNER' \
             WHERE NOT EXISTS (SELECT 1 FROM memberships o \
                 WHERE o.room_id = memberships.room_id AND o.role = 'OWNER') \
             AND user_id = (SELECT m.user_id FROM memberships m \
                 WHERE m.room_id = memberships.room_id ORDER BY m.joined_at, m.user_id LIMIT 1)",
        )
        .await?;
        for column in [
            text_null(RoomSettings::Topic),
            boolean(RoomSettings::IsDirect).default(false).to_owned(),
            // "<smaller user id>:<larger user id>" for a direct room, NULL for the others.
            string_len_null(RoomSettings::DirectKey, 80),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Rooms::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // One direct room per pair, however many ask for it at once. NULLs never collide.
        manager
            .create_index(
                Index::create()
                    .name("uq_rooms_direct_key")
                    .table(Rooms::Table)
                    .col(RoomSettings::DirectKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // `searchUsers`: a prefix of the lowercased name. Postgres compares text by its
        // collation, where LIKE 'ab%' cannot use a plain index; this one compares bytes.
        // (SQLite's LIKE ... ESCAPE uses no index: a SQLite server has few users.)
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            db.execute_unprepared(
                "CREATE INDEX ix_users_username_prefix ON users (lower(username) text_pattern_ops)",
            )
            .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RoomBans::Table)
                    .col(uuid(RoomBans::RoomId))
                    .col(uuid(RoomBans::UserId))
                    .col(uuid_null(RoomBans::BannedBy))
                    .col(text_null(RoomBans::Reason))
                    .col(timestamp_with_time_zone(RoomBans::BannedAt))
                    .primary_key(Index::create().col(RoomBans::RoomId).col(RoomBans::UserId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_bans_room")
                            .from(RoomBans::Table, RoomBans::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_bans_user")
                            .from(RoomBans::Table, RoomBans::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_bans_banned_by")
                            .from(RoomBans::Table, RoomBans::BannedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomBans::Table).to_owned())
            .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP INDEX ix_users_username_prefix")
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("uq_rooms_direct_key")
                    .table(Rooms::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            RoomSettings::DirectKey,
            RoomSettings::IsDirect,
            RoomSettings::Topic,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Rooms::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Memberships::Table)
                    .drop_column(MembershipRole::Role)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum MembershipRole {
    Role,
}

#[derive(DeriveIden)]
enum RoomSettings {
    Topic,
    IsDirect,
    DirectKey,
}

#[derive(DeriveIden)]
enum RoomBans {
    Table,
    RoomId,
    UserId,
    BannedBy,
    Reason,
    BannedAt,
}
