//! The test harness: a real server on a random port, over its own fresh database (a SQLite
//! file, or a Postgres database created for the test), spoken to over real HTTP.
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
    /// Someone else's database (a server in another process).
    None,
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
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
    // The suite registers and sends a lot from one address; each rate-limit test turns on
    // the limit it tests.
    config.limits = RateLimits::unlimited();
    config
}

pub struct TestApp {
    pub url: String,
    /// `/metrics` on an address of its own (`METRICS_ADDR`), when configured.
    pub metrics_url: Option<String>,
    pub client: reqwest::Client,
    pub db: Arc<TestDb>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// A client of a server that runs elsewhere (another process), at `url`.
    pub fn remote(url: String) -> Self {
        TestApp {
            url,
            metrics_url: None,
            client: test_client(),
            db: Arc::new(TestDb {
                url: String::new(),
                cleanup: Cleanup::None,
            }),
            shutdown: None,
            server: None,
        }
    }
}

fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
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
    let metrics_url = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    TestApp {
        url: format!("http://{addr}"),
        metrics_url,
        client: test_client(),
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

/// A real WebSocket client for `/graphql`.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// How a socket ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

/// Long enough for any server-side step; a socket that stays silent longer has hung.
pub const WS_WAIT: Duration = Duration::from_secs(20);

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

pub const MESSAGE_FIELDS: &str =
    "id roomId seq body clientMsgId createdAt editedAt cursor author { id username email }";

impl TestApp {
    pub fn ws_url(&self) -> String {
        format!("{}/graphql", self.url.replacen("http", "ws", 1))
    }

    /// Opens a socket speaking `protocol` (`None`: no subprotocol header).
    pub async fn ws_with(&self, protocol: Option<&str>) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = self.ws_url().into_client_request().expect("ws request");
        if let Some(protocol) = protocol {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", protocol.parse().unwrap());
        }
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket handshake");
        if let Some(protocol) = protocol {
            assert_eq!(
                response
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap()),
                Some(protocol),
                "the server agrees on the subprotocol"
            );
        }
        Ws { stream }
    }

    pub async fn ws(&self) -> Ws {
        self.ws_with(Some(TRANSPORT_WS)).await
    }

    /// A `graphql-transport-ws` socket, acknowledged for `token`, whose client side reads
    /// into a tiny receive buffer: a client that stops reading backs up into the server fast.
    pub async fn ws_slow(&self, token: &str) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let addr: SocketAddr = self.url.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let mut request = self.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", TRANSPORT_WS.parse().unwrap());
        let (stream, _) = tokio_tungstenite::client_async(
            request,
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("WebSocket handshake");
        let mut ws = Ws { stream };
        ws.init(json!({ "token": token })).await;
        ws
    }

    /// A `graphql-transport-ws` socket, acknowledged for `token`.
    pub async fn ws_ready(&self, token: &str) -> Ws {
        let mut ws = self.ws().await;
        ws.init(json!({ "Authorization": format!("Bearer {token}") }))
            .await;
        ws
    }
}

impl Ws {
    /// The raw stream, for tests that drive the socket frame by frame.
    pub fn into_inner(
        self,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        self.stream
    }

    pub async fn send(&mut self, message: Value) {
        self.send_raw(tokio_tungstenite::tungstenite::Message::Text(
            message.to_string().into(),
        ))
        .await;
    }

    pub async fn send_raw(&mut self, message: tokio_tungstenite::tungstenite::Message) {
        use futures_util::SinkExt;
        self.stream.send(message).await.expect("WebSocket send");
    }

    /// The next protocol message, skipping keep-alives. Panics if the socket closes, or if
    /// nothing but keep-alives comes for `WS_WAIT` (the server pings an idle socket: a
    /// message that never comes must not keep a test waiting forever).
    pub async fn recv(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WS_WAIT;
        loop {
            let message = self.recv_any().await;
            match message["type"].as_str() {
                Some("ping") => self.send(json!({ "type": "pong" })).await,
                Some("ka") => {}
                _ => return message,
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing but keep-alives within {WS_WAIT:?}"
            );
        }
    }

