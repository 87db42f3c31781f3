//! One WebSocket connection: the protocol state machine, driving the schema's execution
//! streams.
//!
//! One task per socket, no task per subscription: the task waits on the socket, on every
//! subscription's stream (a `StreamMap`), and on the timers and events that can end the
//! socket (init timeout, token expiry, session revocation, shutdown), whichever comes first.
use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use async_graphql::{ErrorExtensions, Response, ServerError};
use axum::extract::ws::{Message, WebSocket};
use futures_util::{StreamExt, stream::BoxStream};
use tokio::time::sleep_until;
use tokio_stream::{
    StreamMap,
    wrappers::{BroadcastStream, WatchStream, errors::BroadcastStreamRecvError},
};

use super::{
    close::Close,
    protocol::{ClientMessage, Protocol, ServerMessage, decode, encode, token_in},
    sockets::Claim,
};
use crate::{
    error::AppError,
    graphql::guard::Caller,
    http::{HttpState, wire::is_request_error},
    service::auth::{AuthError, TokenError, Viewer},
};

/// A subscription's responses, then `None` when it ends (to send `complete`).
type Results = BoxStream<'static, Option<Response>>;

pub struct Connection {
    socket: WebSocket,
    protocol: Protocol,
    http: HttpState,
    ip: IpAddr,
    /// Set by `connection_init`; `None` until then.
    viewer: Option<Viewer>,
    /// This socket's place among its user's sockets, taken at `connection_init`.
    claim: Option<Claim>,
    /// Before `connection_ack`, when the init timeout closes the socket; after, when the
    /// viewer's token expires (moved by a re-auth ping).
    deadline: Instant,
    subscriptions: StreamMap<String, Results>,
}

/// What handling one event asks of the loop.
type Step = Result<(), Close>;

impl Connection {
    pub fn new(socket: WebSocket, protocol: Protocol, http: HttpState, ip: IpAddr) -> Self {
        Self {
            socket,
            protocol,
            http,
            ip,
            viewer: None,
            claim: None,
            deadline: Instant::now(),
            subscriptions: StreamMap::new(),
        }
    }

