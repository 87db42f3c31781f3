//! What a user sees of their sessions (`sessions`): where each began (the client's address
//! and user agent at login) and when it was last used (its last refresh).
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_accounts::Sessions;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            timestamp_with_time_zone_null(Devices::LastUsedAt),
            string_len_null(Devices::UserAgent, 256),
            string_len_null(Devices::ClientIp, 45),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Devices::ClientIp, Devices::UserAgent, Devices::LastUsedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Devices {
    /// `sessions.last_used_at`: its last refresh (null until the first).
    LastUsedAt,
    /// `sessions.user_agent`: the `User-Agent` of the login, cut to 256 characters.
    UserAgent,
    /// `sessions.client_ip`: the client's address at login.
    ClientIp,
}
