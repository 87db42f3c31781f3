//! The GraphQL operations of the public contract that the bench uses, as pre-serialised request
//! bodies and small typed decoders. Nothing here depends on a particular server implementation.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use crate::client::{HttpClient, HttpError, Response};

pub const TYPENAME: &str = "{ __typename }";
pub const ME: &str = "query Me { me { id username } }";
const REGISTER: &str = "mutation Register($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }";
const LOGIN: &str = "mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }";
const CREATE_ROOM: &str =
    "mutation CreateRoom($input: CreateRoomInput!) { createRoom(input: $input) { id } }";
const JOIN_ROOM: &str = "mutation JoinRoom($roomId: ID!) { joinRoom(roomId: $roomId) { id } }";
const SEND_MESSAGE: &str =
    "mutation SendMessage($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }";
/// A page of 100 messages with their authors and reactions (`http --query history`).
pub const HISTORY: &str = "query History($r: ID!) { messages(roomId: $r, last: 100) { edges { node { seq body createdAt author { id username } reactions { emoji count viewerHasReacted } } } } }";
/// The viewer's 100 most active rooms with what a room list shows beside each (`http --query
/// rooms`).
pub const ROOMS: &str = "query Rooms { rooms(first: 100, orderBy: ACTIVITY) { edges { node { id name lastActivityAt viewerRole lastReadSeq unreadCount mentionCount memberCount onlineCount } } } }";
const ADD_REACTION: &str =
    "mutation React($m: ID!, $e: String!) { addReaction(messageId: $m, emoji: $e) { id } }";
/// The same deliveries through the room's whole event stream (`fanout --room-events`): typing
/// and the other events arrive too, and are not deliveries.
pub const ROOM_EVENTS: &str = "subscription RoomEvents($r: ID!) { roomEvents(roomId: $r) { __typename ... on MessageAdded { message { seq body } } } }";
const SET_TYPING: &str = "mutation Typing($r: ID!) { setTyping(roomId: $r, typing: true) }";
/// The subscription every bench socket holds, selecting only what the fan-out workload reads.
pub const MESSAGE_ADDED: &str =
    "subscription MessageAdded($r: ID!) { messageAdded(roomId: $r) { seq body } }";

/// Serialises `{"query","variables"}` once; the bytes are then cloned (refcounted) per request.
pub fn body(query: &str, variables: Value) -> Bytes {
    Bytes::from(json!({ "query": query, "variables": variables }).to_string())
}

pub fn login_body(login: &str, password: &str) -> Bytes {
    body(
        LOGIN,
        json!({ "input": { "login": login, "password": password } }),
    )
}

pub fn send_message_body(room_id: &str, text: &str, client_msg_id: &str) -> Bytes {
    body(
        SEND_MESSAGE,
        json!({ "input": { "roomId": room_id, "body": text, "clientMsgId": client_msg_id } }),
    )
}

/// The first entry of a response's `errors`.
#[derive(Debug, Deserialize)]
pub struct GqlError {
    pub message: String,
    #[serde(default)]
    pub extensions: Extensions,
}

#[derive(Debug, Default, Deserialize)]
pub struct Extensions {
    pub code: Option<String>,
    #[serde(rename = "retryAfter")]
    pub retry_after: Option<f64>,
}

/// Why a GraphQL call did not return data.
#[derive(Debug)]
pub enum CallError {
    /// No response at all.
    Http(HttpError),
    /// A response that is not a GraphQL JSON body (e.g. a 502 from a proxy).
    Status(StatusCode),
    /// A GraphQL error; its `extensions.code` is what reports count.
    Gql(GqlError),
    /// A 2xx GraphQL body without `data` and without `errors`, or of an unexpected shape.
    Decode(String),
}

