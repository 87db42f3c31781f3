//! Every workload, briefly, against the real server (started in-process on a random port over
//! a fresh SQLite file) and against the baseline server: the benchmarks stay runnable. These
//! check that a workload completes without errors, losses or duplicates, never how fast.
use std::time::Duration;

use chat_bench::{fanout, http, idle, login};
use chat_server::{config::Config, startup::Application};

struct Server {
    url: String,
    _dir: tempfile::TempDir,
}

async fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.database.url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    )
    .into();
    // The verification mails of the users it registers: with the database, not in the tree.
    config.mail.outbox_dir = dir.path().join("mail");
    // Load from one address (a login storm, one sender) would otherwise be, correctly, rate
    // limited; so would the sockets that share a user.
    config.limits = chat_server::config::RateLimits::unlimited();
    config.ws.max_sockets_per_user = 0;
    let app = Application::build(config).await.expect("server starts");
    let url = format!("http://{}", app.local_addr());
    tokio::spawn(app.run(std::future::pending()));
    Server { url, _dir: dir }
}

const BRIEF: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_workloads_run() {
    let server = start_server().await;
    for query in [http::Query::Typename, http::Query::Me, http::Query::History] {
        let report = http::run(http::HttpConfig {
            url: server.url.clone(),
            connections: 2,
            duration: BRIEF,
            warmup: Duration::ZERO,
            query,
            ..Default::default()
        })
        .await
        .expect("http workload");
        assert!(report.requests > 0, "{report}");
        assert_eq!(report.errors.total(), 0, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_runs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(chat_bench::baseline::serve(listener, false));
    let report = http::run(http::HttpConfig {
        url,
        connections: 2,
        duration: BRIEF,
        warmup: Duration::ZERO,
        ..Default::default()
    })
    .await
    .expect("http workload against the baseline");
    assert!(
        report.requests > 0 && report.errors.total() == 0,
        "{report}"
    );
}

/// The baseline speaks the part of the contract `fanout` uses, in both of its modes: every
/// message reaches every subscriber once, in frames the load generator reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_runs_against_the_baseline() {
    for prepared in [false, true] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(chat_bench::baseline::serve(listener, prepared));
        brief_fanout(url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_workload_runs() {
    let server = start_server().await;
    let report = login::run(login::LoginConfig {
        url: server.url.clone(),
        connections: 2,
        duration: BRIEF,
        probe_idle: Duration::from_millis(200),
        calibrate_logins: 2,
        ..Default::default()
    })
    .await
    .expect("login workload");
    assert!(report.logins > 0, "{report}");
    assert_eq!(
        report.errors.total() + report.probe_errors.total(),
        0,
        "{report}"
    );
    assert_eq!(report.rate_limited, 0, "{report}");
    assert!(report.calibration.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workload_runs() {
    let server = start_server().await;
    let report = idle::run(idle::IdleConfig {
        url: server.url.clone(),
        sockets: 20,
        users: Some(2),
        settle: Duration::from_millis(100),
        hold: Duration::from_millis(200),
        server_pid: Some(std::process::id()),
        ..Default::default()
    })
    .await
    .expect("idle workload");
    assert_eq!(report.subscribed, 20, "{report}");
    assert_eq!(report.verified, Some(20), "{report}");
    assert_eq!(report.lost.total(), 0, "{report}");
    assert!(report.rss_per_socket_kib.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_workload_runs() {
    let server = start_server().await;
    brief_fanout(server.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_over_room_events_with_typists_runs() {
    let server = start_server().await;
    brief_fanout_with(fanout::FanoutConfig {
        url: server.url.clone(),
        room_events: true,
        typists: 2,
        ..brief()
    })
    .await;
}

/// A second of fan-out to 10 subscribers.
fn brief() -> fanout::FanoutConfig {
    fanout::FanoutConfig {
        subscribers: 10,
        users: Some(2),
        rate: 20.0,
        duration: Duration::from_secs(1),
        settle: Duration::from_millis(200),
        ..Default::default()
    }
}

async fn brief_fanout(url: String) {
    brief_fanout_with(fanout::FanoutConfig { url, ..brief() }).await;
}

/// Every message arrives once everywhere.
async fn brief_fanout_with(config: fanout::FanoutConfig) {
    let report = fanout::run(config).await.expect("fanout workload");
    assert!(report.sent > 0, "{report}");
    assert_eq!(
        report.stats.deliveries, report.expected_deliveries,
        "{report}"
    );
    assert_eq!(report.stats.lost, 0, "{report}");
    assert_eq!(report.stats.duplicated, 0, "{report}");
    assert_eq!(report.stats.bad_frames, 0, "{report}");
}
