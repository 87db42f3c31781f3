//! Rooms, membership, sending and history over HTTP: createRoom, joinRoom, leaveRoom, rooms,
//! publicRooms, room, sendMessage (seq numbering, idempotency), messages pagination and
//! searchMessages.
mod conversation;
mod direct;
mod events;
mod history;
mod members;
mod permissions;
mod presence;
mod reads;
mod rooms;
mod search;
mod sending;
mod typing;

use serde_json::{Value, json};

use crate::helpers::*;

const ROOM_FIELDS: &str = "id name isPrivate createdAt";
const PAGE_INFO: &str = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";

/// `{ edges { cursor node { ... } } pageInfo { ... } }` of a message connection.
fn message_connection() -> String {
    format!("{{ edges {{ cursor node {{ {MESSAGE_FIELDS} }} }} {PAGE_INFO} }}")
}

/// `{ edges { cursor node { ... } } pageInfo { ... } }` of a room connection.
fn room_connection() -> String {
    format!("{{ edges {{ cursor node {{ {ROOM_FIELDS} }} }} {PAGE_INFO} }}")
}

/// `messages(roomId, ...)`; `args` holds any of `first`, `after`, `last`, `before`.
async fn history(app: &TestApp, viewer: &Account, room_id: &str, args: Value) -> Gql {
    let mut variables = args;
    variables["r"] = json!(room_id);
    app.gql(
        Some(&viewer.access_token),
        &format!(
            "query($r: ID!, $first: Int, $after: String, $last: Int, $before: String) {{ \
             messages(roomId: $r, first: $first, after: $after, last: $last, before: $before) {} }}",
            message_connection()
        ),
        variables,
    )
    .await
}

/// The same page through `room(id) { messages(...) }`.
async fn room_history(app: &TestApp, viewer: &Account, room_id: &str, args: Value) -> Gql {
    let mut variables = args;
    variables["id"] = json!(room_id);
    app.gql(
        Some(&viewer.access_token),
        &format!(
            "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {{ \
             room(id: $id) {{ messages(first: $first, after: $after, last: $last, before: $before) {} }} }}",
            message_connection()
        ),
        variables,
    )
    .await
}

/// Where a test reads history from: the `messages` root field, or `room(id) { messages }`.
#[derive(Clone, Copy, Debug)]
enum Via {
    Root,
    Room,
}

/// A page of history that must be readable; returns the connection.
async fn read(app: &TestApp, viewer: &Account, room_id: &str, via: Via, args: Value) -> Value {
    match via {
        Via::Root => history(app, viewer, room_id, args).await.ok()["messages"].clone(),
        Via::Room => {
            room_history(app, viewer, room_id, args).await.ok()["room"]["messages"].clone()
        }
    }
}

/// `rooms(first, after)` as `viewer`.
async fn my_rooms(app: &TestApp, viewer: &Account, first: Option<i32>, after: Option<&str>) -> Gql {
    app.gql(
        Some(&viewer.access_token),
        &format!(
            "query($first: Int, $after: String) {{ rooms(first: $first, after: $after) {} }}",
            room_connection()
        ),
        json!({ "first": first, "after": after }),
    )
    .await
}

/// `publicRooms(first, after)` as `viewer`.
async fn public_rooms(
    app: &TestApp,
    viewer: &Account,
    first: Option<i32>,
    after: Option<&str>,
) -> Gql {
    app.gql(
        Some(&viewer.access_token),
        &format!(
            "query($first: Int, $after: String) {{ publicRooms(first: $first, after: $after) {} }}",
            room_connection()
        ),
        json!({ "first": first, "after": after }),
    )
    .await
}

/// `room(id)` as `viewer`.
async fn room(app: &TestApp, viewer: &Account, id: &str) -> Gql {
    app.gql(
        Some(&viewer.access_token),
        &format!("query($id: ID!) {{ room(id: $id) {{ {ROOM_FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await
}

async fn create_room_raw(app: &TestApp, owner: &Account, input: Value) -> Gql {
    app.gql(
        Some(&owner.access_token),
        &format!("mutation($i: CreateRoomInput!) {{ createRoom(input: $i) {{ {ROOM_FIELDS} }} }}"),
        json!({ "i": input }),
    )
    .await
}

async fn leave_room(app: &TestApp, account: &Account, room_id: &str) -> Gql {
    app.gql(
        Some(&account.access_token),
        "mutation($r: ID!) { leaveRoom(roomId: $r) }",
        json!({ "r": room_id }),
    )
    .await
}

/// Sends `n` messages one after the other ("message 1", "message 2"...).
async fn fill(app: &TestApp, author: &Account, room_id: &str, n: usize) -> Vec<Value> {
    let mut sent = Vec::with_capacity(n);
    for i in 1..=n {
        sent.push(
            app.send_message(author, room_id, &format!("message {i}"))
                .await,
        );
    }
    sent
}

/// The seqs of a message connection's edges, in order.
fn seqs(connection: &Value) -> Vec<i64> {
    edges(connection)
        .iter()
        .map(|edge| edge["node"]["seq"].as_i64().expect("seq"))
        .collect()
}

/// The node ids of a connection's edges, in order.
fn ids(connection: &Value) -> Vec<String> {
    edges(connection)
        .iter()
        .map(|edge| edge["node"]["id"].as_str().expect("id").to_owned())
        .collect()
}

fn edges(connection: &Value) -> &Vec<Value> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no edges in {connection}"))
}

/// `(hasPreviousPage, hasNextPage)`.
fn has_pages(connection: &Value) -> (bool, bool) {
    let info = &connection["pageInfo"];
    (
        info["hasPreviousPage"].as_bool().expect("hasPreviousPage"),
        info["hasNextPage"].as_bool().expect("hasNextPage"),
    )
}

/// Checks that each edge's cursor is its node's `cursor` (for messages) and that
/// start/endCursor are the first and last edges' cursors (null when empty).
#[track_caller]
fn assert_cursors_consistent(connection: &Value) {
    let edges = edges(connection);
    for edge in edges {
        if edge["node"].get("cursor").is_some() {
            assert_eq!(edge["cursor"], edge["node"]["cursor"], "{edge}");
        }
        assert!(edge["cursor"].is_string(), "{edge}");
    }
    let info = &connection["pageInfo"];
    let first = edges.first().map_or(Value::Null, |e| e["cursor"].clone());
    let last = edges.last().map_or(Value::Null, |e| e["cursor"].clone());
    assert_eq!(info["startCursor"], first, "{connection}");
    assert_eq!(info["endCursor"], last, "{connection}");
}

/// The cursor of the edge holding `seq`.
fn cursor_of(connection: &Value, seq: i64) -> String {
    edges(connection)
        .iter()
        .find(|e| e["node"]["seq"] == seq)
        .unwrap_or_else(|| panic!("no seq {seq} in {connection}"))["cursor"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// True if the mutation succeeded; otherwise checks that it was refused as bad input in
/// `field` (and not, say, an internal error).
#[track_caller]
fn stored_or_refused(answer: &Gql, field: &str) -> bool {
    if answer.body.get("errors").is_none() {
        answer.ok();
        return true;
    }
    answer.expect_code("BAD_USER_INPUT");
    assert_eq!(answer.field(), Some(field), "{}", answer.body);
    false
}

fn names(connection: &Value) -> Vec<String> {
    edges(connection)
        .iter()
        .map(|edge| edge["node"]["name"].as_str().expect("name").to_owned())
        .collect()
}