impl CallError {
    /// The key under which reports count this error: the GraphQL code when there is one.
    pub fn kind(&self) -> Cow<'_, str> {
        match self {
            CallError::Http(e) => e.kind().into(),
            CallError::Status(status) => format!("HTTP {}", status.as_u16()).into(),
            CallError::Gql(e) => e
                .extensions
                .code
                .as_deref()
                .unwrap_or("GRAPHQL_ERROR")
                .into(),
            CallError::Decode(_) => "bad response".into(),
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Gql(e) => e.extensions.code.as_deref(),
            _ => None,
        }
    }

    /// `extensions.retryAfter` of a `RATE_LIMITED` error.
    pub fn retry_after(&self) -> Option<f64> {
        match self {
            CallError::Gql(e) => e.extensions.retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Http(e) => e.fmt(f),
            CallError::Status(status) => write!(f, "HTTP {status} without a GraphQL body"),
            CallError::Gql(e) => {
                let code = e.extensions.code.as_deref().unwrap_or("no code");
                write!(f, "{code}: {}", e.message)?;
                match e.extensions.retry_after {
                    Some(secs) => write!(f, " (retryAfter {secs}s)"),
                    None => Ok(()),
                }
            }
            CallError::Decode(e) => write!(f, "unexpected response: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<HttpError> for CallError {
    fn from(e: HttpError) -> Self {
        CallError::Http(e)
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GqlError>,
}

/// Decodes `data` as `T`, or the first error. Bodies are parsed whatever the status, because the
/// GraphQL-over-HTTP spec sends errors with 4xx codes under `application/graphql-response+json`.
pub fn decode<T: DeserializeOwned>(response: &Response) -> Result<T, CallError> {
    match serde_json::from_slice::<Envelope<T>>(&response.body) {
        Ok(Envelope { errors, .. }) if !errors.is_empty() => Err(CallError::Gql(
            errors.into_iter().next().expect("errors is not empty"),
        )),
        Ok(Envelope {
            data: Some(data), ..
        }) => Ok(data),
        Ok(Envelope { data: None, .. }) => Err(CallError::Decode("neither data nor errors".into())),
        Err(_) if !response.status.is_success() => Err(CallError::Status(response.status)),
        Err(e) => Err(CallError::Decode(e.to_string())),
    }
}

/// Checks that a response carries data and no error, without building the data (hot loops).
pub fn check(response: &Response) -> Result<(), CallError> {
    decode::<IgnoredAny>(response).map(drop)
}

/// Sends one operation and decodes its `data`.
pub async fn call<T: DeserializeOwned>(
    client: &mut HttpClient,
    body: Bytes,
    auth: Option<&HeaderValue>,
) -> Result<T, CallError> {
    let response = client.post(body, auth).await?;
    decode(&response)
}

/// What `register` returns that the bench needs.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub access_token: String,
}

pub async fn register(
    client: &mut HttpClient,
    email: &str,
    username: &str,
    password: &str,
) -> Result<Session, CallError> {
    #[derive(Deserialize)]
    struct Data {
        register: Payload,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload {
        access_token: String,
        user: Id,
    }
    let variables =
        json!({ "input": { "email": email, "username": username, "password": password } });
    let data: Data = call(client, body(REGISTER, variables), None).await?;
    Ok(Session {
        user_id: data.register.user.id,
        access_token: data.register.access_token,
    })
}

pub async fn create_room(
    client: &mut HttpClient,
    auth: &HeaderValue,
    name: &str,
) -> Result<String, CallError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        create_room: Id,
    }
    let variables = json!({ "input": { "name": name, "isPrivate": false } });
    let data: Data = call(client, body(CREATE_ROOM, variables), Some(auth)).await?;
    Ok(data.create_room.id)
}

pub async fn join_room(
    client: &mut HttpClient,
    auth: &HeaderValue,
    room_id: &str,
) -> Result<(), CallError> {
    let _: IgnoredAny = call(
        client,
        body(JOIN_ROOM, json!({ "roomId": room_id })),
        Some(auth),
    )
    .await?;
    Ok(())
}

/// Sends a message; returns its id.
pub async fn send_message(
    client: &mut HttpClient,
    auth: &HeaderValue,
    room_id: &str,
    text: &str,
) -> Result<String, CallError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        send_message: Id,
    }
    let variables = json!({ "input": { "roomId": room_id, "body": text } });
    let data: Data = call(client, body(SEND_MESSAGE, variables), Some(auth)).await?;
    Ok(data.send_message.id)
}

pub async fn add_reaction(
    client: &mut HttpClient,
    auth: &HeaderValue,
    message_id: &str,
    emoji: &str,
) -> Result<(), CallError> {
    let variables = json!({ "m": message_id, "e": emoji });
    let _: IgnoredAny = call(client, body(ADD_REACTION, variables), Some(auth)).await?;
    Ok(())
}

/// Says the bench user is typing in the room.
pub async fn set_typing(
    client: &mut HttpClient,
    auth: &HeaderValue,
    room_id: &str,
) -> Result<(), CallError> {
    let variables = json!({ "r": room_id });
    let _: IgnoredAny = call(client, body(SET_TYPING, variables), Some(auth)).await?;
    Ok(())
}

