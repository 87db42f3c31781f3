//! One stream of everything that happens in a room (`roomEvents`), resumed without gap or
//! duplicate; and one stream of a user's rooms (`myEvents`).
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;
use crate::db_tests;

const ROOM_EVENTS: &str = "subscription($r: ID!, $a: String) { roomEvents(roomId: $r, after: $a) { \
    __typename \
    ... on MessageAdded { cursor roomId message { body seq } } \
    ... on MemberJoined { cursor user { username } role by { username } } \
    ... on MemberLeft { cursor user { username } reason by { username } } \
    ... on MemberRoleChanged { cursor user { username } role by { username } } \
    ... on RoomUpdated { cursor user { username } name topic } } }";

const MY_EVENTS: &str = "subscription { myEvents { \
    __typename \
    ... on NewMessage { roomId seq preview author { username } } \
    ... on MemberJoined { roomId user { username } by { username } room { name viewerRole } } \
    ... on MemberLeft { roomId user { username } reason } \
    ... on MemberRoleChanged { roomId role } \
    ... on RoomUpdated { roomId name } \
    ... on RoomDeleted { roomId } } }";

/// A socket of `account`'s following `room`'s events after `after` (as `e`). Without a
/// cursor, it returns once the subscription is registered (a replay would race the pong).
async fn following(app: &TestApp, account: &Account, room: &str, after: Option<&str>) -> Ws {
    let mut ws = app.ws_ready(&account.access_token).await;
    ws.subscribe("e", ROOM_EVENTS, json!({ "r": room, "a": after }))
        .await;
    if after.is_none() {
        ws.sync().await;
    }
    ws
}

/// The next event of `e`, in short: its type and what tells it apart.
async fn next_event(ws: &mut Ws) -> (String, Value) {
    let payload = ws.next("e").await;
    assert!(payload["errors"].is_null(), "{payload}");
    let event = payload["data"]["roomEvents"].clone();
    let kind = event["__typename"].as_str().unwrap().to_owned();
    (kind, event)
}

/// The same, without what changes from run to run.
fn short((kind, event): &(String, Value)) -> String {
    let user = event["user"]["username"].as_str().unwrap_or("");
    let by = event["by"]["username"].as_str().unwrap_or("-");
    match kind.as_str() {
        "MessageAdded" => format!("message {}", event["message"]["body"].as_str().unwrap()),
        "MemberJoined" => format!("joined {user} {} by {by}", event["role"].as_str().unwrap()),
        "MemberLeft" => format!("left {user} {} by {by}", event["reason"].as_str().unwrap()),
        "MemberRoleChanged" => format!("role {user} {} by {by}", event["role"].as_str().unwrap()),
        "RoomUpdated" => format!("updated by {user}: {} / {}", event["name"], event["topic"]),
        other => panic!("unexpected {other}"),
    }
}

async fn mutate(app: &TestApp, by: &Account, query: &str, variables: Value) -> Value {
    app.gql(Some(&by.access_token), query, variables)
        .await
        .ok()
        .clone()
}

const SET_ROLE: &str = "mutation($r: ID!, $u: ID!, $role: RoomRole!) { setMemberRole(roomId: $r, userId: $u, role: $role) { role } }";
const REMOVE: &str = "mutation($r: ID!, $u: ID!) { removeMember(roomId: $r, userId: $u) }";
const BAN: &str = "mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u) }";
const LEAVE: &str = "mutation($r: ID!) { leaveRoom(roomId: $r) }";
const UPDATE: &str =
    "mutation($r: ID!, $i: UpdateRoomInput!) { updateRoom(roomId: $r, input: $i) { id } }";

