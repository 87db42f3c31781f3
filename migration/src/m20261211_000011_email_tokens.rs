//! Proving an address and resetting a password by mail: when each user's address was
//! verified, and the single-use tokens that mails carry, stored as hashes (a copy of the
//! database does not let anyone reset a password).
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_accounts::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Verified::EmailVerifiedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmailTokens::Table)
                    .col(string_len(EmailTokens::TokenHash, 64).primary_key())
                    .col(uuid(EmailTokens::UserId))
                    .col(string_len(EmailTokens::Purpose, 16))
                    .col(string_len(EmailTokens::Email, 254))
                    .col(timestamp_with_time_zone(EmailTokens::CreatedAt))
                    .col(timestamp_with_time_zone(EmailTokens::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_email_tokens_user")
                            .from(EmailTokens::Table, EmailTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A user's tokens go together (a reset ends the others); the purge finds expired ones.
        for (name, column) in [
            ("ix_email_tokens_user", EmailTokens::UserId),
            ("ix_email_tokens_expires", EmailTokens::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(EmailTokens::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EmailTokens::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Verified::EmailVerifiedAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Verified {
    /// `users.email_verified_at`: when the user proved they read mail at `email`.
    EmailVerifiedAt,
}

#[derive(DeriveIden)]
enum EmailTokens {
    Table,
    /// SHA-256 of the token, hex: the token itself is only ever in the mail.
    TokenHash,
    UserId,
    /// `verify` (the user's address), `change` (a new address) or `reset` (the password).
    Purpose,
    /// The address the token was mailed to: for `verify`, the one it proves (a new address
    /// becomes the user's only then).
    Email,
    CreatedAt,
    ExpiresAt,
}
