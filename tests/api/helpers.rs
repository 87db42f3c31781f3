//! The test harness: a real server on a random port, over its own fresh database (a SQLite
//! file, or a Postgres database created for the test), spoken to over real HTTP.
use std::{
    net::SocketAddr,
    sync::{Arc, Once},
    time::Duration,
};

use chat_server::{
    config::{Config, SigningConfig},
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
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub async fn new(backend: &Backend) -> Arc<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display());
                Arc::new(Self {
                    url,
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

/// A test configuration: random port, the given database, a fixed secret so that several
/// instances (and the tests themselves) agree on tokens.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config {
        bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    config.database.url = SecretString::from(db.url.clone());
    config.database.max_connections = 5;
    config.auth.signing = SigningConfig::Hs256(Some(SecretString::from(SECRET)));
    config
}

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub db: Arc<TestDb>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(backend: &Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: &Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new(backend).await;
    spawn_on(db, configure).await
}

/// Another server instance on an existing test database.
pub async fn spawn_on(db: Arc<TestDb>, configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_logging();
    let mut config = test_config(&db);
    configure(&mut config);
    let app = Application::build(config).await.expect("build application");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    TestApp {
        url: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        db,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// Logs stay quiet unless `TEST_LOG` is set.
fn init_test_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            chat_server::telemetry::init_logging(chat_server::config::LogFormat::Pretty);
        }
    });
}

/// An HTTP answer to a GraphQL request.
#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Gql {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The `extensions.code` of the first error, if any.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn message(&self) -> Option<&str> {
        self.body["errors"][0]["message"].as_str()
    }

    pub fn field(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["field"].as_str()
    }

    /// Panics with the whole answer unless it succeeded without errors.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            self.status == 200 && self.body.get("errors").is_none(),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        self.data()
    }

    /// Panics unless the first error has `code`.
    #[track_caller]
    pub fn expect_code(&self, code: &str) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "answer: {} {}",
            self.status,
            self.body
        );
        self
    }
}

/// A signed-in user, as the test sees it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Account {
    fn from_payload(payload: &Value, email: &str) -> Self {
        Self {
            id: payload["user"]["id"].as_str().expect("user id").to_owned(),
            username: payload["user"]["username"]
                .as_str()
                .expect("username")
                .to_owned(),
            email: email.to_owned(),
            access_token: payload["accessToken"]
                .as_str()
                .expect("accessToken")
                .to_owned(),
            refresh_token: payload["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
        }
    }
}

pub const AUTH_FIELDS: &str =
    "accessToken refreshToken tokenType expiresIn user { id username email role createdAt }";

impl TestApp {
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.url)
    }

    /// POSTs a GraphQL request, with a bearer token if given.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let mut request = self
            .client
            .post(self.graphql_url())
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_gql(request.send().await.expect("request")).await
    }

    pub async fn query(&self, query: &str) -> Gql {
        self.gql(None, query, json!({})).await
    }

    pub async fn register(&self, username: &str) -> Account {
        let email = format!("{username}@example.com");
        self.try_register(&email, username, PASSWORD).await
    }

    pub async fn try_register(&self, email: &str, username: &str, password: &str) -> Account {
        let answer = self.register_raw(email, username, password).await;
        Account::from_payload(&answer.ok()["register"], &email.to_lowercase())
    }

    pub async fn register_raw(&self, email: &str, username: &str, password: &str) -> Gql {
        self.gql(
            None,
            &format!(
                "mutation($input: RegisterInput!) {{ register(input: $input) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "input": { "email": email, "username": username, "password": password } }),
        )
        .await
    }

    pub async fn login_raw(&self, login: &str, password: &str) -> Gql {
        self.gql(
            None,
            &format!(
                "mutation($input: LoginInput!) {{ login(input: $input) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "input": { "login": login, "password": password } }),
        )
        .await
    }

    pub async fn login(&self, account: &Account) -> Account {
        let answer = self.login_raw(&account.username, PASSWORD).await;
        Account::from_payload(&answer.ok()["login"], &account.email)
    }

    pub async fn refresh_raw(&self, refresh_token: &str) -> Gql {
        self.gql(
            None,
            &format!("mutation($t: String!) {{ refresh(refreshToken: $t) {{ {AUTH_FIELDS} }} }}"),
            json!({ "t": refresh_token }),
        )
        .await
    }

    pub async fn refresh(&self, account: &Account) -> Account {
        let answer = self.refresh_raw(&account.refresh_token).await;
        Account::from_payload(&answer.ok()["refresh"], &account.email)
    }

    pub async fn me(&self, token: &str) -> Gql {
        self.gql(
            Some(token),
            "{ me { id username email role createdAt } }",
            json!({}),
        )
        .await
    }

    /// Stops the server, letting in-flight requests finish.
    pub async fn stop(mut self) -> Arc<TestDb> {
        self.shutdown_now().await;
        self.db.clone()
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub async fn into_gql(response: reqwest::Response) -> Gql {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Gql {
        status,
        content_type,
        body,
    }
}

/// Signs claims with the test secret, for tokens the server would never issue.
pub fn forge_token(claims: &Value, key: &[u8], algorithm: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("sign")
}

/// The claims of a token the server issued.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims JSON")
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
