//! One WebSocket client, from upgrade to close: the protocol state machine, driving the
//! schema's execution streams.
//!
//! One task per socket, no task per subscription: the task waits on the events that end the
//! socket (shutdown, its session's revocation, the init timeout or the token's expiry) first,
//! then on the socket and every subscription's stream (a `StreamMap`), which take turns. A
//! client that floods the socket, or a subscription that always has something to deliver
//! (a long replay), cannot hold off the socket's closing, nor each other.
//!
//! Every close the server starts finishes the close handshake (`finish`): the close frame
//! goes out, and what the client still sends is read and dropped until its own close frame
//! arrives. Dropping a connection with unread data makes the kernel answer with a reset, and
//! the client would see 1006 instead of the code that says why.
use std::{
    net::IpAddr,
    pin::Pin,
    time::{Duration, Instant},
};

use async_graphql::parser::types::OperationType;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{StreamExt, stream::BoxStream};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::sleep_until;
use tokio_stream::StreamMap;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::{
    close::Close,
    protocol::{ClientMessage, Payload, Protocol, ServerMessage, decode, encode, token_in},
    sockets::Claim,
};
use crate::{
    error::AppError,
    graphql::{
        Established,
        guard::Caller,
        pipeline::selected_operation,
        shared::{Delivery, Selection},
    },
    http::{
        HttpState,
        wire::{RequestParams, is_request_error},
    },
    service::{
        auth::{Auth, AuthError, SessionWatch, TokenError, Viewer},
        chat::Subscriber,
    },
};

/// A subscription's results, then `None` when it ends (to send `complete`).
type Results = BoxStream<'static, Option<Delivery>>;

/// Operations of one socket that may work on the database at once (a query or mutation, or a
/// subscription replaying history); the others wait their turn. A replay holds a batch of
/// messages in memory (`service::chat::feed`) and every turn may hold a pool connection, so
/// this bounds what one socket can make the server hold, and read, at a time.
const TURNS_PER_SOCKET: usize = 4;

/// The longest a socket waits for a new subscription to be established before it reads on.
const ESTABLISHING: Duration = Duration::from_secs(5);

pub struct Client {
    socket: WebSocket,
    protocol: Protocol,
    http: HttpState,
    ip: IpAddr,
    /// The refresh cookie of a browser session, for a `connection_init` without a token.
    cookie: Option<SecretString>,
    /// Set by `connection_init`; `None` until then.
    session: Option<Session>,
    /// This socket's place among its user's sockets, taken at `connection_init`.
    claim: Option<Claim>,
    /// Before `connection_ack`, when the init timeout closes the socket; after, when the
    /// viewer's token expires (moved by a re-auth ping).
    deadline: Instant,
    subscriptions: StreamMap<String, Results>,
    /// What this socket's subscriptions share (turns at replaying; falling behind).
    subscriber: Subscriber,
}

/// The signed-in side of a socket: who, and the watch that ends it when the session is revoked.
struct Session {
    viewer: Viewer,
    _watch: SessionWatch,
    revoked: Pin<Box<WaitForCancellationFutureOwned>>,
}

/// What handling one event asks of the loop.
type Step = Result<(), Close>;

/// What woke the socket's task.
// One at a time, handled at once: boxing a delivery would cost an allocation per delivery.
#[allow(clippy::large_enum_variant)]
enum Event {
    /// Shutdown, the session's revocation, the init timeout or the token's expiry.
    Ends(Close),
    Frame(Option<Result<Message, axum::Error>>),
    Result(String, Option<Delivery>),
    KeepAlive,
}

/// The next frame, delivery or keep-alive, whichever is ready; when several are, chosen at
/// random, so that neither a client that sends back to back nor a subscription that always
/// has something to deliver (a long replay) holds the other off.
async fn io(
    socket: &mut WebSocket,
    subscriptions: &mut StreamMap<String, Results>,
    keepalive: &mut tokio::time::Interval,
    signed_in: bool,
) -> Event {
    tokio::select! {
        frame = socket.recv() => Event::Frame(frame),
        Some((id, result)) = subscriptions.next(), if !subscriptions.is_empty() => {
            Event::Result(id, result)
        }
        _ = keepalive.tick(), if signed_in => Event::KeepAlive,
    }
}

