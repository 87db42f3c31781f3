//! A real SMTP server (mailin-embedded) on a random port, for a test's servers to send to
//! (`SMTP_URL`); it keeps what it receives.
use std::{
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use mailin_embedded::{Handler, Response, Server, SslConfig, response};

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    /// Headers and body, as sent.
    pub data: String,
}

impl Received {
    /// The token the mail carries: on a line of its own, bare or at the end of a link.
    pub fn token(&self) -> String {
        self.data
            .lines()
            .map(|line| line.trim().rsplit("token=").next().unwrap_or_default())
            .find(|word| {
                word.len() == 43
                    && word
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .unwrap_or_else(|| panic!("no token in {}", self.data))
            .to_owned()
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Mails still to refuse with a temporary failure (451).
    refuse: AtomicUsize,
}

pub struct Mailbox {
    /// `SMTP_URL` for a server that sends here.
    pub url: String,
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Session {
    shared: Arc<Shared>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Session {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        // Refused at MAIL FROM: after a refusal at the end of DATA, mailin stays in DATA and
        // the client's next command would hang.
        let refused = self
            .shared
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        match refused {
            true => response::INTERNAL_ERROR,
            false => response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = Received {
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        };
        self.shared.received.lock().unwrap().push(mail);
        response::OK
    }
}

impl Mailbox {
    /// Starts the server on its own threads; it lives as long as the test process.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an SMTP port");
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let mut server = Server::new(Session {
            shared: shared.clone(),
            to: Vec::new(),
            data: Vec::new(),
        });
        server
            .with_name("mail.test")
            .with_ssl(SslConfig::None)
            .expect("no TLS")
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            if let Err(err) = server.serve() {
                eprintln!("test SMTP server stopped: {err}");
            }
        });
        Self { url, shared }
    }

    /// The next `n` mails get a temporary failure (451) instead of being accepted.
    pub fn refuse_next(&self, n: usize) {
        self.shared.refuse.store(n, Ordering::SeqCst);
    }

    /// Every mail received so far.
    pub fn all(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The mails to `address`, once there are `count` of them (panics after 20 s).
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let mails: Vec<Received> = self
                .all()
                .into_iter()
                .filter(|mail| mail.to.iter().any(|to| to == address))
                .collect();
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{count} mails to {address} never came: {:?}", self.all());
    }
}
