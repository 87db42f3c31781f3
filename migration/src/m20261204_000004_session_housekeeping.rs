//! Indexes for what runs in the background: the revocations every instance re-reads at
//! start-up and whenever its listener reconnects (`revoked_at` after a time), and the purge of
//! expired refresh tokens and of sessions long revoked.
use sea_orm_migration::prelude::*;

use crate::m20261122_000001_accounts::{RefreshTokens, Sessions};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_sessions_revoked_at")
                    .table(Sessions::Table)
                    .col(Sessions::RevokedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_refresh_tokens_expires_at")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("ix_sessions_revoked_at", Sessions::Table.into_iden()),
            (
                "ix_refresh_tokens_expires_at",
                RefreshTokens::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
