//! Postgres going away under load, and coming back. The test starts a private Postgres
//! (`initdb` and `pg_ctl` from the installed server, in a temporary directory, on a free port)
//! so that stopping it disturbs no other test.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::helpers::*;

/// A Postgres cluster of this test's own.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// `None` (the test skips) when no Postgres server is installed here. CI sets
    /// TEST_DATABASE_URL and installs Postgres: there, a missing server is a failure.
    fn start() -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            assert!(
                Backend::postgres().is_none(),
                "Postgres (initdb, pg_ctl) is not installed"
            );
            eprintln!("skipped: no Postgres server installed");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // Postgres refuses to run as root: the cluster belongs to the postgres user then.
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster directory");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Self { bin, dir, port };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.up();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server at once, like a crash: no goodbye to the connections.
    fn down(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool, args)
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            output.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs one of the server's tools, as the postgres user when we are root.
    fn command(&self, tool: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
        let program = self.bin.join(tool);
        if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.command("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The newest installed server's bin directory (Debian keeps it off the PATH).
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    found.pop()
}

impl TestApp {
    async fn ready(&self) -> u16 {
        match self.client.get(format!("{}/readyz", self.url)).send().await {
            Ok(response) => response.status().as_u16(),
            Err(err) => panic!("readyz did not answer: {err}"),
        }
    }

    /// Polls `/readyz` until it answers `status`.
    async fn wait_ready(&self, status: u16, within: Duration) {
        let deadline = Instant::now() + within;
        while self.ready().await != status {
            assert!(Instant::now() < deadline, "readyz never said {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Follows a room from its first message, resubscribing with `after` whenever the server
/// ends the subscription or the socket, until it has seen seq `until`. Returns every seq
/// received, in order, and how many times it had to resume.
async fn follow(app: &TestApp, account: &Account, room: &str, until: i64) -> (Vec<i64>, usize) {
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    let mut resumes = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    'connect: loop {
        assert!(Instant::now() < deadline, "never caught up: got {seqs:?}");
        if resumes > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut ws = app.ws_ready(&account.access_token).await;
        // From the start: `after` a cursor, or from seq 0.
        let after = cursor.clone().unwrap_or_else(start_cursor);
        ws.message_added("s", room, Some(&after)).await;
        loop {
            let message = match ws.recv_or_closed().await {
                Ok(message) => message,
                Err(_) => {
                    resumes += 1;
                    continue 'connect;
                }
            };
            match message["type"].as_str() {
                Some("next") if message["payload"]["errors"].is_null() => {
                    let added = &message["payload"]["data"]["messageAdded"];
                    seqs.push(added["seq"].as_i64().unwrap());
                    cursor = Some(added["cursor"].as_str().unwrap().to_owned());
                    if seqs.last() == Some(&until) {
                        return (seqs, resumes);
                    }
                }
                // An error (the database was away), then `complete`: resume.
                Some("next") => {}
                Some("complete" | "error") => {
                    resumes += 1;
                    continue 'connect;
                }
                _ => panic!("unexpected {message}"),
            }
        }
    }
}

/// The cursor before a room's first message (seq 0), as the server encodes cursors.
fn start_cursor() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("msg:0")
}

/// Sends `clientMsgId` until the server acknowledges it; every refusal on the way must be a
/// prompt INTERNAL_SERVER_ERROR. Returns the stored message and the refusals.
async fn send_until_acknowledged(
    app: &TestApp,
    account: &Account,
    room: &str,
    id: &str,
) -> (Value, usize) {
    let mut refusals = 0;
    loop {
        let started = Instant::now();
        let answer = app.send_message_raw(account, room, id, Some(id)).await;
        if answer.status == 200 && answer.body.get("errors").is_none() {
            return (answer.body["data"]["sendMessage"].clone(), refusals);
        }
        assert_eq!(answer.status, 200, "never a 5xx: {}", answer.body);
        answer.expect_code("INTERNAL_SERVER_ERROR");
        assert_eq!(
            answer.message(),
            Some("internal server error"),
            "no details"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a refusal took {:?}",
            started.elapsed()
        );
        refusals += 1;
        assert!(refusals < 500, "the server never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_loses_no_acknowledged_message() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let app = spawn_app(&Backend::Postgres(pg.admin_url())).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "through the storm", false).await;

    let total = 60;
    let sender = async {
        let mut acknowledged = Vec::new();
        let mut refusals = 0;
        for i in 0..total {
            let (message, refused) =
                send_until_acknowledged(&app, &ada, &room, &format!("m{i:02}")).await;
            acknowledged.push((
                message["seq"].as_i64().unwrap(),
                message["body"].as_str().unwrap().to_owned(),
            ));
            refusals += refused;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (acknowledged, refusals)
    };
    let outage = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        pg.down();
        app.wait_ready(503, Duration::from_secs(5)).await;
        // Longer than the pool waits for a connection (5 s): requests fail, not hang.
        tokio::time::sleep(Duration::from_secs(7)).await;
        pg.up();
        let back = Instant::now();
        app.wait_ready(200, Duration::from_secs(30)).await;
        back.elapsed()
    };
    let ((acknowledged, refusals), recovery) = tokio::join!(sender, outage);
    assert!(refusals > 0, "the outage happened during the sends");

    // Every acknowledged message is stored, once, under consecutive seqs.
    let seqs: Vec<i64> = acknowledged.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<i64>>());
    let history = app
        .gql(
            Some(&ada.access_token),
            "query($r: ID!) { messages(roomId: $r, first: 100) { edges { node { seq body } } } }",
            json!({ "r": room }),
        )
        .await;
    let stored: Vec<(i64, String)> = history.ok()["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["seq"].as_i64().unwrap(),
                e["node"]["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(stored, acknowledged);

    // A subscriber that lived through it (resuming with `after` when it had to) got each
    // message once, in order.
    let (received, resumes) = follow(&app, &ada, &room, total).await;
    assert_eq!(received, seqs, "after {resumes} resumes");
    eprintln!(
        "{refusals} refused sends, ready again {recovery:?} after the restart, {resumes} resumes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_live_through_a_restart_catch_up_from_the_database() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let app = spawn_app(&Backend::Postgres(pg.admin_url())).await;
    let bea = app.register("bea").await;
    let room = app.create_room(&bea, "r", false).await;
    for i in 0..5 {
        app.send_message(&bea, &room, &format!("before {i}")).await;
    }
    // Subscribed before the outage and still following after it.
    let subscriber = follow(&app, &bea, &room, 15);
    let outage = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        pg.down();
        tokio::time::sleep(Duration::from_secs(2)).await;
        pg.up();
        app.wait_ready(200, Duration::from_secs(30)).await;
        for i in 0..10 {
            send_until_acknowledged(&app, &bea, &room, &format!("after {i}")).await;
        }
    };
    let ((received, _), ()) = tokio::join!(subscriber, outage);
    assert_eq!(received, (1..=15).collect::<Vec<i64>>());
}
