//! The WebSocket message decoder, on arbitrary input, for both subprotocols: it must never
//! panic, its refusals must fit a close frame's reason, and looking for a token in whatever a
//! decoded `connection_init` or `ping` carries must not panic either.
#![no_main]

use chat_server::http::ws::protocol::{ClientMessage, Protocol, decode, token_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for protocol in [Protocol::TransportWs, Protocol::Legacy] {
        match decode(protocol, text) {
            Ok(
                ClientMessage::ConnectionInit(Some(payload)) | ClientMessage::Ping(Some(payload)),
            ) => {
                // The property is that it returns at all, on any payload.
                let _ = token_in(&payload);
            }
            Ok(ClientMessage::Subscribe { id, .. } | ClientMessage::Complete { id }) => {
                assert!(!id.is_empty(), "ids are never empty");
            }
            Ok(_) => {}
            Err(reason) => assert!(
                reason.len() <= 123,
                "close reason of {} bytes",
                reason.len()
            ),
        }
    }
});
