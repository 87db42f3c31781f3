//! GraphQL over WebSocket on `GET /graphql`: `graphql-transport-ws` and the legacy
//! `graphql-ws`. async-graphql's stock handler closes with the wrong codes (1002 on a refused
//! init, 1011 on subscribe-before-ack), replaces duplicate ids silently and has no init
//! timeout, so this module owns the protocol and drives the schema's streams itself.
mod client;
mod close;
pub mod protocol;
mod sockets;

pub use sockets::Sockets;

use std::net::IpAddr;

use axum::{extract::ws::WebSocketUpgrade, response::Response};
use secrecy::SecretString;

use super::HttpState;
use protocol::Protocol;

/// tungstenite reserves 128 KiB per socket for reading by default, and keeps what it reserved
/// for the socket's life. Messages from clients are small (init, subscribe, ping: a few
/// hundred bytes), and a larger one grows the buffer to its size, so an idle socket holds
/// about its largest message.
const READ_BUFFER: usize = 256;

/// `cookie`: the refresh token of a browser session, for a `connection_init` with no token.
pub fn upgrade(
    upgrade: WebSocketUpgrade,
    http: HttpState,
    ip: IpAddr,
    cookie: Option<SecretString>,
) -> Response {
    let max_message = http.state.config.http.max_body_bytes;
    upgrade
        .protocols([Protocol::TRANSPORT_WS, Protocol::LEGACY])
        .read_buffer_size(READ_BUFFER)
        // Write each message out at once rather than collecting 128 KiB first.
        .write_buffer_size(0)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| {
            let protocol = Protocol::from_name(socket.protocol().and_then(|p| p.to_str().ok()));
            // Tracked, so that shutdown waits for every socket to say goodbye (1001).
            let tasks = http.state.tasks.clone();
            tasks.track_future(client::Client::new(socket, protocol, http, ip, cookie).run())
        })
}