    /// The next protocol message, skipping keep-alives, or how the socket ended (`None`:
    /// without a close frame).
    pub async fn recv_or_closed(&mut self) -> Result<Value, Option<Closed>> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let frame = match tokio::time::timeout(WS_WAIT, self.stream.next()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None | Some(Err(_))) => return Err(None),
                Err(_) => panic!("no message from the server within {WS_WAIT:?}"),
            };
            match frame {
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).expect("JSON message");
                    match message["type"].as_str() {
                        Some("ping") => self.send(json!({ "type": "pong" })).await,
                        Some("ka" | "pong") => {}
                        _ => return Ok(message),
                    }
                }
                Message::Close(frame) => {
                    return Err(frame.map(|f| Closed {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    }));
                }
                _ => {}
            }
        }
    }

    /// The next protocol message, keep-alives included.
    pub async fn recv_any(&mut self) -> Value {
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self.next_frame().await {
                Some(Message::Text(text)) => {
                    return serde_json::from_str(&text).expect("JSON message");
                }
                Some(Message::Close(frame)) => panic!("socket closed: {frame:?}"),
                Some(_) => continue,
                None => panic!("socket ended"),
            }
        }
    }

    /// Reads until the server closes the socket; panics on any other protocol message.
    pub async fn closed(&mut self) -> Closed {
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self.next_frame().await {
                Some(Message::Close(Some(frame))) => {
                    return Closed {
                        code: frame.code.into(),
                        reason: frame.reason.to_string(),
                    };
                }
                Some(Message::Close(None)) | None => panic!("closed without a close frame"),
                Some(Message::Text(text)) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if !matches!(message["type"].as_str(), Some("ping" | "ka" | "pong")) {
                        panic!("expected the socket to close, got {message}");
                    }
                }
                Some(_) => continue,
            }
        }
    }

    /// Reads every frame left until the socket ends: its close frame, or `None` if it ended
    /// without one. Also returns the `next` payloads read on the way.
    pub async fn end(&mut self) -> (Vec<Value>, Option<Closed>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut payloads = Vec::new();
        // One deadline for the whole: keep-alive pings must not keep a socket that never
        // ends "alive" forever.
        let deadline = tokio::time::Instant::now() + WS_WAIT;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None | Some(Err(_))) => return (payloads, None),
                Err(_) => panic!("the socket did not end within {WS_WAIT:?}"),
            };
            match frame {
                Message::Close(frame) => {
                    let closed = frame.map(|f| Closed {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    });
                    return (payloads, closed);
                }
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if message["type"] == "next" {
                        payloads.push(message["payload"].clone());
                    }
                }
                _ => {}
            }
        }
    }

    async fn next_frame(&mut self) -> Option<tokio_tungstenite::tungstenite::Message> {
        use futures_util::StreamExt;
        match tokio::time::timeout(WS_WAIT, self.stream.next()).await {
            Ok(frame) => frame.map(|f| f.expect("WebSocket frame")),
            Err(_) => panic!("no message from the server within {WS_WAIT:?}"),
        }
    }

    pub async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = self.recv().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "type": "subscribe",
            "id": id,
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    /// Subscribes to a room's new messages (after `after`, if given).
    pub async fn message_added(&mut self, id: &str, room_id: &str, after: Option<&str>) {
        self.subscribe(
            id,
            &format!("subscription($r: ID!, $a: String) {{ messageAdded(roomId: $r, after: $a) {{ {MESSAGE_FIELDS} }} }}"),
            json!({ "r": room_id, "a": after }),
        )
        .await;
    }

    /// The next `next` payload for `id`; panics on anything else.
    pub async fn next(&mut self, id: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        message["payload"].clone()
    }

    /// The next `next` payload for `id` if one comes within `wait`.
    pub async fn next_within(&mut self, id: &str, wait: Duration) -> Option<Value> {
        let message = tokio::time::timeout(wait, self.recv()).await.ok()?;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        Some(message["payload"].clone())
    }

    /// A round trip: once the pong is back, every message sent before the ping has been
    /// handled (a subscription is then registered, though not necessarily established yet).
    pub async fn sync(&mut self) {
        self.send(json!({ "type": "ping" })).await;
        let pong = self.recv().await;
        assert_eq!(pong["type"], "pong", "{pong}");
    }
}

impl TestApp {
    /// Creates a room as `owner`; returns its id.
    pub async fn create_room(&self, owner: &Account, name: &str, private: bool) -> String {
        let answer = self
            .gql(
                Some(&owner.access_token),
                "mutation($i: CreateRoomInput!) { createRoom(input: $i) { id } }",
                json!({ "i": { "name": name, "isPrivate": private } }),
            )
            .await;
        answer.ok()["createRoom"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn join_room(&self, account: &Account, room_id: &str) -> Gql {
        self.gql(
            Some(&account.access_token),
            "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
            json!({ "r": room_id }),
        )
        .await
    }

    pub async fn send_message_raw(
        &self,
        account: &Account,
        room_id: &str,
        body: &str,
        client_msg_id: Option<&str>,
    ) -> Gql {
        self.gql(
            Some(&account.access_token),
            &format!("mutation($i: SendMessageInput!) {{ sendMessage(input: $i) {{ {MESSAGE_FIELDS} }} }}"),
            json!({ "i": { "roomId": room_id, "body": body, "clientMsgId": client_msg_id } }),
        )
        .await
    }

    /// Every room `account` is a member of (`id` and `createdAt`), page by page.
    pub async fn all_rooms(&self, account: &Account) -> Vec<Value> {
        let mut rooms = Vec::new();
        let mut after = Value::Null;
        loop {
            let page = self
                .gql(
                    Some(&account.access_token),
                    "query($a: String) { rooms(first: 100, after: $a) { edges { node { id createdAt } } pageInfo { hasNextPage endCursor } } }",
                    json!({ "a": after }),
                )
                .await;
            let page = &page.ok()["rooms"];
            rooms.extend(
                page["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["node"].clone()),
            );
            if page["pageInfo"]["hasNextPage"] != true {
                return rooms;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
    }

    /// POSTs a batch of requests as `account`; returns the answers, one per request.
    pub async fn batch(&self, account: &Account, requests: &[Value]) -> Vec<Value> {
        let response = self
            .client
            .post(self.graphql_url())
            .bearer_auth(&account.access_token)
            .json(requests)
            .send()
            .await
            .expect("request");
        let answer = into_gql(response).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body.as_array().expect("a batch answer").clone()
    }

    /// Sends a message; returns it as the server stored it.
    pub async fn send_message(&self, account: &Account, room_id: &str, body: &str) -> Value {
        let answer = self.send_message_raw(account, room_id, body, None).await;
        answer.ok()["sendMessage"].clone()
    }
}
