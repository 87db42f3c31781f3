//! A minimal `graphql-transport-ws` client: connect (optionally from a chosen loopback source
//! address), `connection_init` with the token, `subscribe`, and a receive loop that answers the
//! server's pings. One task owns one socket; nothing is shared between sockets.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::client::Endpoint;

pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// How long connect + upgrade + `connection_ack` may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

const PONG: &str = r#"{"type":"pong"}"#;

/// Why a socket could not be opened or was lost. `kind` is short and stable (reports tally by
/// it); `detail` is for the operator.
#[derive(Debug)]
pub struct WsError {
    pub kind: String,
    pub detail: String,
}

impl WsError {
    fn new(kind: impl Into<String>, detail: impl fmt::Display) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for WsError {}

/// What the receive loop hands to the workload; pings are answered and never reach it.
pub enum Inbound {
    /// A whole `next` frame, still as text: the workload parses only what it needs.
    Next(Utf8Bytes),
    /// An `error` frame (e.g. the subscription was refused), as text.
    Error(Utf8Bytes),
    Complete,
    Closed {
        code: Option<u16>,
        reason: String,
    },
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: Kind,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    ConnectionAck,
    Ping,
    Next,
    Error,
    Complete,
    #[serde(other)]
    Other,
}

/// The source address for the `i`-th socket when spreading over `count` loopback addresses
/// (127.0.0.2, 127.0.0.3, ...), so the bench is not capped by one address's ephemeral ports.
/// `None` (let the OS choose) when `count` is 0 or the server is not on IPv4 loopback.
pub fn source_ip(endpoint: &Endpoint, i: usize, count: usize) -> Option<IpAddr> {
    let loopback = matches!(endpoint.addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
    if count == 0 || !loopback {
        return None;
    }
    let last_octet = 2 + (i % count.min(250)) as u8;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
}

/// One `graphql-transport-ws` connection that has been acknowledged.
pub struct GqlSocket {
    ws: WebSocketStream<TcpStream>,
}

impl GqlSocket {
    /// Connects, upgrades with the `graphql-transport-ws` subprotocol, sends `connection_init`
    /// with the token and waits for `connection_ack`.
    pub async fn open(
        endpoint: &Endpoint,
        source: Option<IpAddr>,
        access_token: &str,
    ) -> Result<Self, WsError> {
        let opening = async {
            let stream = connect(endpoint.addr, source).await?;
            let mut request = endpoint
                .ws_url
                .as_str()
                .into_client_request()
                .map_err(|e| WsError::new("bad URL", e))?;
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
            // tungstenite reserves a 128 KiB read buffer per socket by default; frames here are
            // tiny, and thousands of sockets should not cost the bench gigabytes.
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let (ws, _) = client_async_with_config(request, stream, Some(config))
                .await
                .map_err(upgrade_error)?;
            let mut socket = GqlSocket { ws };
            let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {access_token}") } });
            socket.send(init.to_string()).await?;
            socket.wait_for_ack().await?;
            Ok(socket)
        };
        tokio::time::timeout(OPEN_TIMEOUT, opening)
            .await
            .unwrap_or_else(|_| {
                Err(WsError::new(
                    "timeout",
                    format!("socket not acknowledged within {}s", OPEN_TIMEOUT.as_secs()),
                ))
            })
    }

    /// Subscribes to `query` (`messageAdded` or `roomEvents`) in `room_id` under subscription id
    /// `id`. The protocol has no acknowledgement for `subscribe`; a refusal arrives later as an
    /// `error` frame.
    pub async fn subscribe_messages(
        &mut self,
        id: &str,
        query: &str,
        room_id: &str,
    ) -> Result<(), WsError> {
        let frame = json!({
            "type": "subscribe",
            "id": id,
            "payload": { "query": query, "variables": { "r": room_id } },
        });
        self.send(frame.to_string()).await
    }

    /// The next frame the workload cares about; answers `ping` with `pong` on the way.
    pub async fn recv(&mut self) -> Result<Inbound, WsError> {
        loop {
            let message = match self.ws.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(WsError::new("receive", e)),
                None => {
                    return Ok(Inbound::Closed {
                        code: None,
                        reason: "connection ended".into(),
                    });
                }
            };
            match message {
                Message::Text(text) => {
                    let head: Head =
                        serde_json::from_str(&text).map_err(|e| WsError::new("bad frame", e))?;
                    match head.kind {
                        Kind::Next => return Ok(Inbound::Next(text)),
                        Kind::Error => return Ok(Inbound::Error(text)),
                        Kind::Complete => return Ok(Inbound::Complete),
                        Kind::Ping => self.send(Utf8Bytes::from_static(PONG)).await?,
                        Kind::ConnectionAck | Kind::Other => {}
                    }
                }
                Message::Close(frame) => {
                    return Ok(match frame {
                        Some(frame) => Inbound::Closed {
                            code: Some(frame.code.into()),
                            reason: frame.reason.to_string(),
                        },
                        None => Inbound::Closed {
                            code: None,
                            reason: String::new(),
                        },
                    });
                }
                // WebSocket-level pings are answered by tungstenite itself.
                _ => {}
            }
        }
    }

    /// Sends a normal close frame; errors are irrelevant at that point.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.ws.close(None)).await;
    }