impl Client {
    pub fn new(
        socket: WebSocket,
        protocol: Protocol,
        http: HttpState,
        ip: IpAddr,
        cookie: Option<SecretString>,
    ) -> Self {
        Self {
            socket,
            protocol,
            http,
            ip,
            cookie,
            session: None,
            claim: None,
            deadline: Instant::now(),
            subscriptions: StreamMap::new(),
            subscriber: Subscriber::new(TURNS_PER_SOCKET),
        }
    }

    pub async fn run(mut self) {
        metrics::gauge!("ws_connections").increment(1.0);
        let (init_timeout, every) = {
            let config = &self.http.state.config.ws;
            (config.init_timeout, config.keepalive)
        };
        // One timer: the init timeout until `connection_ack`, then the token's expiry.
        self.deadline = Instant::now() + init_timeout;
        let mut keepalive = tokio::time::interval_at((Instant::now() + every).into(), every);
        // A token of this socket's own: polling it costs nothing shared with other sockets.
        let shutdown = self.http.state.shutdown.child_token().cancelled_owned();
        let fell_behind = self.subscriber.fell_behind();
        let deadline = sleep_until(self.deadline.into());
        tokio::pin!(shutdown, fell_behind, deadline);
        let mut armed = self.deadline;

        let outcome: Result<(), Close> = loop {
            if armed != self.deadline {
                armed = self.deadline;
                deadline.as_mut().reset(armed.into());
            }
            // Whatever ends the socket first; then the socket and the subscriptions, in turn.
            let signed_in = self.session.is_some();
            let event = tokio::select! {
                biased;
                () = &mut shutdown => Event::Ends(Close::GoingAway),
                () = revoked(&mut self.session) => Event::Ends(Close::Auth(AuthError::Revoked)),
                () = &mut fell_behind => Event::Ends(Close::FellBehind),
                () = &mut deadline => Event::Ends(if signed_in {
                    Close::Auth(AuthError::Token(TokenError::Expired))
                } else {
                    Close::InitTimeout
                }),
                event = io(&mut self.socket, &mut self.subscriptions, &mut keepalive, signed_in) => event,
            };
            // Handlers are boxed so that their (large) state is not part of every idle socket's
            // task, only of the one handling a message; and they take what they handle by
            // value, so that the event itself is not kept across their await either.
            let step = match event {
                Event::Ends(close) => Err(close),
                Event::Frame(Some(Ok(Message::Text(text)))) => Box::pin(self.on_text(text)).await,
                Event::Frame(Some(Ok(Message::Binary(_)))) => Err(Close::BadMessage(
                    "binary messages are not supported".into(),
                )),
                // Pings are answered by the WebSocket layer itself.
                Event::Frame(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => Ok(()),
                Event::Frame(Some(Ok(Message::Close(_))) | None) => break Ok(()),
                Event::Frame(Some(Err(err))) if is_too_big(&err) => Err(Close::TooBig),
                Event::Frame(Some(Err(err))) => {
                    tracing::debug!(error = %err, "WebSocket read failed");
                    break Ok(());
                }
                Event::Result(id, result) => Box::pin(self.on_result(id, result)).await,
                Event::KeepAlive => Box::pin(self.send(ServerMessage::KeepAlive)).await,
            };
            if let Err(close) = step {
                break Err(close);
            }
        };
        // The subscriptions end now, not after the goodbye: their feeds stop reading.
        metrics::gauge!("ws_subscriptions").decrement(self.subscriptions.len() as f64);
        self.subscriptions.clear();
        // Boxed: the goodbye's state is needed once, not by every idle socket's task.
        Box::pin(self.finish(outcome)).await;
        metrics::gauge!("ws_connections").decrement(1.0);
    }

    /// Says goodbye: the close frame (with a legacy `connection_error` first for a refused
    /// init), then everything the client still sends is read and dropped until its close frame
    /// comes back. When the client closed first, this reads the last of it and sends the
    /// reply. All within `WS_SEND_TIMEOUT_SECONDS`: a client that reads nothing for that long
    /// is gone, as everywhere else.
    async fn finish(&mut self, outcome: Result<(), Close>) {
        let deadline = tokio::time::Instant::now() + self.http.state.config.ws.send_timeout;
        if let Err(close) = &outcome {
            tracing::debug!(code = close.code(), reason = %close.reason(), "closing WebSocket");
            metrics::counter!("ws_closes_total", "code" => close.code().to_string()).increment(1);
            if let (Close::Auth(err), Protocol::Legacy, None) =
                (close, self.protocol, &self.session)
            {
                let _ = self
                    .send(ServerMessage::ConnectionError {
                        message: err.message(),
                    })
                    .await;
            }
            let Some(frame) = close.frame() else {
                // Stalled or lost: nothing more gets through.
                return;
            };
            let sent = tokio::time::timeout_at(deadline, self.socket.send(frame)).await;
            // After a message over the limit nothing more is read: tungstenite would go on
            // collecting that message, of whatever size its header claims. A client still
            // sending it may see a reset instead of 1009.
            if !matches!(sent, Ok(Ok(()))) || matches!(close, Close::TooBig) {
                return;
            }
        }
        let drained = async {
            while let Some(Ok(frame)) = self.socket.recv().await {
                if let Message::Close(_) = frame {
                    // Reading on flushes tungstenite's reply (when the client closed first)
                    // and then ends.
                    while let Some(Ok(_)) = self.socket.recv().await {}
                    break;
                }
            }
        };
        let _ = tokio::time::timeout_at(deadline, drained).await;
    }

    async fn on_text(&mut self, text: Utf8Bytes) -> Step {
        match decode(self.protocol, &text).map_err(Close::BadMessage)? {
            ClientMessage::ConnectionInit(payload) => self.on_init(payload).await,
            ClientMessage::Ping(payload) => self.on_ping(payload).await,
            ClientMessage::Pong => Ok(()),
            ClientMessage::Subscribe { id, params } => self.on_subscribe(id, params).await,
            ClientMessage::Complete { id } => {
                if self.subscriptions.remove(&id).is_some() {
                    metrics::gauge!("ws_subscriptions").decrement(1.0);
                }
                Ok(())
            }
            ClientMessage::Terminate => Err(Close::Terminated),
        }
    }

    async fn on_subscribe(&mut self, id: String, params: RequestParams) -> Step {
        let Some(session) = &self.session else {
            return Err(Close::Unauthorized);
        };
        // The viewer was checked at `connection_init`; what runs now must still be allowed
        // now. (The loop closes the socket on a revocation or at expiry, but this message may
        // have been read first.)
        self.http
            .state
            .auth
            .recheck(&session.viewer)
            .map_err(Close::Auth)?;
        if self.subscriptions.contains_key(&id) {
            return Err(Close::DuplicateId(id));
        }
        let max = self.http.state.config.ws.max_subscriptions;
        if max > 0 && self.subscriptions.len() >= max {
            // The socket and its other subscriptions are fine; this one is refused.
            let refused = AppError::Forbidden("too many subscriptions on this socket");
            return self
                .send(ServerMessage::Error {
                    id: &id,
                    errors: &[refused.to_server_error()],
                })
                .await;
        }
        let caller = Caller {
            auth: Ok(session.viewer.clone()),
            ip: self.ip,
            // Nothing over the socket opens a session, nor sets a cookie.
            user_agent: None,
            refresh_cookie: None,
        };
        let mut request = match params.into_request(caller, &self.http.documents) {
            Ok(request) => request.data(self.subscriber.clone()),
            Err(refused) => {
                return self
                    .send(ServerMessage::Error {
                        id: &id,
                        errors: &refused.errors,
                    })
                    .await;
            }
        };
        let results = if selected_operation(&mut request)
            .is_some_and(|op| op.ty == OperationType::Subscription)
        {
            // Driven here until it is established (or fails), before the next frame is
            // read: see `Established`. Bounded, so that a database that hangs does not
            // keep the socket from its closing events.
            let established = Established::default();
            let selection = Selection::of(&request);
            let request = request.data(established.clone()).data(selection.clone());
            let mut results = selection
                .deliveries(self.http.schema.execute_stream(request))
                .fuse();
            let first = tokio::time::timeout(ESTABLISHING, async {
                tokio::select! {
                    () = established.0.cancelled() => None,
                    first = results.next() => first,
                }
            })
            .await
            .ok()
            .flatten();
            // Boxed: a result that comes before the subscription is established (mostly a
            // refusal) is rare, and inline it would be part of every subscription's state.
            ending(first.map(Box::new), results)
        } else {
            // A query or mutation takes one of the socket's turns while it runs.
            let (schema, subscriber) = (self.http.schema.clone(), self.subscriber.clone());
            ending(
                None,
                futures_util::stream::once(async move {
                    let _turn = subscriber.turn().await;
                    Delivery::Response {
                        response: schema.execute(request).await,
                        shared: None,
                    }
                }),
            )
        };
        self.subscriptions.insert(id, results);
        metrics::gauge!("ws_subscriptions").increment(1.0);
        Ok(())
    }

    async fn on_init(&mut self, payload: Option<serde_json::Value>) -> Step {
        if self.session.is_some() {
            return Err(Close::TooManyInits);
        }
        let auth = &self.http.state.auth;
        let viewer = authenticate(auth, payload.as_ref(), self.cookie.as_ref()).await?;
        self.claim = Some(
            self.http
                .sockets
                .claim(viewer.user_id)
                .ok_or(Close::TooManySockets)?,
        );
        self.sign_in(viewer);
        self.send(ServerMessage::ConnectionAck).await?;
        // Legacy clients expect a keep-alive right away to start their timers.
        if self.protocol == Protocol::Legacy {
            self.send(ServerMessage::KeepAlive).await?;
        }
        Ok(())
    }

    /// A ping may carry a fresh access token for the same user: the socket then lives until
    /// that token expires instead (and follows that token's session).
    async fn on_ping(&mut self, payload: Option<serde_json::Value>) -> Step {
        if let (Some(current), Some(payload)) = (&self.session, payload.as_ref())
            && token_in(payload).is_some()
        {
            let fresh = authenticate(&self.http.state.auth, Some(payload), None).await?;
            if fresh.user_id != current.viewer.user_id {
                return Err(Close::OtherUser);
            }
            self.sign_in(fresh);
        }
        self.send(ServerMessage::Pong).await
    }

    /// From now on the socket acts for `viewer`, until its token expires or its session ends.
    fn sign_in(&mut self, viewer: Viewer) {
        self.deadline = expiry(&viewer);
        let watch = self.http.state.auth.watch_session(&viewer);
        self.session = Some(Session {
            revoked: Box::pin(watch.revoked()),
            _watch: watch,
            viewer,
        });
    }

    async fn on_result(&mut self, id: String, result: Option<Delivery>) -> Step {
        match result {
            // Refused before it ran (validation, variables): `error`, and no `complete`.
            Some(Delivery::Response { response, .. }) if is_request_error(&response) => {
                self.subscriptions.remove(&id);
                metrics::gauge!("ws_subscriptions").decrement(1.0);
                self.send(ServerMessage::Error {
                    id: &id,
                    errors: &response.errors,
                })
                .await
            }
            Some(Delivery::Response { response, shared }) => {
                metrics::counter!("ws_deliveries_total").increment(1);
                // Errors and extensions are this response's own.
                let shared =
                    shared.filter(|_| response.errors.is_empty() && response.extensions.is_empty());
                let payload = match &shared {
                    Some(answer) => {
                        Payload::Serialized(answer.payload(|| Payload::serialize(&response)))
                    }
                    None => Payload::of(&response),
                };
                self.send(ServerMessage::Next { id: &id, payload }).await
            }
            Some(Delivery::Answered(payload)) => {
                metrics::counter!("ws_deliveries_total").increment(1);
                let payload = Payload::Serialized(&payload);
                self.send(ServerMessage::Next { id: &id, payload }).await
            }
            None => {
                // Gone before `complete` goes out: the client may reuse the id as soon as it
                // reads it, before the map would drop the ended stream by itself.
                self.subscriptions.remove(&id);
                metrics::gauge!("ws_subscriptions").decrement(1.0);
                self.send(ServerMessage::Complete { id: &id }).await
            }
        }
    }

    async fn send(&mut self, message: ServerMessage<'_>) -> Step {
        let Some(text) = encode(self.protocol, message) else {
            return Ok(());
        };
        let timeout = self.http.state.config.ws.send_timeout;
        match tokio::time::timeout(timeout, self.socket.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Ok(()),
            // The peer is gone. Carrying on would keep the subscriptions running (a replay
            // reading the database) for nobody.
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "WebSocket write failed");
                Err(Close::Lost)
            }
            // The client stopped reading and the socket's buffers are full: waiting longer
            // would only hold this socket's memory (and its subscriptions) hostage.
            Err(_) => Err(Close::Stalled),
        }
    }
}

