//! The test harness: a real server on a random port (`app`), over its own fresh database (a
//! SQLite file, or a Postgres database created for the test: `db`), spoken to over real HTTP
//! (`gql`) and real WebSockets (`ws`); `chat` sets up rooms and messages.
mod app;
mod chat;
mod db;
mod gql;
mod mailbox;
mod nats;
mod proxy;
mod ws;

pub use app::*;
pub use db::*;
pub use gql::*;
pub use mailbox::*;
pub use nats::*;
pub use proxy::*;
pub use ws::*;

use std::{
    net::SocketAddr,
    sync::{Arc, Once},
    time::Duration,
};

use chat_server::{
    config::{Config, RateLimits, SigningConfig},
    startup::Application,
};
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const SECRET: &str = "test-secret-test-secret-test-secret!";
pub const PASSWORD: &str = "correct horse battery";

/// Generates, for each test body, a `sqlite` test and a `postgres` test. The Postgres one runs
/// when `TEST_DATABASE_URL` names a server (`.ci/run` sets it) and says it skipped otherwise.
#[macro_export]
macro_rules! db_tests {
    ($(async fn $name:ident($db:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $db = $crate::helpers::Backend::Sqlite;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($db) = $crate::helpers::Backend::postgres() else {
                    eprintln!("skipped: TEST_DATABASE_URL is not set");
                    return;
                };
                $body
            }
        }
    )*};
}

/// Tests of what only Postgres does (several instances on one database, LISTEN/NOTIFY). They
/// run when `TEST_DATABASE_URL` is set and say they skipped otherwise.
#[macro_export]
macro_rules! postgres_tests {
    ($(async fn $name:ident($db:ident) $body:block)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some($db) = $crate::helpers::Backend::postgres() else {
                eprintln!("skipped: TEST_DATABASE_URL is not set");
                return;
            };
            $body
        }
    )*};
}