    async fn send(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), WsError> {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| WsError::new("send", e))
    }

    async fn wait_for_ack(&mut self) -> Result<(), WsError> {
        loop {
            let message = match self.ws.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(WsError::new("receive", e)),
                None => {
                    return Err(WsError::new(
                        "closed",
                        "connection ended before connection_ack",
                    ));
                }
            };
            match message {
                Message::Text(text) => {
                    match serde_json::from_str::<Head>(&text).map(|head| head.kind) {
                        Ok(Kind::ConnectionAck) => return Ok(()),
                        Ok(Kind::Ping) => self.send(Utf8Bytes::from_static(PONG)).await?,
                        _ => {
                            return Err(WsError::new(
                                "unexpected frame",
                                format!("before connection_ack: {text}"),
                            ));
                        }
                    }
                }
                Message::Close(frame) => return Err(closed_error(frame.as_ref())),
                _ => {}
            }
        }
    }
}

/// A close code and reason as an error (`4403` = bad token, `44xx` = protocol errors).
pub fn closed_error(frame: Option<&tungstenite::protocol::CloseFrame>) -> WsError {
    match frame {
        Some(frame) => WsError::new(
            format!("closed {}", u16::from(frame.code)),
            frame.reason.as_str(),
        ),
        None => WsError::new("closed", "without a close code"),
    }
}

async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, WsError> {
    let io = |e: std::io::Error| WsError::new(format!("connect ({:?})", e.kind()), e);
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io)?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(io)?;
    }
    let stream = socket.connect(addr).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    Ok(stream)
}

fn upgrade_error(e: tungstenite::Error) -> WsError {
    match e {
        tungstenite::Error::Http(response) => WsError::new(
            format!("upgrade refused (HTTP {})", response.status().as_u16()),
            "the server did not switch to WebSocket on GET /graphql: does it serve subscriptions over graphql-transport-ws yet?",
        ),
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(e),
        ) => WsError::new("subprotocol", format!("{e} (expected {SUBPROTOCOL})")),
        e => WsError::new("upgrade", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_sources_over_loopback_addresses_only_for_loopback_servers() {
        let local = Endpoint::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(source_ip(&local, 0, 3), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(source_ip(&local, 4, 3), Some("127.0.0.3".parse().unwrap()));
        assert_eq!(source_ip(&local, 4, 0), None);
        let v6 = Endpoint::parse("http://[::1]:8000").unwrap();
        assert_eq!(source_ip(&v6, 1, 3), None);
    }

    /// A server without WebSocket support on the endpoint must fail with a clear reason.
    #[tokio::test]
    async fn a_server_that_does_not_upgrade_is_reported_as_such() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // GraphQL over HTTP only: GET /graphql is not a route.
        let router = axum::Router::new().route("/graphql", axum::routing::post(|| async { "{}" }));
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let endpoint = Endpoint::parse(&url).unwrap();
        let e = GqlSocket::open(&endpoint, source_ip(&endpoint, 0, 1), "token")
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind, "upgrade refused (HTTP 405)", "{e}");
        server.abort();
    }
}