/// A subscription's results as the socket takes them: `first` (what establishing it gave
/// already, if anything), the `rest`, then `None` to send `complete`. One allocation per
/// subscription, of what an idle one holds: each kind of operation is boxed apart, so that a
/// subscription's state is not sized by a query's execution.
fn ending(
    first: Option<Box<Delivery>>,
    rest: impl futures_util::Stream<Item = Delivery> + Send + 'static,
) -> Results {
    futures_util::stream::iter(first)
        .map(|first| *first)
        .chain(rest)
        .map(Some)
        .chain(futures_util::stream::once(std::future::ready(None)))
        .boxed()
}

/// Whether a read failed on a message over the size limit. The error is tungstenite's, under
/// axum's; the version must be axum's (a test fails if it is not: the close code is 1009).
fn is_too_big(err: &axum::Error) -> bool {
    use std::error::Error;
    matches!(
        err.source()
            .and_then(|source| source.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// When a token with this `exp` (seconds since the epoch) is refused, as an `Instant`: the same
/// instant as for HTTP (`service::auth::is_expired`), to the millisecond.
fn expiry(viewer: &Viewer) -> Instant {
    let left = viewer.expires_at.saturating_mul(1000) - chrono::Utc::now().timestamp_millis();
    Instant::now() + Duration::from_millis(left.max(0) as u64)
}

/// The viewer of a `connection_init` (or re-auth `ping`) payload's token; without one, of
/// the browser session's refresh cookie, which stands for an access token issued now.
async fn authenticate(
    auth: &Auth,
    payload: Option<&serde_json::Value>,
    cookie: Option<&SecretString>,
) -> Result<Viewer, Close> {
    let viewer = match (payload.and_then(token_in), cookie) {
        (Some(token), _) => auth.authenticate(token).await,
        (None, Some(cookie)) => {
            auth.authenticate_refresh_token(cookie.expose_secret())
                .await
        }
        (None, None) => Err(AuthError::Missing),
    };
    viewer.map_err(Close::from)
}

/// Completes when the socket's session is revoked; never before `connection_init`.
async fn revoked(session: &mut Option<Session>) {
    match session {
        Some(session) => session.revoked.as_mut().await,
        None => std::future::pending().await,
    }
}
