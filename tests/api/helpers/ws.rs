//! A real WebSocket client for both protocols.
use super::*;

/// A real WebSocket client for `/graphql`.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// How a socket ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

/// Long enough for any server-side step; a socket that stays silent longer has hung.
pub const WS_WAIT: Duration = Duration::from_secs(20);

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

pub const MESSAGE_FIELDS: &str =
    "id roomId seq body clientMsgId createdAt editedAt cursor author { id username email }";

impl TestApp {
    pub fn ws_url(&self) -> String {
        format!("{}/graphql", self.url.replacen("http", "ws", 1))
    }

    /// Opens a socket speaking `protocol` (`None`: no subprotocol header).
    pub async fn ws_with(&self, protocol: Option<&str>) -> Ws {
        self.ws_with_headers(protocol, &[]).await
    }

    /// Opens a socket whose upgrade request carries `headers` too (as a browser's would).
    pub async fn ws_with_headers(&self, protocol: Option<&str>, headers: &[(&str, &str)]) -> Ws {
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderName};
        let mut request = self.ws_url().into_client_request().expect("ws request");
        for (name, value) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        if let Some(protocol) = protocol {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", protocol.parse().unwrap());
        }
        // Without Nagle's algorithm, as browsers open theirs: a frame goes out when it is sent,
        // not when the one before it has been acknowledged.
        let (stream, response) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .expect("WebSocket handshake");
        if let Some(protocol) = protocol {
            assert_eq!(
                response
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap()),
                Some(protocol),
                "the server agrees on the subprotocol"
            );
        }
        Ws { stream }
    }

    pub async fn ws(&self) -> Ws {
        self.ws_with(Some(TRANSPORT_WS)).await
    }

    /// A `graphql-transport-ws` socket, acknowledged for `token`, whose client side reads
    /// into a tiny receive buffer: a client that stops reading backs up into the server fast.
    pub async fn ws_slow(&self, token: &str) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let addr: SocketAddr = self.url.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let mut request = self.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", TRANSPORT_WS.parse().unwrap());
        let (stream, _) = tokio_tungstenite::client_async(
            request,
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("WebSocket handshake");
        let mut ws = Ws { stream };
        ws.init(json!({ "token": token })).await;
        ws
    }

    /// A `graphql-transport-ws` socket, acknowledged for `token`.
    pub async fn ws_ready(&self, token: &str) -> Ws {
        let mut ws = self.ws().await;
        ws.init(json!({ "Authorization": format!("Bearer {token}") }))
            .await;
        ws
    }
}

impl Ws {
    /// The raw stream, for tests that drive the socket frame by frame.
    pub fn into_inner(
        self,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        self.stream
    }

    pub async fn send(&mut self, message: Value) {
        self.send_raw(tokio_tungstenite::tungstenite::Message::Text(
            message.to_string().into(),
        ))
        .await;
    }

    pub async fn send_raw(&mut self, message: tokio_tungstenite::tungstenite::Message) {
        use futures_util::SinkExt;
        self.stream.send(message).await.expect("WebSocket send");
    }

    /// The next protocol message, skipping keep-alives. Panics if the socket closes, or if
    /// nothing but keep-alives comes for `WS_WAIT` (the server pings an idle socket: a
    /// message that never comes must not keep a test waiting forever).
    pub async fn recv(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WS_WAIT;
        loop {
            let message = self.recv_any().await;
            match message["type"].as_str() {
                Some("ping") => self.send(json!({ "type": "pong" })).await,
                Some("ka") => {}
                _ => return message,
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing but keep-alives within {WS_WAIT:?}"
            );
        }
    }

