//! Two-factor login (TOTP, RFC 6238): each user's secret, sealed under a server key (a copy of
//! the database does not give anyone the codes), when it was turned on, and the last time step
//! a code was accepted for (a code works once); and ten single-use recovery codes per user,
//! stored as hashes.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_accounts::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string_len_null(SecondFactor::TotpSecret, 256),
            timestamp_with_time_zone_null(SecondFactor::TotpEnabledAt),
            big_integer_null(SecondFactor::TotpLastStep),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(string_len(RecoveryCodes::CodeHash, 64).primary_key())
                    .col(uuid(RecoveryCodes::UserId))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_recovery_codes_user")
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_recovery_codes_user")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        for column in [
            SecondFactor::TotpLastStep,
            SecondFactor::TotpEnabledAt,
            SecondFactor::TotpSecret,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

// The variants are the columns' names, which share their prefix.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum SecondFactor {
    /// `users.totp_secret`: sealed; set by `enableTotp`, in use once `confirmTotp` succeeds.
    TotpSecret,
    /// `users.totp_enabled_at`: when `confirmTotp` turned the second factor on.
    TotpEnabledAt,
    /// `users.totp_last_step`: the time step of the last code accepted; only later ones are.
    TotpLastStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    /// SHA-256 of the code (80 random bits), hex.
    CodeHash,
    UserId,
    CreatedAt,
}
