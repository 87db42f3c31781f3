//! Headless Chromium, driven over WebDriver (chromedriver, started here on a free port), with
//! the network cut off: names resolve to nothing but 127.0.0.1, and every other connection
//! goes to a proxy of ours that refuses it. The server under test is on 127.0.0.1, which
//! Chromium never sends through a proxy.
use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// How long the page gets to show what a step waits for.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The Debian packages' binaries (`chromium`, `chromium-driver`), found on `PATH`.
pub struct Binaries {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl Binaries {
    pub fn find() -> Option<Self> {
        Some(Self {
            chromium: on_path("chromium")?,
            chromedriver: on_path("chromedriver")?,
        })
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| file.is_file())
}

/// chromedriver and the browsers it starts, in a process group of their own: dropping this
/// kills the group, so a failing test leaves no browser behind.
struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's process id (`process_group(0)`).
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with a process group we created; it touches no memory.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// Where connections that are not for 127.0.0.1 go: it notes what each asked for, and closes.
struct Blackhole {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Blackhole {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let noted = asked.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = [0u8; 512];
                let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer));
                if let Ok(Ok(n)) = read.await {
                    let request = String::from_utf8_lossy(&buffer[..n]);
                    let line = request.lines().next().unwrap_or_default().to_owned();
                    noted.lock().unwrap().push(line);
                }
            }
        });
        Self { addr, asked, task }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Fields drop in order: the browser goes before its profile directory is removed.
pub struct Browser {
    _driver: Driver,
    pub client: Client,
    screenshots: PathBuf,
    blackhole: Blackhole,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser session; screenshots go to `screenshots`.
    pub async fn start(binaries: &Binaries, screenshots: &Path) -> Self {
        let port = free_port();
        let child = Command::new(&binaries.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child };
        wait_for_port(port).await;

        let blackhole = Blackhole::start().await;
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1".into(),
            format!("--proxy-server=http://{}", blackhole.addr),
            // Chromium's own traffic (updates, sync, field trials) is none of the page's.
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--no-first-run".into(),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binaries.chromium,
                "args": args,
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object");
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        std::fs::create_dir_all(screenshots).unwrap();
        Self {
            _driver: driver,
            client,
            screenshots: screenshots.to_owned(),
            blackhole,
            _profile: profile,
        }
    }

    /// What was sent to the proxy: anything the browser tried to reach but 127.0.0.1.
    pub fn outside_requests(&self) -> Vec<String> {
        self.blackhole.asked.lock().unwrap().clone()
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("{err}: in {script}"))
    }

    pub async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await;
        let element = element.unwrap_or_else(|err| panic!("{css}: {err}"));
        element
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Runs `script` until it returns something other than `null` or `false`, and returns
    /// that; fails after `STEP_TIMEOUT` with a screenshot and the page's text.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let value = self.js(script, vec![]).await;
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return value;
            }
            if start.elapsed() > STEP_TIMEOUT {
                let shot = self.screenshot(&format!("failed-{}", slug(what))).await;
                let text = self.js("return document.body.innerText", vec![]).await;
                panic!(
                    "{what}: not within {STEP_TIMEOUT:?}; screenshot {}; page text:\n{}",
                    shot.display(),
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (and its browser) before the guard kills what is left.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn wait_for_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
