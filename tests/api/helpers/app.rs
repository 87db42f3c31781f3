//! The server under test: built from a test configuration, run in-process on a random port,
//! stopped with the test.
use super::*;

/// A test configuration: random port, the given database, a fixed secret so that several
/// instances (and the tests themselves) agree on tokens.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config {
        bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    config.database.url = SecretString::from(db.url.clone());
    config.database.max_connections = 5;
    config.mail.outbox_dir = db.outbox.path().to_owned();
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
            db: Arc::new(TestDb::elsewhere()),
            shutdown: None,
            server: None,
        }
    }
}

/// Sends what current GraphQL clients send, `Accept: application/graphql-response+json, …`,
/// under which a request error is a 4xx: the tests check statuses as such clients see them.
fn test_client() -> reqwest::Client {
    let accept = "application/graphql-response+json, application/json;q=0.9";
    reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::ACCEPT,
                reqwest::header::HeaderValue::from_static(accept),
            )]
            .into_iter()
            .collect(),
        )
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
    let app = start_on(db, configure).await;
    // On Postgres, ready once its listener hears the other instances.
    let (status, body) = app
        .ready_within(Duration::from_secs(10), |status, _| status == 200)
        .await;
    assert_eq!(status, 200, "the server did not become ready: {body}");
    app
}

/// The same, returning as soon as it serves, ready or not.
pub async fn start_on(db: Arc<TestDb>, configure: impl FnOnce(&mut Config)) -> TestApp {
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

impl TestApp {
    /// A number from `/metrics` (served beside the API): the sum of the series named `name`,
    /// or one series, named with its labels (`name{label="value"}`).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("/metrics is text");
        text.lines()
            .filter(|line| match name.split_once('{') {
                // One series: its name and labels as /metrics prints them.
                Some(_) => line.split(' ').next() == Some(name),
                None => line.split([' ', '{']).next() == Some(name),
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `/readyz`: its status and body.
    pub async fn readyz(&self) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/readyz", self.url))
            .send()
            .await
            .expect("GET /readyz");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `/readyz` until `wanted` holds of its answer, or `within` is over; returns the
    /// last answer.
    pub async fn ready_within(
        &self,
        within: Duration,
        wanted: impl Fn(u16, &Value) -> bool,
    ) -> (u16, Value) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, body) = self.readyz().await;
            if wanted(status, &body) || tokio::time::Instant::now() >= deadline {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
