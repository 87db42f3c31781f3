//! The real binary, as operators run it: its logs (what they hold and what they must never
//! hold) and its shutdown on SIGTERM.
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::*;

/// `chat-server` in a process of its own, on a fresh SQLite file, logging JSON.
pub struct ServerProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    pub app: TestApp,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// The binary of this build (the test profile's).
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_binary(env!("CARGO_BIN_EXE_chat-server"), env).await
    }

    pub async fn start_binary(binary: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display());
        let mut child = Command::new(binary)
            .current_dir(dir.path())
            .env_clear()
            .env("DATABASE_URL", &url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", SECRET)
            .env("LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-server");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for output in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let found = lines.lock().unwrap().iter().find_map(|line| {
                let entry: Value = serde_json::from_str(line).ok()?;
                (entry["message"] == "serving GraphQL on /graphql")
                    .then(|| entry["addr"].as_str().map(str::to_owned))
                    .flatten()
            });
            if let Some(addr) = found {
                break addr;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {:?}",
                lines.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Self {
            child,
            lines,
            app: TestApp::remote(format!("http://{addr}")),
            _dir: dir,
        }
    }

    fn terminate(&self) {
        // SAFETY: kill only sends a signal to the process we started.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM");
    }

    /// SIGKILL: the process ends at once, in the middle of whatever it was doing.
    pub fn kill(&self) {
        // SAFETY: kill only sends a signal to the process we started.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0, "SIGKILL");
    }

    /// Waits for the process to exit; returns how long that took.
    async fn exited(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            assert!(start.elapsed() < within, "still running after {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process still runs (a stack overflow would have aborted it).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `{ __typename }` POST whose body arrives in two parts, `pause` apart: a request that is
/// in flight for that long.
async fn slow_request(app: &TestApp, pause: Duration) -> reqwest::Result<reqwest::Response> {
    let body = json!({ "query": "{ __typename }" }).to_string();
    let (head, tail) = body.split_at(5);
    let (head, tail) = (head.to_owned(), tail.to_owned());
    let chunks =
        futures_util::stream::iter([head, tail])
            .enumerate()
            .then(move |(i, chunk)| async move {
                if i == 1 {
                    tokio::time::sleep(pause).await;
                }
                Ok::<_, std::io::Error>(chunk)
            });
    app.client
        .post(app.graphql_url())
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_closes_sockets_with_1001() {
    let mut server = ServerProcess::start(&[("SHUTDOWN_GRACE_SECONDS", "10")]).await;
    let app = &server.app;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "r", false).await;
    let mut ws = app.ws_ready(&ann.access_token).await;
    ws.message_added("s", &room, None).await;
    ws.sync().await;

    let in_flight = tokio::spawn({
        let app = TestApp::remote(app.url.clone());
        async move { slow_request(&app, Duration::from_millis(1500)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();

    assert_eq!(
        ws.closed().await,
        Closed {
            code: 1001,
            reason: "server shutting down".into()
        }
    );
    // No new connections while the last requests finish...
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = server.app.url.trim_start_matches("http://").to_owned();
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "the listener is closed"
    );
    // ...and the one in flight gets its answer.
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "data": { "__typename": "Query" } }));

    let (status, _) = server.exited(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}: {}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_past_the_grace_period() {
    let mut server = ServerProcess::start(&[("SHUTDOWN_GRACE_SECONDS", "1")]).await;
    let app = TestApp::remote(server.app.url.clone());
    let stuck = tokio::spawn(async move { slow_request(&app, Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    let (status, took) = server.exited(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(5), "exited after {took:?}");
    assert!(
        server.log().contains("grace period over"),
        "{}",
        server.log()
    );
    assert!(
        stuck.await.unwrap().is_err(),
        "the stuck request was cut off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_request_ids_and_never_passwords_tokens_or_secrets() {
    // Everything the server and its libraries can log.
    let server = ServerProcess::start(&[("RUST_LOG", "trace")]).await;
    let app = &server.app;
    let zoe = app.register("zoe").await;
    let zoe = app.login(&zoe).await;
    let refreshed = app.refresh(&zoe).await;
    app.me(&refreshed.access_token).await.ok();
    let wrong = app.login_raw("zoe", "not the password at all").await;
    wrong.expect_code("UNAUTHENTICATED");
    let mut ws = app.ws_ready(&refreshed.access_token).await;
    ws.subscribe("q", "{ me { username } }", json!({})).await;
    ws.next("q").await;
    assert_eq!(ws.recv().await["type"], "complete");
    // A login over the socket: the password and the new tokens travel in WebSocket frames.
    ws.subscribe(
        "l",
        &format!("mutation($i: LoginInput!) {{ login(input: $i) {{ {AUTH_FIELDS} }} }}"),
        json!({ "i": { "login": "zoe", "password": PASSWORD } }),
    )
    .await;
    let over_ws = ws.next("l").await["data"]["login"].clone();
    let traced = app
        .client
        .post(app.graphql_url())
        .header("x-request-id", "req-4f2a9c")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "req-4f2a9c");
    app.gql(
        None,
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": refreshed.refresh_token }),
    )
    .await
    .ok();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let log = server.log();
    assert!(log.lines().count() > 20, "trace logging is on: {log}");
    assert!(
        log.lines().any(|line| line.contains("req-4f2a9c")),
        "log lines carry the request id"
    );
    for (what, secret) in [
        ("password", PASSWORD),
        ("wrong password", "not the password at all"),
        ("JWT secret", SECRET),
        ("first access token", zoe.access_token.as_str()),
        ("first refresh token", zoe.refresh_token.as_str()),
        ("refreshed access token", refreshed.access_token.as_str()),
        ("refreshed refresh token", refreshed.refresh_token.as_str()),
        (
            "access token sent over the socket",
            over_ws["accessToken"].as_str().unwrap(),
        ),
        (
            "refresh token sent over the socket",
            over_ws["refreshToken"].as_str().unwrap(),
        ),
    ] {
        // A token's signature is its secret part; a leak of any of it is a leak.
        let needle = secret.rsplit('.').next().unwrap();
        let leaks: Vec<&str> = log.lines().filter(|line| line.contains(needle)).collect();
        assert!(
            leaks.is_empty(),
            "the {what} appears in the log: {leaks:#?}"
        );
    }
}