db_tests! {
    async fn room_events_resumed_after_a_gap_bring_each_event_once_in_order(db) {
        let app = spawn_app(&db).await;
        let (ada, bob, cyd, dia) = (app.register("ada").await, app.register("bob").await, app.register("cyd").await, app.register("dia").await);
        let room = app.create_room(&ada, "events", false).await;
        app.join_room(&bob, &room).await.ok();
        // From the start: the room's whole story so far.
        let mut ws = following(&app, &bob, &room, None).await;
        app.send_message(&ada, &room, "one").await;
        let one = next_event(&mut ws).await;
        assert_eq!(short(&one), "message one");
        drop(ws);

        // While bob is away: one of every kind.
        app.send_message(&ada, &room, "two").await;
        app.add_members(&ada, &room, &[&cyd]).await.ok();
        mutate(&app, &ada, SET_ROLE, json!({ "r": room, "u": cyd.id, "role": "ADMIN" })).await;
        mutate(&app, &ada, UPDATE, json!({ "r": room, "i": { "name": "renamed", "topic": "t" } })).await;
        app.join_room(&dia, &room).await.ok();
        mutate(&app, &cyd, REMOVE, json!({ "r": room, "u": dia.id })).await;
        mutate(&app, &cyd, BAN, json!({ "r": room, "u": dia.id })).await;
        mutate(&app, &ada, SET_ROLE, json!({ "r": room, "u": cyd.id, "role": "OWNER" })).await;
        mutate(&app, &ada, LEAVE, json!({ "r": room })).await;
        app.send_message(&cyd, &room, "three").await;
        let missed = [
            "message two",
            "joined cyd MEMBER by ada",
            "role cyd ADMIN by ada",
            "updated by ada: \"renamed\" / \"t\"",
            "joined dia MEMBER by -",
            "left dia REMOVED by cyd",
            "role ada ADMIN by -",
            "role cyd OWNER by ada",
            "left ada LEFT by -",
            "message three",
        ];

        // Resumed from the last event bob saw: each missed event once, in order, then live.
        let mut ws = following(&app, &bob, &room, one.1["cursor"].as_str()).await;
        let mut seen = Vec::new();
        for _ in missed {
            seen.push(next_event(&mut ws).await);
        }
        assert_eq!(seen.iter().map(short).collect::<Vec<_>>(), missed);
        app.send_message(&cyd, &room, "four").await;
        assert_eq!(short(&next_event(&mut ws).await), "message four");
        assert!(ws.next_within("e", Duration::from_millis(300)).await.is_none(), "nothing twice");
        // Every cursor is new: no event came twice.
        let mut cursors: Vec<_> = seen.iter().map(|(_, e)| e["cursor"].as_str().unwrap().to_owned()).collect();
        cursors.push(one.1["cursor"].as_str().unwrap().to_owned());
        cursors.sort();
        cursors.dedup();
        assert_eq!(cursors.len(), missed.len() + 1);

        // Resuming from a message's cursor (from history or messageAdded) works the same.
        let history = app.gql(Some(&bob.access_token), "query($r: ID!) { messages(roomId: $r, first: 1) { edges { cursor } } }", json!({ "r": room })).await;
        let first_message = history.ok()["messages"]["edges"][0]["cursor"].as_str().unwrap().to_owned();
        let mut ws = following(&app, &bob, &room, Some(&first_message)).await;
        for expected in missed {
            assert_eq!(short(&next_event(&mut ws).await), expected);
        }
        assert_eq!(short(&next_event(&mut ws).await), "message four");

        // messageAdded is the messages of the same stream.
        let mut ws = app.ws_ready(&bob.access_token).await;
        ws.message_added("s", &room, Some(&first_message)).await;
        for body in ["two", "three", "four"] {
            assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], body);
        }
    }

    async fn room_events_refuse_cursors_they_never_gave(db) {
        let app = spawn_app(&db).await;
        let eve = app.register("eve").await;
        let room = app.create_room(&eve, "cursors", false).await;
        let first = following(&app, &eve, &room, None).await;
        drop(first);
        app.send_message(&eve, &room, "hi").await;
        let mut ws = app.ws_ready(&eve.access_token).await;
        let past = URL_SAFE_NO_PAD.encode("event:3");
        let other_kind = URL_SAFE_NO_PAD.encode(format!("room:{room}"));
        // Cursors are at most 80 bytes: 10 and 1,000 times that are refused unread.
        let (long, huge) = ("A".repeat(800), "A".repeat(80_000));
        for (after, message) in [
            (past.as_str(), "the cursor is past the newest event of this room"),
            (other_kind.as_str(), "invalid cursor"),
            ("not a cursor", "invalid cursor"),
            (long.as_str(), "invalid cursor"),
            (huge.as_str(), "invalid cursor"),
        ] {
            ws.subscribe("e", ROOM_EVENTS, json!({ "r": room, "a": after })).await;
            let refused = ws.next("e").await;
            assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
            assert_eq!(refused["errors"][0]["message"], message);
            assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "e" }));
        }
    }

    async fn a_member_put_out_sees_their_own_departure_then_forbidden(db) {
        let app = spawn_app(&db).await;
        let (fay, gus) = (app.register("fay").await, app.register("gus").await);
        let room = app.create_room(&fay, "door", true).await;
        app.add_members(&fay, &room, &[&gus]).await.ok();
        let mut ws = following(&app, &gus, &room, None).await;
        mutate(&app, &fay, BAN, json!({ "r": room, "u": gus.id })).await;
        assert_eq!(short(&next_event(&mut ws).await), "left gus BANNED by fay");
        let ended = ws.next("e").await;
        assert_eq!(ended["errors"][0]["extensions"]["code"], "FORBIDDEN", "{ended}");
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "e" }));
        // Leaving ends it quietly.
        let room = app.create_room(&gus, "own", false).await;
        app.join_room(&fay, &room).await.ok();
        let mut ws = following(&app, &fay, &room, None).await;
        mutate(&app, &fay, LEAVE, json!({ "r": room })).await;
        assert_eq!(short(&next_event(&mut ws).await), "left fay LEFT by -");
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "e" }));
    }

    async fn my_events_follow_every_room_of_mine(db) {
        let app = spawn_app(&db).await;
        let (hal, ivy) = (app.register("hal").await, app.register("ivy").await);
        let elsewhere = app.create_room(&hal, "not ivy's", false).await;
        let mut ws = app.ws_ready(&ivy.access_token).await;
        ws.subscribe("m", MY_EVENTS, json!({})).await;
        ws.sync().await;
        let mut next = async || ws.next("m").await["data"]["myEvents"].clone();

        let room = app.create_room(&hal, "for ivy", true).await;
        app.add_members(&hal, &room, &[&ivy]).await.ok();
        let added = next().await;
        assert_eq!(added["__typename"], "MemberJoined");
        assert_eq!((&added["roomId"], &added["user"]["username"], &added["by"]["username"]), (&json!(room), &json!("ivy"), &json!("hal")));
        assert_eq!(added["room"], json!({ "name": "for ivy", "viewerRole": "MEMBER" }));
        app.send_message(&hal, &elsewhere, "not for ivy").await;
        let long = "x".repeat(150);
        app.send_message(&hal, &room, &long).await;
        let message = next().await;
        assert_eq!(message["__typename"], "NewMessage");
        assert_eq!((&message["roomId"], &message["seq"], &message["author"]["username"]), (&json!(room), &json!(1), &json!("hal")));
        assert_eq!(message["preview"], format!("{}…", "x".repeat(99)));
        mutate(&app, &hal, UPDATE, json!({ "r": room, "i": { "name": "ivy & hal" } })).await;
        assert_eq!(next().await, json!({ "__typename": "RoomUpdated", "roomId": room, "name": "ivy & hal" }));
        mutate(&app, &hal, SET_ROLE, json!({ "r": room, "u": ivy.id, "role": "ADMIN" })).await;
        assert_eq!(next().await, json!({ "__typename": "MemberRoleChanged", "roomId": room, "role": "ADMIN" }));
        // Ivy's own messages reach her other devices too.
        app.send_message(&ivy, &room, "mine").await;
        assert_eq!(next().await["preview"], "mine");

        // Removed: told so, and nothing more from that room.
        mutate(&app, &hal, SET_ROLE, json!({ "r": room, "u": ivy.id, "role": "MEMBER" })).await;
        assert_eq!(next().await["role"], "MEMBER");
        mutate(&app, &hal, REMOVE, json!({ "r": room, "u": ivy.id })).await;
        assert_eq!(next().await, json!({ "__typename": "MemberLeft", "roomId": room, "user": { "username": "ivy" }, "reason": "REMOVED" }));
        app.send_message(&hal, &room, "after ivy").await;
        // A room deleted: told so.
        let doomed = app.create_room(&hal, "doomed", false).await;
        app.join_room(&ivy, &doomed).await.ok();
        assert_eq!(next().await["room"]["name"], "doomed", "the message after ivy left never came");
        mutate(&app, &hal, "mutation($r: ID!) { deleteRoom(roomId: $r) }", json!({ "r": doomed })).await;
        assert_eq!(next().await, json!({ "__typename": "RoomDeleted", "roomId": doomed }));
        app.send_message(&hal, &elsewhere, "still not for ivy").await;
        assert!(ws.next_within("m", Duration::from_millis(300)).await.is_none());
    }
}
