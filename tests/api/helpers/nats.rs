//! A private `nats-server` per test, on free ports, that a test can stop and start again (the
//! shared one on 4222 cannot be restarted, and tests on it would hear each other). Its
//! monitoring endpoint (`/connz`) says what each connection subscribed to and was sent.
use std::{path::PathBuf, process::Stdio, time::Duration};

use serde_json::Value;
use tokio::process::{Child, Command};

pub struct NatsServer {
    binary: PathBuf,
    pub port: u16,
    monitor: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    /// A server started with `args` besides its ports, or `None` (saying so) where
    /// `nats-server` is not installed, unless `REQUIRE_NATS=1` (CI installs it).
    pub async fn start(args: &[&str]) -> Option<Self> {
        let Some(binary) = find() else {
            let required = std::env::var("REQUIRE_NATS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "REQUIRE_NATS=1, but nats-server is not installed"
            );
            eprintln!("skipped: nats-server is not installed");
            return None;
        };
        let mut server = Self {
            binary,
            port: free_port(),
            monitor: free_port(),
            args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        server.resume().await;
        Some(server)
    }

    /// `nats://127.0.0.1:port`, with `credentials` (`user:password`) if given.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(credentials) => format!("nats://{credentials}@127.0.0.1:{}", self.port),
            None => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server: its clients lose their connections, and what it held is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill nats-server");
        }
    }

    /// Starts it again on the same ports; returns once it accepts connections.
    pub async fn resume(&mut self) {
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string()])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not start on port {}", self.port);
    }

    /// The server's connections, with their subscriptions (`/connz?subs=1`).
    pub async fn connections(&self) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/connz?subs=1", self.monitor);
        let connz: Value = reqwest::get(url)
            .await
            .expect("GET /connz")
            .json()
            .await
            .expect("/connz is JSON");
        connz["connections"].as_array().cloned().unwrap_or_default()
    }

    /// The connection subscribed to `subject`: the instance that follows it.
    pub async fn connection_following(&self, subject: &str) -> Option<Value> {
        self.connections().await.into_iter().find(|c| {
            c["subscriptions_list"]
                .as_array()
                .is_some_and(|subs| subs.iter().any(|s| s == subject))
        })
    }
}

fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|file| file.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
