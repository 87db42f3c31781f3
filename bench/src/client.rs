//! A lean HTTP/1.1 client: one keep-alive connection per task (hyper's `client::conn::http1`),
//! no pool, no locks. The bench shares the server's cores, so every cycle it spends here is a
//! cycle the server does not get.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request (including a reconnect) may take before it counts as a `timeout` error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const ACCEPT_GRAPHQL: &str = "application/graphql-response+json, application/json;q=0.9";

/// Where the GraphQL endpoint is, parsed once from `--url`.
#[derive(Debug)]
pub struct Endpoint {
    /// The resolved server address.
    pub addr: SocketAddr,
    /// `host:port`, sent as the `Host` header.
    host: HeaderValue,
    /// The request target, `/graphql` unless the URL names another path.
    path: Uri,
    /// The same endpoint as a `ws://` URL.
    pub ws_url: String,
}

impl Endpoint {
    /// Parses `http://host:port` (the GraphQL path `/graphql` is appended) or a full
    /// `http://host:port/some/path` (used as is). Only plain HTTP: the bench targets local servers.
    pub fn parse(url: &str) -> Result<Arc<Self>> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("URL {url:?} must start with http:// (the WebSocket URL is derived from it)");
        }
        let host = uri
            .host()
            .with_context(|| format!("URL {url:?} has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = (host.trim_matches(|c| c == '[' || c == ']'), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} resolves to no address"))?;
        let path = match uri.path() {
            "" | "/" => "/graphql",
            path => path,
        };
        let authority = uri.authority().context("URL has no authority")?.as_str();
        Ok(Arc::new(Self {
            addr,
            host: HeaderValue::from_str(authority)?,
            path: path.parse()?,
            ws_url: format!("ws://{authority}{path}"),
        }))
    }
}

/// The body and status of a response.
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Why a request did not produce a response.
#[derive(Debug)]
pub enum HttpError {
    Connect(std::io::Error),
    Transport(hyper::Error),
    Timeout,
}

impl HttpError {
    /// The key under which reports count this error.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Connect(_) => "connect",
            HttpError::Transport(_) => "transport",
            HttpError::Timeout => "timeout",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect failed: {e}"),
            HttpError::Transport(e) => write!(f, "HTTP transport error: {e}"),
            HttpError::Timeout => write!(f, "no response within {}s", REQUEST_TIMEOUT.as_secs()),
        }
    }
}

impl std::error::Error for HttpError {}

/// One keep-alive connection, opened on first use and reopened after an error.
pub struct HttpClient {
    endpoint: Arc<Endpoint>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpClient {
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        Self {
            endpoint,
            sender: None,
        }
    }

    /// POSTs `body` (a pre-serialised JSON request, cheap to clone) to the GraphQL endpoint.
    pub async fn post(
        &mut self,
        body: Bytes,
        auth: Option<&HeaderValue>,
    ) -> Result<Response, HttpError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.try_post(body, auth)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(HttpError::Timeout)
            }
        }
    }

    async fn try_post(
        &mut self,
        body: Bytes,
        auth: Option<&HeaderValue>,
    ) -> Result<Response, HttpError> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(connect(self.endpoint.addr).await?),
        };
        // A connection the server closed shows up here, before we send on it.
        sender.ready().await.map_err(HttpError::Transport)?;

        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.endpoint.path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.endpoint.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_GRAPHQL));
        if let Some(auth) = auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }

        let response = sender
            .send_request(request)
            .await
            .map_err(HttpError::Transport)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(HttpError::Transport)?
            .to_bytes();
        Ok(Response { status, body })
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, HttpError> {
    let stream = TcpStream::connect(addr).await.map_err(HttpError::Connect)?;
    // Small request/response pairs: without this, Nagle + delayed ACK adds ~40 ms stalls.
    stream.set_nodelay(true).map_err(HttpError::Connect)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(HttpError::Transport)?;
    // The connection future does the actual I/O; it ends when the sender is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// `Bearer <token>` as a header value, built once and cloned (cheaply) per request.
pub fn bearer(token: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .context("access token is not a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_graphql_and_websocket_endpoints() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(endpoint.addr, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(endpoint.path, "/graphql");
        assert_eq!(endpoint.ws_url, "ws://127.0.0.1:8000/graphql");

        let endpoint = Endpoint::parse("http://localhost:9000/api/graphql").unwrap();
        assert_eq!(endpoint.ws_url, "ws://localhost:9000/api/graphql");
        assert_eq!(endpoint.host, "localhost:9000");

        assert!(Endpoint::parse("https://127.0.0.1:8000").is_err());
    }
}
