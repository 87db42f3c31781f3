//! A TCP proxy between a server and Postgres that can black-hole traffic without closing
//! anything, as a NAT that dropped its flows, or a network cut, does: the server's end of every
//! connection stays open and hears nothing more. When the cut heals, connections that went
//! silent are reset (the far end forgot them) and new ones pass again.
use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct Proxy {
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to the Postgres server of `url`.
    pub async fn to(url: &str) -> Self {
        let upstream = tokio::net::lookup_host(authority(url))
            .await
            .expect("resolve the database host")
            .next()
            .expect("an address for the database host");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, watch) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, watch.clone()));
            }
        });
        Self { addr, cut, task }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        url.replacen(authority(url), &self.addr.to_string(), 1)
    }

    /// From now on nothing passes: not on open connections, not on new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Connections that were open during the cut are reset; new ones pass.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `host:port` of `scheme://[user@]host:port/...`.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let mut server = if *cut.borrow_and_update() {
        None
    } else {
        TcpStream::connect(upstream).await.ok()
    };
    let mut silenced = server.is_none();
    let (mut to_server, mut to_client) = ([0u8; 16384], [0u8; 16384]);
    loop {
        tokio::select! {
            read = client.read(&mut to_server) => match (read, &mut server) {
                (Ok(0) | Err(_), _) => return,
                // Silenced: what the client sends goes nowhere.
                (Ok(_), _) if silenced => {}
                (Ok(n), Some(server)) => {
                    if server.write_all(&to_server[..n]).await.is_err() {
                        return;
                    }
                }
                (Ok(_), None) => return,
            },
            read = async {
                match &mut server {
                    Some(server) => server.read(&mut to_client).await,
                    None => std::future::pending().await,
                }
            } => match read {
                Ok(0) | Err(_) => return,
                Ok(_) if silenced => {}
                Ok(n) => {
                    if client.write_all(&to_client[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = cut.changed() => {
                if changed.is_err() {
                    return;
                }
                if *cut.borrow_and_update() {
                    silenced = true;
                } else if silenced {
                    // Healed: the far end has forgotten this connection.
                    let _ = client.set_zero_linger();
                    return;
                }
            }
        }
    }
}
