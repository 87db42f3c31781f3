//! Who is online: a row per user and instance with a socket of that user, kept alive by the
//! instance's heartbeat (an instance that dies leaves rows that expire, and any other instance
//! sweeps them); and when each user was last seen.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_accounts::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Presence::Table)
                    .col(uuid(Presence::UserId))
                    .col(uuid(Presence::InstanceId))
                    .col(timestamp_with_time_zone(Presence::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(Presence::UserId)
                            .col(Presence::InstanceId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_presence_user")
                            .from(Presence::Table, Presence::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The heartbeat renews an instance's rows; the sweep looks for expired ones.
        for (name, column) in [
            ("ix_presence_instance", Presence::InstanceId),
            ("ix_presence_expires", Presence::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Presence::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(LastSeen::Table)
                    .col(uuid(LastSeen::UserId).primary_key())
                    .col(timestamp_with_time_zone(LastSeen::SeenAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_last_seen_user")
                            .from(LastSeen::Table, LastSeen::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LastSeen::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Presence::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Presence {
    Table,
    UserId,
    /// The instance holding the user's sockets (random per process).
    InstanceId,
    /// Until when the row holds without a heartbeat of its instance.
    ExpiresAt,
}

#[derive(DeriveIden)]
enum LastSeen {
    #[sea_orm(iden = "user_last_seen")]
    Table,
    UserId,
    /// When the user came online or went offline, whichever was last.
    SeenAt,
}
