//! Each test's own database: a SQLite file in a temporary directory, or a Postgres database
//! created for it on `TEST_DATABASE_URL`'s server, dropped afterwards.
use super::*;

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// The URL of a Postgres server's maintenance database, where test databases are created.
    Postgres(String),
}

impl Backend {
    pub fn postgres() -> Option<Self> {
        std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .map(Self::Postgres)
    }
}

/// A database of one test's own; dropped with it.
pub struct TestDb {
    pub url: String,
    /// Where the test's servers write mail when they have no SMTP server (`MAIL_OUTBOX_DIR`).
    pub outbox: tempfile::TempDir,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Someone else's database (a server in another process).
    None,
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    /// Someone else's database (a server in another process): nothing to clean up.
    pub fn elsewhere() -> Self {
        Self {
            url: String::new(),
            outbox: tempfile::tempdir().expect("temp dir"),
            cleanup: Cleanup::None,
        }
    }

    pub async fn new(backend: &Backend) -> Arc<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display());
                Arc::new(Self {
                    url,
                    outbox: tempfile::tempdir().expect("temp dir"),
                    cleanup: Cleanup::Sqlite(dir),
                })
            }
            Backend::Postgres(admin_url) => {
                let name = format!("chat_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let url = with_database(admin_url, &name);
                Arc::new(Self {
                    url,
                    outbox: tempfile::tempdir().expect("temp dir"),
                    cleanup: Cleanup::Postgres {
                        admin_url: admin_url.clone(),
                        name,
                    },
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside async; a thread with its own runtime keeps this independent of
            // whichever runtime the test used.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// `postgres://user@host:port/db?params` with `db` replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, params) = url
        .split_once('?')
        .map_or((url, None), |(b, p)| (b, Some(p)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match params {
        Some(p) => format!("{base}/{name}?{p}"),
        None => format!("{base}/{name}"),
    }
}

#[test]
fn database_names_are_replaced() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
        "postgres://u:p@h/t1?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "t1"),
        "postgres://h:5432/t1"
    );
}