/// Decodes the `seq` of a `sendMessage` response.
pub fn decode_sent_seq(response: &Response) -> Result<i64, CallError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        send_message: Seq,
    }
    #[derive(Deserialize)]
    struct Seq {
        seq: i64,
    }
    decode::<Data>(response).map(|data| data.send_message.seq)
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

/// `seq` and `body` of a `messageAdded` event, borrowing from the frame text when it can.
#[derive(Debug, Deserialize)]
pub struct MessageAdded<'a> {
    pub seq: i64,
    #[serde(borrow)]
    pub body: Cow<'a, str>,
}

#[derive(Deserialize)]
struct NextFrame<'a> {
    #[serde(borrow)]
    payload: NextPayload<'a>,
}

#[derive(Deserialize)]
struct NextPayload<'a> {
    #[serde(borrow)]
    data: Option<NextData<'a>>,
    #[serde(default)]
    errors: Vec<GqlError>,
}

#[derive(Deserialize)]
struct NextData<'a> {
    #[serde(rename = "messageAdded", borrow)]
    message_added: Option<MessageAdded<'a>>,
    #[serde(rename = "roomEvents", borrow)]
    room_events: Option<RoomEventData<'a>>,
}

#[derive(Deserialize)]
struct RoomEventData<'a> {
    #[serde(borrow)]
    message: Option<MessageAdded<'a>>,
}

/// Parses a whole `next` frame of the [`MESSAGE_ADDED`] or [`ROOM_EVENTS`] subscription in one
/// pass, allocating nothing for a normal event: the message, or `None` for another kind of
/// room event. A payload with `errors` (the server's subscription stream failed) comes back as
/// the first error, `CODE: message`.
pub fn parse_message_added(frame: &str) -> Result<Option<MessageAdded<'_>>, String> {
    match serde_json::from_str::<NextFrame<'_>>(frame) {
        Ok(NextFrame {
            payload: NextPayload {
                data: Some(data), ..
            },
        }) => match (data.message_added, data.room_events) {
            (Some(added), _) => Ok(Some(added)),
            (None, Some(event)) => Ok(event.message),
            (None, None) => Err("next frame without an event".into()),
        },
        Ok(NextFrame {
            payload: NextPayload { errors, .. },
        }) => match errors.into_iter().next() {
            Some(e) => Err(CallError::Gql(e).to_string()),
            None => Err("next frame without data or errors".into()),
        },
        Err(e) => Err(format!("unparsable next frame: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> Response {
        Response {
            status: StatusCode::OK,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn decodes_error_codes_and_retry_after() {
        let limited = r#"{"data":null,"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED","retryAfter":7}}]}"#;
        let e = check(&response(limited)).unwrap_err();
        assert_eq!(e.kind(), "RATE_LIMITED");
        assert_eq!(e.retry_after(), Some(7.0));
        assert!(check(&response(r#"{"data":{"__typename":"Query"}}"#)).is_ok());
        let bad_gateway = Response {
            status: StatusCode::BAD_GATEWAY,
            body: Bytes::from_static(b"<html>"),
        };
        assert_eq!(check(&bad_gateway).unwrap_err().kind(), "HTTP 502");
    }

    #[test]
    fn parses_message_added_frames() {
        let frame = r#"{"id":"1","type":"next","payload":{"data":{"messageAdded":{"seq":42,"body":"t=1 \"q\""}}}}"#;
        let added = parse_message_added(frame).unwrap().unwrap();
        assert_eq!((added.seq, added.body.as_ref()), (42, "t=1 \"q\""));
        let event = r#"{"id":"1","type":"next","payload":{"data":{"roomEvents":{"__typename":"MessageAdded","message":{"seq":7,"body":"b"}}}}}"#;
        assert_eq!(parse_message_added(event).unwrap().unwrap().seq, 7);
        let typing = r#"{"id":"1","type":"next","payload":{"data":{"roomEvents":{"__typename":"TypingChanged"}}}}"#;
        assert!(parse_message_added(typing).unwrap().is_none());

        let failed = r#"{"id":"1","type":"next","payload":{"data":null,"errors":[{"message":"internal server error","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}}"#;
        assert_eq!(
            parse_message_added(failed).unwrap_err(),
            "INTERNAL_SERVER_ERROR: internal server error"
        );
    }
}
