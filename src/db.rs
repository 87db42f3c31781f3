//! Connecting to SQLite or Postgres, and migrating at start-up.
use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    sqlx::{postgres::PgConnectOptions, sqlite::SqliteSynchronous},
};
use secrecy::ExposeSecret;

use crate::config::DatabaseConfig;

/// An arbitrary constant shared by every instance: the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x6368_6174_6d69_6772; // "chatmigr"

/// How long a read in the background (a subscriber catching up, the listener re-reading
/// revocations) may take before it is given up and tried again. A connection that died
/// without a word answers nothing, ever; a new one will.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(5);

/// How a Postgres connection presents itself: by name (`application_name`, as
/// `pg_stat_activity` shows it: `chat-server`, or `chat-server listener`), and asking the
/// server to probe it (TCP keepalive from the server's end). So a quiet connection stays open
/// through NATs and load balancers that drop quiet flows, and one whose client vanished (an
/// instance killed or cut off) has its backend ended, and its locks released, within about a
/// minute instead of hours. sqlx cannot set keepalive on the client's end; the listener's
/// heartbeat and `QUERY_DEADLINE` watch that end.
pub fn postgres_options(options: PgConnectOptions, name: &str) -> PgConnectOptions {
    options.application_name(name).options([
        ("tcp_keepalives_idle", "30"),
        ("tcp_keepalives_interval", "10"),
        ("tcp_keepalives_count", "3"),
    ])
}

/// The connections a server works with. On SQLite, writes go through one connection of their
/// own: SQLite lets one transaction write at a time, and one that finds the lock taken sleeps
/// and tries again (1, 2, 5, 10... ms), which under load is most of a write's time. Queued for
/// one connection instead, writers take turns in order, each the moment the one before is
/// done. Reads use the pool beside it, as WAL lets them. On Postgres both are the one pool.
#[derive(Clone)]
pub struct Pools {
    pub reads: DatabaseConnection,
    pub writes: DatabaseConnection,
}

pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Pools> {
    let reads = connect_with(config, config.min_connections, config.max_connections).await?;
    let writes = match reads.get_database_backend() {
        DbBackend::Sqlite => connect_with(config, 1, 1).await?,
        _ => reads.clone(),
    };
    Ok(Pools { reads, writes })
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
        .map_sqlx_postgres_opts(|o| postgres_options(o, "chat-server"))
        .map_sqlx_sqlite_opts(|o| {
            // Waiting on a busy database beats failing a request; SQLite only enforces
            // foreign keys when asked. FULL syncs the log (WAL, set once by `migrate`) at
            // every commit: an answered write survives a power failure, which NORMAL only
            // promises across a crash of the process.
            o.synchronous(SqliteSynchronous::Full)
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
