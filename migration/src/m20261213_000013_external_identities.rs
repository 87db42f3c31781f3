//! Users of an identity provider (`JWT_JWKS_URL`): which local user each of its subjects is,
//! and from when that subject's tokens count again after their session was revoked.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_accounts::{Sessions, Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ExternalIdentities::Table)
                    .col(string_len(ExternalIdentities::Issuer, 255))
                    .col(string_len(ExternalIdentities::Subject, 255))
                    .col(uuid_uniq(ExternalIdentities::UserId))
                    .col(uuid_null(ExternalIdentities::SessionId))
                    .col(timestamp_with_time_zone_null(ExternalIdentities::NotBefore))
                    .col(timestamp_with_time_zone(ExternalIdentities::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ExternalIdentities::Issuer)
                            .col(ExternalIdentities::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_external_identities_user")
                            .from(ExternalIdentities::Table, ExternalIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_external_identities_session")
                            .from(ExternalIdentities::Table, ExternalIdentities::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // A revocation finds the identity of each session it ends.
        manager
            .create_index(
                Index::create()
                    .name("ix_external_identities_session")
                    .table(ExternalIdentities::Table)
                    .col(ExternalIdentities::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ExternalIdentities::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum ExternalIdentities {
    Table,
    /// The provider's `iss`.
    Issuer,
    /// Its `sub`: the user, as the provider names them.
    Subject,
    UserId,
    /// The session its tokens act in; a new one once that is revoked.
    SessionId,
    /// Tokens issued (`iat`) before this are refused: set when its session is revoked.
    NotBefore,
    CreatedAt,
}