    /// The next protocol message, skipping keep-alives, or how the socket ended (`None`:
    /// without a close frame).
    pub async fn recv_or_closed(&mut self) -> Result<Value, Option<Closed>> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let frame = match tokio::time::timeout(WS_WAIT, self.stream.next()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None | Some(Err(_))) => return Err(None),
                Err(_) => panic!("no message from the server within {WS_WAIT:?}"),
            };
            match frame {
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).expect("JSON message");
                    match message["type"].as_str() {
                        Some("ping") => self.send(json!({ "type": "pong" })).await,
                        Some("ka" | "pong") => {}
                        _ => return Ok(message),
                    }
                }
                Message::Close(frame) => {
                    return Err(frame.map(|f| Closed {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    }));
                }
                _ => {}
            }
        }
    }

    /// The next protocol message, keep-alives included.
    pub async fn recv_any(&mut self) -> Value {
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self.next_frame().await {
                Some(Message::Text(text)) => {
                    return serde_json::from_str(&text).expect("JSON message");
                }
                Some(Message::Close(frame)) => panic!("socket closed: {frame:?}"),
                Some(_) => continue,
                None => panic!("socket ended"),
            }
        }
    }

    /// Reads until the server closes the socket; panics on any other protocol message.
    pub async fn closed(&mut self) -> Closed {
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self.next_frame().await {
                Some(Message::Close(Some(frame))) => {
                    return Closed {
                        code: frame.code.into(),
                        reason: frame.reason.to_string(),
                    };
                }
                Some(Message::Close(None)) | None => panic!("closed without a close frame"),
                Some(Message::Text(text)) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if !matches!(message["type"].as_str(), Some("ping" | "ka" | "pong")) {
                        panic!("expected the socket to close, got {message}");
                    }
                }
                Some(_) => continue,
            }
        }
    }

    /// Reads every frame left until the socket ends: its close frame, or `None` if it ended
    /// without one. Also returns the `next` payloads read on the way.
    pub async fn end(&mut self) -> (Vec<Value>, Option<Closed>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut payloads = Vec::new();
        // One deadline for the whole: keep-alive pings must not keep a socket that never
        // ends "alive" forever.
        let deadline = tokio::time::Instant::now() + WS_WAIT;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None | Some(Err(_))) => return (payloads, None),
                Err(_) => panic!("the socket did not end within {WS_WAIT:?}"),
            };
            match frame {
                Message::Close(frame) => {
                    let closed = frame.map(|f| Closed {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    });
                    return (payloads, closed);
                }
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if message["type"] == "next" {
                        payloads.push(message["payload"].clone());
                    }
                }
                _ => {}
            }
        }
    }

    async fn next_frame(&mut self) -> Option<tokio_tungstenite::tungstenite::Message> {
        use futures_util::StreamExt;
        match tokio::time::timeout(WS_WAIT, self.stream.next()).await {
            Ok(frame) => frame.map(|f| f.expect("WebSocket frame")),
            Err(_) => panic!("no message from the server within {WS_WAIT:?}"),
        }
    }

    pub async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = self.recv().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "type": "subscribe",
            "id": id,
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    /// Subscribes to a room's new messages (after `after`, if given).
    pub async fn message_added(&mut self, id: &str, room_id: &str, after: Option<&str>) {
        self.subscribe(
            id,
            &format!("subscription($r: ID!, $a: String) {{ messageAdded(roomId: $r, after: $a) {{ {MESSAGE_FIELDS} }} }}"),
            json!({ "r": room_id, "a": after }),
        )
        .await;
    }

    /// The next `next` payload for `id`; panics on anything else.
    pub async fn next(&mut self, id: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        message["payload"].clone()
    }

    /// The next `next` payload for `id` if one comes within `wait`.
    pub async fn next_within(&mut self, id: &str, wait: Duration) -> Option<Value> {
        let message = tokio::time::timeout(wait, self.recv()).await.ok()?;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        Some(message["payload"].clone())
    }

    /// A round trip: once the pong is back, every message sent before the ping has been
    /// handled, and a subscription sent before it is live.
    pub async fn sync(&mut self) {
        self.send(json!({ "type": "ping" })).await;
        let pong = self.recv().await;
        assert_eq!(pong["type"], "pong", "{pong}");
    }
}
