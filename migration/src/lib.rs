//! Schema migrations, run by `chat-server migrate` and at every start-up.
pub use sea_orm_migration::prelude::*;

mod m20261122_000001_accounts;
mod m20261122_000002_chat;
mod m20261202_000003_account_deletion;
mod m20261204_000004_session_housekeeping;
mod m20261205_000005_room_membership;
mod m20261206_000006_room_events;
mod m20261207_000007_conversation;
mod m20261208_000008_presence;
mod m20261209_000009_search;
mod m20261210_000010_session_devices;
mod m20261211_000011_email_tokens;
mod m20261212_000012_totp;
mod m20261213_000013_external_identities;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_accounts::Migration),
            Box::new(m20261122_000002_chat::Migration),
            Box::new(m20261202_000003_account_deletion::Migration),
            Box::new(m20261204_000004_session_housekeeping::Migration),
            Box::new(m20261205_000005_room_membership::Migration),
            Box::new(m20261206_000006_room_events::Migration),
            Box::new(m20261207_000007_conversation::Migration),
            Box::new(m20261208_000008_presence::Migration),
            Box::new(m20261209_000009_search::Migration),
            Box::new(m20261210_000010_session_devices::Migration),
            Box::new(m20261211_000011_email_tokens::Migration),
            Box::new(m20261212_000012_totp::Migration),
            Box::new(m20261213_000013_external_identities::Migration),
        ]
    }
}
