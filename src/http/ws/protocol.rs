//! The two WebSocket subprotocols, decoded into one set of messages and encoded back.
//!
//! `graphql-transport-ws` is the protocol of the `graphql-ws` library; `graphql-ws` is the
//! legacy one of `subscriptions-transport-ws` (yes, the names are crossed). They differ in
//! message names and in keep-alive; the connection logic is the same.
use async_graphql::{Response, ServerError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};

use crate::{
    http::{
        parse_bearer,
        wire::{RequestParams, WireResponse},
    },
    text::cut,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws` (graphql-ws library).
    TransportWs,
    /// `graphql-ws` (legacy subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    pub const TRANSPORT_WS: &'static str = "graphql-transport-ws";
    pub const LEGACY: &'static str = "graphql-ws";

    /// The negotiated subprotocol; a client that names none gets the current protocol.
    pub fn from_name(name: Option<&str>) -> Self {
        match name {
            Some(Self::LEGACY) => Self::Legacy,
            _ => Self::TransportWs,
        }
    }
}

pub enum ClientMessage {
    ConnectionInit(Option<Value>),
    Ping(Option<Value>),
    Pong,
    Subscribe {
        id: String,
        params: RequestParams,
    },
    Complete {
        id: String,
    },
    /// Legacy `connection_terminate`.
    Terminate,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

/// The longest subscription id accepted, in bytes. Every `next` repeats the id, so a client
/// that chose it long would have the server hold and send its bytes again and again.
pub const MAX_ID_BYTES: usize = 128;

/// Decodes a text frame; the error is the close reason (4400).
pub fn decode(protocol: Protocol, text: &str) -> Result<ClientMessage, String> {
    let raw: RawMessage = serde_json::from_str(text)
        .map_err(|_| "invalid message: not a JSON message object".to_owned())?;
    let id = || match &raw.id {
        Some(id) if id.len() > MAX_ID_BYTES => Err(format!(
            "invalid message: an id is at most {MAX_ID_BYTES} bytes"
        )),
        Some(id) if !id.is_empty() => Ok(id.clone()),
        _ => Err(format!(
            "invalid message: {} needs an id",
            truncate(&raw.kind)
        )),
    };
    let subscribe = || -> Result<ClientMessage, String> {
        let payload = raw
            .payload
            .clone()
            .ok_or("invalid message: subscribe needs a payload")?;
        let params = serde_json::from_value(payload)
            .map_err(|_| "invalid message: the payload is not a GraphQL request".to_owned())?;
        Ok(ClientMessage::Subscribe { id: id()?, params })
    };
    match (protocol, raw.kind.as_str()) {
        (_, "connection_init") => Ok(ClientMessage::ConnectionInit(raw.payload)),
        (Protocol::TransportWs, "ping") => Ok(ClientMessage::Ping(raw.payload)),
        (Protocol::TransportWs, "pong") => Ok(ClientMessage::Pong),
        (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => subscribe(),
        (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
            Ok(ClientMessage::Complete { id: id()? })
        }
        (Protocol::Legacy, "connection_terminate") => Ok(ClientMessage::Terminate),
        (_, other) => Err(format!("invalid message type {:?}", truncate(other))),
    }
}

/// A client-chosen message type, short enough to quote in a close reason (123 bytes).
fn truncate(s: &str) -> &str {
    cut(s, 40)
}

pub enum ServerMessage<'a> {
    ConnectionAck,
    /// Keep-alive: `ping` (graphql-transport-ws) or `ka` (legacy).
    KeepAlive,
    Pong,
    Next {
        id: &'a str,
        payload: Payload<'a>,
    },
    Error {
        id: &'a str,
        errors: &'a [ServerError],
    },
    Complete {
        id: &'a str,
    },
    /// Legacy only: why `connection_init` was refused, sent before closing.
    ConnectionError {
        message: &'a str,
    },
}

/// A result's payload: a response, or one serialized already (the same for every socket that
/// shares it: `graphql::shared`).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Payload<'a> {
    Response(WireResponse<'a>),
    Serialized(&'a RawValue),
}

impl<'a> Payload<'a> {
    pub fn of(response: &'a Response) -> Self {
        Self::Response(WireResponse::new(response))
    }

    /// What `Serialized` holds, for a response.
    pub fn serialize(response: &Response) -> Box<RawValue> {
        serde_json::value::to_raw_value(&WireResponse::new(response))
            .expect("responses always serialize")
    }
}

#[derive(Serialize)]
struct Outgoing<'a, P: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

fn json<P: Serialize>(kind: &'static str, id: Option<&str>, payload: Option<P>) -> String {
    serde_json::to_string(&Outgoing { kind, id, payload })
        .expect("protocol messages always serialize")
}

const NO_PAYLOAD: Option<()> = None;

/// Encodes a message for `protocol`; `None` when the protocol has no such message.
pub fn encode(protocol: Protocol, message: ServerMessage<'_>) -> Option<String> {
    use Protocol::*;
    Some(match (protocol, message) {
        (_, ServerMessage::ConnectionAck) => json("connection_ack", None, NO_PAYLOAD),
        (TransportWs, ServerMessage::KeepAlive) => json("ping", None, NO_PAYLOAD),
        (Legacy, ServerMessage::KeepAlive) => json("ka", None, NO_PAYLOAD),
        (TransportWs, ServerMessage::Pong) => json("pong", None, NO_PAYLOAD),
        (Legacy, ServerMessage::Pong) => return None,
        (TransportWs, ServerMessage::Next { id, payload }) => json("next", Some(id), Some(payload)),
        (Legacy, ServerMessage::Next { id, payload }) => json("data", Some(id), Some(payload)),
        (_, ServerMessage::Error { id, errors }) => json("error", Some(id), Some(errors)),
        (_, ServerMessage::Complete { id }) => json("complete", Some(id), NO_PAYLOAD),
        (TransportWs, ServerMessage::ConnectionError { .. }) => return None,
        (Legacy, ServerMessage::ConnectionError { message }) => json(
            "connection_error",
            None,
            Some(serde_json::json!({ "message": message })),
        ),
    })
}

/// The access token in a `connection_init` (or re-auth `ping`) payload, in any of the shapes
/// clients send it: `{"Authorization": "Bearer T"}` (any case), `{"token": "T"}`,
/// `{"authToken": "T"}`, or `{"headers": {"Authorization": "Bearer T"}}`.
pub fn token_in(payload: &Value) -> Option<&str> {
    let object = payload.as_object()?;
    bearer(object)
        .or_else(|| object.get("token").and_then(Value::as_str))
        .or_else(|| object.get("authToken").and_then(Value::as_str))
        .or_else(|| {
            object
                .get("headers")
                .and_then(Value::as_object)
                .and_then(bearer)
        })
}

/// `Bearer T` under an `authorization` key of any case.
fn bearer(object: &serde_json::Map<String, Value>) -> Option<&str> {
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())
        .and_then(parse_bearer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_found_in_every_documented_shape() {
        for payload in [
            json!({ "Authorization": "Bearer T" }),
            json!({ "authorization": "Bearer T" }),
            json!({ "token": "T" }),
            json!({ "authToken": "T" }),
            json!({ "headers": { "Authorization": "Bearer T" } }),
            json!({ "headers": { "authorization": "bearer T" } }),
        ] {
            assert_eq!(token_in(&payload), Some("T"), "{payload}");
        }
        for payload in [
            json!({}),
            json!("T"),
            json!({ "Authorization": "Basic T" }),
            json!(null),
        ] {
            assert_eq!(token_in(&payload), None, "{payload}");
        }
    }

    #[test]
    fn ids_are_bounded() {
        let subscribe = |id: &str| {
            decode(
                Protocol::TransportWs,
                &serde_json::json!({ "type": "subscribe", "id": id, "payload": { "query": "{ a }" } })
                    .to_string(),
            )
        };
        assert!(subscribe(&"é".repeat(MAX_ID_BYTES / 2)).is_ok());
        assert_eq!(
            subscribe(&"é".repeat(MAX_ID_BYTES / 2 + 1)).err().unwrap(),
            "invalid message: an id is at most 128 bytes"
        );
        let complete = serde_json::json!({ "type": "complete", "id": "x".repeat(10_000) });
        assert!(decode(Protocol::TransportWs, &complete.to_string()).is_err());
    }

    #[test]
    fn messages_are_decoded_per_protocol() {
        let subscribe = r#"{"type":"subscribe","id":"1","payload":{"query":"{ __typename }"}}"#;
        assert!(matches!(
            decode(Protocol::TransportWs, subscribe),
            Ok(ClientMessage::Subscribe { .. })
        ));
        assert!(decode(Protocol::Legacy, subscribe).is_err());
        let start = r#"{"type":"start","id":"1","payload":{"query":"{ __typename }"}}"#;
        assert!(matches!(
            decode(Protocol::Legacy, start),
            Ok(ClientMessage::Subscribe { .. })
        ));
        for bad in [
            "nope",
            "{}",
            r#"{"type":"subscribe","payload":{"query":"{ a }"}}"#,
            r#"{"type":"subscribe","id":"","payload":{"query":"{ a }"}}"#,
            r#"{"type":"subscribe","id":"1"}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":42}}"#,
            &format!(
                r#"{{"type":"subscribe","id":"{}","payload":{{"query":"{{ a }}"}}}}"#,
                "i".repeat(MAX_ID_BYTES + 1)
            ),
            r#"{"type":"unknown"}"#,
        ] {
            assert!(decode(Protocol::TransportWs, bad).is_err(), "{bad}");
        }
    }
}
