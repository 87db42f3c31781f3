//! Connecting to SQLite or Postgres, and migrating at start-up.
use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    sqlx::sqlite::SqliteSynchronous,
};
use secrecy::ExposeSecret;

use crate::config::DatabaseConfig;

/// An arbitrary constant shared by every instance: the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x6368_6174_6d69_6772; // "chatmigr"

pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<DatabaseConnection> {
    connect_with(config, config.min_connections, config.max_connections).await
}

async fn connect_with(
    config: &DatabaseConfig,
    min: u32,
    max: u32,
) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(config.url.expose_secret());
    options
        .min_connections(min)
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out by default: a round trip per query.
        // Only connections idle long enough to have been dropped (by a restart, a proxy)
        // are checked; a hot connection that died fails its query once and is replaced.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            // Waiting on a busy database beats failing a request; SQLite only enforces
            // foreign keys when asked; with WAL (set once, by `migrate`), NORMAL is durable
            // across application crashes and much faster than FULL.
            o.synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .context("connect to the database (DATABASE_URL)")
}

/// Applies pending migrations. Several instances (or `chat-server migrate` beside a server)
/// may start at once, so they take turns: under an advisory lock on Postgres, inside one
/// write transaction on SQLite (whose DDL is transactional). Either way on a connection of
/// their own, since the lock belongs to it.
pub async fn migrate(config: &DatabaseConfig) -> anyhow::Result<()> {
    let conn = connect_with(config, 0, 1).await?;
    if conn.get_database_backend() == DbBackend::Sqlite {
        enable_wal(&conn).await?;
    }
    let (lock, unlock, abort) = match conn.get_database_backend() {
        DbBackend::Postgres => (
            format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"),
            format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"),
            format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"),
        ),
        _ => ("BEGIN IMMEDIATE".into(), "COMMIT".into(), "ROLLBACK".into()),
    };
    conn.execute_unprepared(&lock)
        .await
        .context("lock for migrations")?;
    let result = Migrator::up(&conn, None).await.context("migrate");
    let release = if result.is_ok() { unlock } else { abort };
    conn.execute_unprepared(&release).await?;
    conn.close().await?;
    result
}

/// Puts a SQLite database in WAL mode, so readers run beside the one writer. The mode is
/// stored in the file, so once is enough; switching needs an exclusive lock that SQLite's busy
/// timeout does not wait for, hence the retries when other instances hold the file open.
async fn enable_wal(conn: &DatabaseConnection) -> anyhow::Result<()> {
    let mut attempts = 0;
    loop {
        match conn.execute_unprepared("PRAGMA journal_mode = WAL").await {
            Ok(_) => return Ok(()),
            Err(err) if attempts < 50 => {
                attempts += 1;
                tracing::debug!(error = %err, "SQLite busy while enabling WAL; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err).context("enable SQLite WAL mode"),
        }
    }
}
