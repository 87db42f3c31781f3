//! `baseline`: the thinnest async-graphql + axum server that chat-bench can measure, run in the
//! same session as the chat server so that the chat server's costs are ratios rather than
//! absolute numbers that depend on the machine.
//!
//! It answers `{ __typename }` on `POST /graphql` with no middleware, and it speaks the part of
//! the contract that `fanout` uses: `register`, `createRoom`, `joinRoom` and `sendMessage`
//! (no auth, no validation, no database: tokens are dummies, messages live in memory), and
//! `messageAdded` over WebSocket through async-graphql-axum's stock subscription handler. What
//! the chat server adds to a delivery on top of that (its own protocol layer, membership,
//! seq-ordered feeds, LISTEN/NOTIFY) is the difference between the two `fanout` runs.
//!
//! With `prepared` frames, `messageAdded` skips GraphQL altogether: each message's `next`
//! payload is serialised once, for the document `fanout` subscribes with, and every socket
//! writes it as it is. No server that resolves a subscription per subscriber does less per
//! delivery, so this is the floor that the machine and the load generator allow.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::{Context as _, Result};
use async_graphql::{Context, ID, InputObject, Object, Schema, SimpleObject, Subscription};
use async_graphql_axum::{GraphQL, GraphQLSubscription};
use axum::Router;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::post_service;
use futures_util::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Messages held for subscribers that are busy; one that falls further behind misses some
/// (which `fanout` reports as lost).
const ROOM_BUFFER: usize = 1024;

pub struct Query;

#[Object]
impl Query {
    /// A schema needs at least one query field; `__typename` is what the benchmark asks for.
    async fn ok(&self) -> bool {
        true
    }
}

/// Where sent messages go, and the last seq handed out. One channel for all rooms (`fanout`
/// uses one); the stock subscription filters by room, prepared frames do not.
struct Rooms {
    /// To the stock subscription streams.
    messages: broadcast::Sender<Message>,
    /// With prepared frames, instead: each message's `next` payload, serialised once.
    payloads: Option<broadcast::Sender<Arc<str>>>,
    seq: AtomicI64,
}

#[derive(Clone, SimpleObject)]
struct Message {
    id: ID,
    room_id: ID,
    seq: i64,
    body: String,
}

#[derive(SimpleObject)]
struct Id {
    id: ID,
}

#[derive(SimpleObject)]
#[graphql(name = "AuthPayload")]
struct Session {
    access_token: String,
    user: Id,
}

// The contract's input types, whole (GraphQL refuses unknown input fields); the baseline
// checks none of them.
#[allow(dead_code)]
#[derive(InputObject)]
struct RegisterInput {
    email: String,
    username: String,
    password: String,
}

#[allow(dead_code)]
#[derive(InputObject)]
struct CreateRoomInput {
    name: String,
    is_private: Option<bool>,
}

#[derive(InputObject)]
struct SendMessageInput {
    room_id: ID,
    body: String,
    client_msg_id: Option<String>,
}

pub struct Mutation;

#[Object]
impl Mutation {
    async fn register(&self, input: RegisterInput) -> Session {
        Session {
            access_token: format!("baseline-{}", input.username),
            user: Id {
                id: ID(input.username),
            },
        }
    }

    async fn create_room(&self, input: CreateRoomInput) -> Id {
        Id { id: ID(input.name) }
    }

    async fn join_room(&self, room_id: ID) -> Id {
        Id { id: room_id }
    }

    async fn send_message(&self, ctx: &Context<'_>, input: SendMessageInput) -> Message {
        let rooms = ctx.data_unchecked::<Rooms>();
        let seq = rooms.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let message = Message {
            id: ID(input.client_msg_id.unwrap_or_else(|| seq.to_string())),
            room_id: input.room_id,
            seq,
            body: input.body,
        };
        // No receivers is fine: nobody is subscribed yet.
        match &rooms.payloads {
            Some(payloads) => {
                let data = serde_json::json!({ "data": { "messageAdded": { "seq": seq, "body": message.body } } });
                let _ = payloads.send(data.to_string().into());
            }
            None => {
                let _ = rooms.messages.send(message.clone());
            }
        }
        message
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
    ) -> impl Stream<Item = Message> + use<> {
        let receiver = ctx.data_unchecked::<Rooms>().messages.subscribe();
        tokio_stream::wrappers::BroadcastStream::new(receiver).filter_map(move |message| {
            let message = message.ok().filter(|m| m.room_id == room_id);
            async move { message }
        })
    }
}

/// The baseline's routes; with `prepared`, subscriptions get prepared frames (see the top).
pub fn router(prepared: bool) -> Router {
    let payloads = prepared.then(|| broadcast::channel(ROOM_BUFFER).0);
    let rooms = Rooms {
        messages: broadcast::channel(ROOM_BUFFER).0,
        payloads: payloads.clone(),
        seq: AtomicI64::new(0),
    };
    let schema = Schema::build(Query, Mutation, Subscription)
        .data(rooms)
        .finish();
    let http = post_service(GraphQL::new(schema.clone()));
    let route = match payloads {
        Some(payloads) => {
            http.get(move |ws: WebSocketUpgrade| async move { prepared_upgrade(ws, &payloads) })
        }
        None => http.get_service(GraphQLSubscription::new(schema)),
    };
    Router::new().route("/graphql", route)
}

fn prepared_upgrade(ws: WebSocketUpgrade, payloads: &broadcast::Sender<Arc<str>>) -> Response {
    let payloads = payloads.subscribe();
    // The chat server's buffer sizes: tungstenite's default 128 KiB read buffer is zeroed on
    // every read, which would cost the floor more than the chat server pays.
    ws.protocols(["graphql-transport-ws"])
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| prepared_socket(socket, payloads))
}

/// `graphql-transport-ws` as far as `fanout` needs it: acknowledges `connection_init`,
/// answers pings, and after a `subscribe` sends every prepared payload under its id.
async fn prepared_socket(mut socket: WebSocket, mut payloads: broadcast::Receiver<Arc<str>>) {
    let mut id: Option<String> = None;
    loop {
        let reply = tokio::select! {
            payload = payloads.recv(), if id.is_some() => match payload {
                Ok(payload) => {
                    let id = id.as_deref().unwrap_or_default();
                    format!(r#"{{"id":{id},"type":"next","payload":{payload}}}"#)
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            frame = socket.recv() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(text))) => text,
                    // Pings are answered by the WebSocket layer.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                    _ => break,
                };
                let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else { break };
                match message["type"].as_str() {
                    Some("connection_init") => r#"{"type":"connection_ack"}"#.to_owned(),
                    Some("ping") => r#"{"type":"pong"}"#.to_owned(),
                    Some("subscribe") => {
                        // Kept as JSON, ready to write.
                        id = Some(message["id"].to_string());
                        continue;
                    }
                    _ => continue,
                }
            }
        };
        if socket.send(WsMessage::Text(reply.into())).await.is_err() {
            break;
        }
    }
}

/// Serves on `listener` until the process is interrupted (Ctrl-C).
pub async fn serve(listener: TcpListener, prepared: bool) -> Result<()> {
    axum::serve(listener, router(prepared))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("baseline server failed")
}

/// Binds `addr` and serves; prints the address on stderr once listening.
pub async fn run(addr: SocketAddr, prepared: bool) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!(
        "baseline GraphQL server on http://{}/graphql (Ctrl-C to stop)",
        listener.local_addr()?
    );
    serve(listener, prepared).await
}