    pub async fn run(mut self) {
        metrics::gauge!("ws_connections").increment(1.0);
        let config = self.http.state.config.ws.clone();
        // One timer: the init timeout until `connection_ack`, then the token's expiry.
        self.deadline = Instant::now() + config.init_timeout;
        let mut keepalive =
            tokio::time::interval_at((Instant::now() + config.keepalive).into(), config.keepalive);
        // The sources that rarely fire live across iterations: rebuilt on every pass (one per
        // delivery), each would register and unregister its waker every time.
        let mut revoked = BroadcastStream::new(self.http.state.hub.revoked_sessions());
        let mut resyncs = WatchStream::from_changes(self.http.state.hub.resyncs());
        let shutdown = self.http.state.shutdown.clone();
        let cancelled = shutdown.cancelled();
        let deadline = sleep_until(self.deadline.into());
        tokio::pin!(cancelled, deadline);
        let mut armed = self.deadline;

        let outcome: Result<(), Close> = loop {
            if armed != self.deadline {
                armed = self.deadline;
                deadline.as_mut().reset(armed.into());
            }
            // Biased, deliveries first: a socket woken for a delivery (the common case by
            // far) polls nothing else. The feeds go pending between events and between
            // catch-up batches, so the other branches are never starved for long.
            let step = tokio::select! {
                biased;
                Some((id, result)) = self.subscriptions.next(), if !self.subscriptions.is_empty() => {
                    Box::pin(self.on_result(id, result)).await
                }
                frame = self.socket.recv() => match frame {
                    // Handlers are boxed so that their (large) state is not part of every idle
                    // socket's task, only of the one handling a message.
                    Some(Ok(Message::Text(text))) => Box::pin(self.on_text(&text)).await,
                    Some(Ok(Message::Binary(_))) => Err(Close::BadMessage("binary messages are not supported".into())),
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    Some(Ok(Message::Close(_))) | None => break Ok(()),
                    Some(Err(err)) if is_too_big(&err) => Err(Close::TooBig),
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "WebSocket read failed");
                        break Ok(());
                    }
                },
                () = &mut cancelled => Err(Close::GoingAway),
                () = &mut deadline => match self.viewer {
                    None => Err(Close::InitTimeout),
                    Some(_) => Err(Close::Auth(AuthError::Token(TokenError::Expired))),
                },
                Some(revocation) = revoked.next() => self.on_revocation(revocation),
                Some(_) = resyncs.next() => self.check_session(),
                _ = keepalive.tick(), if self.viewer.is_some() => self.send(ServerMessage::KeepAlive).await,
            };
            if let Err(close) = step {
                break Err(close);
            }
        };
        if let Err(close) = outcome {
            tracing::debug!(code = close.code(), reason = %close.reason(), "closing WebSocket");
            metrics::counter!("ws_closes_total", "code" => close.code().to_string()).increment(1);
            if let (Close::Auth(err), Protocol::Legacy) = (&close, self.protocol)
                && self.viewer.is_none()
            {
                let _ = self
                    .send(ServerMessage::ConnectionError {
                        message: err.message(),
                    })
                    .await;
            }
            if let Some(frame) = close.frame() {
                let _ = tokio::time::timeout(config.send_timeout, self.socket.send(frame)).await;
            }
        }
        metrics::gauge!("ws_subscriptions").decrement(self.subscriptions.len() as f64);
        metrics::gauge!("ws_connections").decrement(1.0);
    }

    async fn on_text(&mut self, text: &str) -> Step {
        match decode(self.protocol, text).map_err(Close::BadMessage)? {
            ClientMessage::ConnectionInit(payload) => self.on_init(payload).await,
            ClientMessage::Ping(payload) => self.on_ping(payload).await,
            ClientMessage::Pong => Ok(()),
            ClientMessage::Subscribe { id, params } => {
                let Some(viewer) = self.viewer.clone() else {
                    return Err(Close::Unauthorized);
                };
                if self.subscriptions.contains_key(&id) {
                    return Err(Close::DuplicateId(id));
                }
                let max = self.http.state.config.ws.max_subscriptions;
                if max > 0 && self.subscriptions.len() >= max {
                    // The socket and its other subscriptions are fine; this one is refused.
                    let refused = AppError::Forbidden("too many subscriptions on this socket");
                    let mut error = ServerError::new(refused.to_string(), None);
                    error.extensions = refused.extend().extensions;
                    return self
                        .send(ServerMessage::Error {
                            id: &id,
                            errors: &[error],
                        })
                        .await;
                }
                let request = params.into_request(
                    Caller {
                        auth: Ok(viewer),
                        ip: self.ip,
                    },
                    &self.http.documents,
                );
                let results = self
                    .http
                    .schema
                    .execute_stream(request)
                    .map(Some)
                    .chain(futures_util::stream::once(async { None }))
                    .boxed();
                self.subscriptions.insert(id, results);
                metrics::gauge!("ws_subscriptions").increment(1.0);
                Ok(())
            }
            ClientMessage::Complete { id } => {
                if self.subscriptions.remove(&id).is_some() {
                    metrics::gauge!("ws_subscriptions").decrement(1.0);
                }
                Ok(())
            }
            ClientMessage::Terminate => Err(Close::Terminated),
        }
    }

    async fn on_init(&mut self, payload: Option<serde_json::Value>) -> Step {
        if self.viewer.is_some() {
            return Err(Close::TooManyInits);
        }
        let viewer = self.authenticate(payload.as_ref())?;
        self.claim = Some(
            self.http
                .sockets
                .claim(viewer.user_id)
                .ok_or(Close::TooManySockets)?,
        );
        self.deadline = expiry(&viewer);
        self.viewer = Some(viewer);
        self.send(ServerMessage::ConnectionAck).await?;
        // Legacy clients expect a keep-alive right away to start their timers.
        if self.protocol == Protocol::Legacy {
            self.send(ServerMessage::KeepAlive).await?;
        }
        Ok(())
    }

    /// A ping may carry a fresh access token for the same user: the socket then lives until
    /// that token expires instead.
    async fn on_ping(&mut self, payload: Option<serde_json::Value>) -> Step {
        if let (Some(current), Some(payload)) = (&self.viewer, payload.as_ref())
            && token_in(payload).is_some()
        {
            let fresh = self.authenticate(Some(payload))?;
            if fresh.user_id != current.user_id {
                return Err(Close::OtherUser);
            }
            self.deadline = expiry(&fresh);
            self.viewer = Some(fresh);
        }
        self.send(ServerMessage::Pong).await
    }

    fn authenticate(&self, payload: Option<&serde_json::Value>) -> Result<Viewer, Close> {
        let token = payload
            .and_then(token_in)
            .ok_or(Close::Auth(AuthError::Missing))?;
        self.http
            .state
            .auth
            .authenticate(token)
            .map_err(Close::Auth)
    }

    async fn on_result(&mut self, id: String, result: Option<Response>) -> Step {
        match result {
            Some(response) if fell_behind(&response) => Err(Close::FellBehind),
            // Refused before it ran (validation, variables): `error`, and no `complete`.
            Some(response) if is_request_error(&response) => {
                self.subscriptions.remove(&id);
                metrics::gauge!("ws_subscriptions").decrement(1.0);
                self.send(ServerMessage::Error {
                    id: &id,
                    errors: &response.errors,
                })
                .await
            }
            Some(response) => {
                metrics::counter!("ws_deliveries_total").increment(1);
                self.send(ServerMessage::Next {
                    id: &id,
                    response: &response,
                })
                .await
            }
            None => {
                metrics::gauge!("ws_subscriptions").decrement(1.0);
                self.send(ServerMessage::Complete { id: &id }).await
            }
        }
    }

    fn on_revocation(&self, revocation: Result<uuid::Uuid, BroadcastStreamRecvError>) -> Step {
        match revocation {
            Ok(session)
                if self
                    .viewer
                    .as_ref()
                    .is_some_and(|v| v.session_id == session) =>
            {
                Err(Close::Auth(AuthError::Revoked))
            }
            Ok(_) => Ok(()),
            // Missed some announcements: ask the revocation set instead.
            Err(BroadcastStreamRecvError::Lagged(_)) => self.check_session(),
        }
    }

    fn check_session(&self) -> Step {
        match &self.viewer {
            Some(viewer)
                if self
                    .http
                    .state
                    .hub
                    .revocations()
                    .is_revoked(&viewer.session_id) =>
            {
                Err(Close::Auth(AuthError::Revoked))
            }
            _ => Ok(()),
        }
    }

    async fn send(&mut self, message: ServerMessage<'_>) -> Step {
        let Some(text) = encode(self.protocol, message) else {
            return Ok(());
        };
        let timeout = self.http.state.config.ws.send_timeout;
        match tokio::time::timeout(timeout, self.socket.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Ok(()),
            // A peer that is gone will be noticed by the next read; nothing to close.
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "WebSocket write failed");
                Ok(())
            }
            // The client stopped reading and the socket's buffers are full: waiting longer
            // would only hold this socket's memory (and its subscriptions) hostage.
            Err(_) => Err(Close::Stalled),
        }
    }
}

/// Whether a subscription's feed ended because it fell behind its room.
fn fell_behind(response: &Response) -> bool {
    response.errors.iter().any(|error| {
        error
            .source
            .as_ref()
            .and_then(|source| source.downcast_ref::<AppError>())
            .is_some_and(|error| matches!(error, AppError::FellBehind))
    })
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

/// When a token with this `exp` (seconds since the epoch) runs out, as an `Instant`.
fn expiry(viewer: &Viewer) -> Instant {
    let left = viewer.expires_at - chrono::Utc::now().timestamp();
    Instant::now() + Duration::from_secs(left.max(0) as u64)
}
