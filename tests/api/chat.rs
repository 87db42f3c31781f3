//! Rooms, membership, sending and history over HTTP: createRoom, joinRoom, leaveRoom, rooms,
//! publicRooms, room, sendMessage (seq numbering, idempotency) and messages pagination.
use serde_json::{Value, json};

use crate::{db_tests, helpers::*};

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

db_tests! {
    // ---------------------------------------------------------------- createRoom

    async fn create_room_makes_the_creator_a_member_with_a_trimmed_public_room(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        // isPrivate omitted: defaults to false.
        let answer = create_room_raw(&app, &alice, json!({ "name": "  general \n" })).await;
        let created = &answer.ok()["createRoom"];
        assert_eq!(created["name"], "general");
        assert_eq!(created["isPrivate"], false);
        assert!(created["createdAt"].is_string(), "{created}");
        let id = created["id"].as_str().unwrap();
        uuid::Uuid::parse_str(id).expect("room ids are UUIDs");

        let rooms = my_rooms(&app, &alice, None, None).await;
        let rooms = &rooms.ok()["rooms"];
        assert_eq!(ids(rooms), vec![id.to_owned()]);
        assert_eq!(edges(rooms)[0]["node"], *created);

        // The creator may send straight away.
        let message = app.send_message(&alice, id, "hi").await;
        assert_eq!(message["seq"], 1);

        // An explicitly private room stays private.
        let answer = create_room_raw(&app, &alice, json!({ "name": "secret", "isPrivate": true })).await;
        assert_eq!(answer.ok()["createRoom"]["isPrivate"], true);
    }

    async fn room_names_are_validated_in_characters(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        for name in [String::new(), "   ".into(), " \n\t ".into(), "é".repeat(101), "r".repeat(101)] {
            let answer = create_room_raw(&app, &alice, json!({ "name": name })).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("name"), "{name:?}: {}", answer.body);
        }
        // 100 characters is fine, even at two bytes each, and even padded with blanks.
        let long = "é".repeat(100);
        let answer = create_room_raw(&app, &alice, json!({ "name": long })).await;
        assert_eq!(answer.ok()["createRoom"]["name"], long.as_str());
        let answer = create_room_raw(&app, &alice, json!({ "name": format!("  {long}  ") })).await;
        assert_eq!(answer.ok()["createRoom"]["name"], long.as_str());
        // Nothing was created by the refused attempts.
        let rooms = my_rooms(&app, &alice, None, None).await;
        assert_eq!(edges(&rooms.ok()["rooms"]).len(), 2);
    }

    async fn chat_operations_require_sign_in(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let operations = [
            ("mutation { createRoom(input: { name: \"x\" }) { id } }", json!({})),
            ("mutation($r: ID!) { joinRoom(roomId: $r) { id } }", json!({ "r": room_id })),
            ("mutation($r: ID!) { leaveRoom(roomId: $r) }", json!({ "r": room_id })),
            (
                "mutation($r: ID!) { sendMessage(input: { roomId: $r, body: \"hi\" }) { id } }",
                json!({ "r": room_id }),
            ),
            ("{ rooms { edges { cursor } } }", json!({})),
            ("{ publicRooms { edges { cursor } } }", json!({})),
            ("query($r: ID!) { room(id: $r) { id } }", json!({ "r": room_id })),
            ("query($r: ID!) { messages(roomId: $r) { edges { cursor } } }", json!({ "r": room_id })),
        ];
        for (query, variables) in operations {
            let answer = app.gql(None, query, variables.clone()).await;
            answer.expect_code("UNAUTHENTICATED");
        }
        // None of those did anything.
        let history = history(&app, &alice, &room_id, json!({})).await;
        assert!(edges(&history.ok()["messages"]).is_empty());
        let rooms = my_rooms(&app, &alice, None, None).await;
        assert_eq!(edges(&rooms.ok()["rooms"]).len(), 1);
    }

    // ---------------------------------------------------------------- joinRoom

    async fn joining_a_public_room_twice_is_harmless(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let room_id = app.create_room(&alice, "general", false).await;

        // Not a member yet: not in bob's rooms, and bob cannot send.
        assert!(edges(&my_rooms(&app, &bob, None, None).await.ok()["rooms"]).is_empty());
        app.send_message_raw(&bob, &room_id, "hi", None).await.expect_code("FORBIDDEN");

        for _ in 0..2 {
            let joined = app.join_room(&bob, &room_id).await;
            assert_eq!(joined.ok()["joinRoom"]["id"], room_id.as_str());
        }
        // Even at the same time.
        let carol = app.register("carol").await;
        let joins = (0..3).map(|_| app.join_room(&carol, &room_id));
        for joined in futures_util::future::join_all(joins).await {
            assert_eq!(joined.ok()["joinRoom"]["id"], room_id.as_str());
        }
        let rooms = my_rooms(&app, &carol, None, None).await;
        assert_eq!(ids(&rooms.ok()["rooms"]), vec![room_id.clone()], "listed once");
        let rooms = my_rooms(&app, &bob, None, None).await;
        assert_eq!(ids(&rooms.ok()["rooms"]), vec![room_id.clone()], "listed once");
        let message = app.send_message(&bob, &room_id, "hello").await;
        assert_eq!(message["seq"], 1);
        assert_eq!(message["author"]["id"], bob.id.as_str());
    }

    async fn private_rooms_cannot_be_joined(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let mallory = app.register("mallory").await;
        let room_id = app.create_room(&alice, "secret", true).await;

        let answer = app.join_room(&mallory, &room_id).await;
        answer.expect_code("FORBIDDEN");
        assert_eq!(answer.data(), &Value::Null, "{}", answer.body);
        // The refusal left no membership behind.
        assert!(edges(&my_rooms(&app, &mallory, None, None).await.ok()["rooms"]).is_empty());
        app.send_message_raw(&mallory, &room_id, "let me in", None)
            .await
            .expect_code("FORBIDDEN");
        // A member "joining" their own private room again is harmless.
        let again = app.join_room(&alice, &room_id).await;
        assert_eq!(again.ok()["joinRoom"]["id"], room_id.as_str());
    }

    async fn joining_unknown_or_malformed_rooms_is_refused(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let unknown = uuid::Uuid::new_v4().to_string();
        app.join_room(&alice, &unknown).await.expect_code("NOT_FOUND");
        for malformed in ["not-a-uuid", "", "1234"] {
            let answer = app.join_room(&alice, malformed).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("roomId"), "{malformed:?}: {}", answer.body);
        }
    }

    // ---------------------------------------------------------------- leaveRoom

    async fn leaving_a_room_ends_membership(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let other = app.create_room(&alice, "other", false).await;
        app.join_room(&bob, &room_id).await.ok();
        app.join_room(&bob, &other).await.ok();
        app.send_message(&bob, &room_id, "bye").await;

        let left = leave_room(&app, &bob, &room_id).await;
        assert_eq!(left.ok()["leaveRoom"], true);
        let again = leave_room(&app, &bob, &room_id).await;
        assert_eq!(again.ok()["leaveRoom"], false);

        app.send_message_raw(&bob, &room_id, "one more", None)
            .await
            .expect_code("FORBIDDEN");
        let rooms = my_rooms(&app, &bob, None, None).await;
        assert_eq!(ids(&rooms.ok()["rooms"]), vec![other.clone()]);
        // The others stay.
        let rooms = my_rooms(&app, &alice, None, None).await;
        assert_eq!(ids(&rooms.ok()["rooms"]), vec![room_id.clone(), other]);
        assert_eq!(app.send_message(&alice, &room_id, "still here").await["seq"], 2);
        // A room never joined: false.
        let carol = app.register("carol").await;
        assert_eq!(leave_room(&app, &carol, &room_id).await.ok()["leaveRoom"], false);
        // And bob may come back.
        app.join_room(&bob, &room_id).await.ok();
        assert_eq!(app.send_message(&bob, &room_id, "back").await["seq"], 3);
        // Two leaves at once: one of them did it.
        let (a, b) = tokio::join!(leave_room(&app, &bob, &room_id), leave_room(&app, &bob, &room_id));
        let mut results = [a.ok()["leaveRoom"].clone(), b.ok()["leaveRoom"].clone()];
        results.sort_by_key(|r| r.as_bool());
        assert_eq!(results, [json!(false), json!(true)]);

        let unknown = uuid::Uuid::new_v4().to_string();
        leave_room(&app, &bob, &unknown).await.expect_code("NOT_FOUND");
        let malformed = leave_room(&app, &bob, "general").await;
        malformed.expect_code("BAD_USER_INPUT");
        assert_eq!(malformed.field(), Some("roomId"));
    }

    // ---------------------------------------------------------------- rooms, publicRooms

    async fn rooms_lists_the_viewers_rooms_oldest_first_in_pages(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let a1 = app.create_room(&alice, "a1", false).await;
        let a2 = app.create_room(&alice, "a2", false).await;
        let a3 = app.create_room(&alice, "a3", true).await;
        let a4 = app.create_room(&alice, "a4", false).await;
        let bp = app.create_room(&bob, "bp", false).await;
        let bq = app.create_room(&bob, "bq", true).await;
        app.join_room(&alice, &bp).await.ok();

        let all = my_rooms(&app, &alice, None, None).await;
        let all = &all.ok()["rooms"];
        assert_eq!(names(all), ["a1", "a2", "a3", "a4", "bp"]);
        assert_eq!(has_pages(all), (false, false));
        assert_cursors_consistent(all);

        let page1 = my_rooms(&app, &alice, Some(2), None).await;
        let page1 = &page1.ok()["rooms"];
        assert_eq!(ids(page1), [a1.clone(), a2.clone()]);
        assert_eq!(has_pages(page1), (false, true));
        assert_cursors_consistent(page1);

        let end = page1["pageInfo"]["endCursor"].as_str().unwrap();
        let page2 = my_rooms(&app, &alice, Some(2), Some(end)).await;
        let page2 = &page2.ok()["rooms"];
        assert_eq!(ids(page2), [a3.clone(), a4.clone()]);
        assert_eq!(has_pages(page2), (true, true));
        assert_cursors_consistent(page2);

        let end = page2["pageInfo"]["endCursor"].as_str().unwrap();
        let page3 = my_rooms(&app, &alice, Some(2), Some(end)).await;
        let page3 = &page3.ok()["rooms"];
        assert_eq!(ids(page3), [bp.as_str()]);
        assert_eq!(has_pages(page3), (true, false));
        assert_cursors_consistent(page3);

        // Exactly filling a page leaves no next page.
        let exact = my_rooms(&app, &alice, Some(5), None).await;
        assert_eq!(has_pages(&exact.ok()["rooms"]), (false, false));

        // Bob's rooms are his own two; a newcomer has none.
        let bobs = my_rooms(&app, &bob, None, None).await;
        assert_eq!(ids(&bobs.ok()["rooms"]), [bp, bq]);
        let carol = app.register("carol").await;
        let none = my_rooms(&app, &carol, None, None).await;
        let none = &none.ok()["rooms"];
        assert!(edges(none).is_empty());
        assert_eq!(has_pages(none), (false, false));
        assert_cursors_consistent(none);

        // Page size limits and cursor kinds.
        let too_many = my_rooms(&app, &alice, Some(101), None).await;
        too_many.expect_code("BAD_USER_INPUT");
        assert_eq!(too_many.field(), Some("first"));
        let garbage = my_rooms(&app, &alice, None, Some("garbage")).await;
        garbage.expect_code("BAD_USER_INPUT");
        assert_eq!(garbage.field(), Some("after"));
        let message = app.send_message(&alice, &a1, "hi").await;
        let wrong_kind = my_rooms(&app, &alice, None, message["cursor"].as_str()).await;
        wrong_kind.expect_code("BAD_USER_INPUT");
        assert_eq!(wrong_kind.field(), Some("after"));
    }

    async fn public_rooms_lists_public_rooms_to_anyone_signed_in(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        app.create_room(&alice, "a1", false).await;
        app.create_room(&alice, "a2-private", true).await;
        app.create_room(&bob, "b1", false).await;
        app.create_room(&bob, "b2-private", true).await;
        app.create_room(&alice, "a3", false).await;

        // Carol is a member of nothing, yet sees the directory.
        let all = public_rooms(&app, &carol, None, None).await;
        let all = &all.ok()["publicRooms"];
        assert_eq!(names(all), ["a1", "b1", "a3"]);
        assert!(edges(all).iter().all(|e| e["node"]["isPrivate"] == false), "{all}");
        assert_eq!(has_pages(all), (false, false));
        assert_cursors_consistent(all);

        let page1 = public_rooms(&app, &carol, Some(2), None).await;
        let page1 = &page1.ok()["publicRooms"];
        assert_eq!(names(page1), ["a1", "b1"]);
        assert_eq!(has_pages(page1), (false, true));
        let end = page1["pageInfo"]["endCursor"].as_str().unwrap();
        let page2 = public_rooms(&app, &carol, Some(2), Some(end)).await;
        let page2 = &page2.ok()["publicRooms"];
        assert_eq!(names(page2), ["a3"]);
        assert_eq!(has_pages(page2), (true, false));

        // Members of private rooms do not see them in the directory either.
        let for_alice = public_rooms(&app, &alice, None, None).await;
        assert_eq!(names(&for_alice.ok()["publicRooms"]), ["a1", "b1", "a3"]);
    }

    // ---------------------------------------------------------------- room(id)

    async fn public_rooms_are_readable_by_anyone_signed_in(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let carol = app.register("carol").await;
        let room_id = app.create_room(&alice, "general", false).await;
        fill(&app, &alice, &room_id, 2).await;

        let answer = room(&app, &carol, &room_id).await;
        let found = &answer.ok()["room"];
        assert_eq!(found["id"], room_id.as_str());
        assert_eq!(found["name"], "general");
        assert_eq!(found["isPrivate"], false);
        // Reading does not make carol a member.
        assert!(edges(&my_rooms(&app, &carol, None, None).await.ok()["rooms"]).is_empty());
        // ... and its history is readable too.
        let page = room_history(&app, &carol, &room_id, json!({})).await;
        assert_eq!(seqs(&page.ok()["room"]["messages"]), [1, 2]);
        let page = history(&app, &carol, &room_id, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1, 2]);
    }

    async fn private_rooms_are_readable_by_members_only(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let mallory = app.register("mallory").await;
        let room_id = app.create_room(&alice, "secret", true).await;
        app.send_message(&alice, &room_id, "the plan").await;

        let answer = room(&app, &alice, &room_id).await;
        let found = &answer.ok()["room"];
        assert_eq!(found["name"], "secret");
        assert_eq!(found["isPrivate"], true);
        let page = room_history(&app, &alice, &room_id, json!({})).await;
        assert_eq!(seqs(&page.ok()["room"]["messages"]), [1]);

        let refused = room(&app, &mallory, &room_id).await;
        refused.expect_code("FORBIDDEN");
        assert_eq!(refused.data()["room"], Value::Null, "{}", refused.body);
        let refused = history(&app, &mallory, &room_id, json!({})).await;
        refused.expect_code("FORBIDDEN");
        assert!(!refused.body.to_string().contains("the plan"), "{}", refused.body);
        let refused = room_history(&app, &mallory, &room_id, json!({})).await;
        refused.expect_code("FORBIDDEN");
        assert!(!refused.body.to_string().contains("the plan"), "{}", refused.body);
    }

    async fn unknown_rooms_are_null_and_malformed_ids_are_refused(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let unknown = uuid::Uuid::new_v4().to_string();
        let answer = room(&app, &alice, &unknown).await;
        let data = answer.ok();
        assert!(data.get("room").is_some(), "{}", answer.body);
        assert_eq!(data["room"], Value::Null);

        for malformed in ["not-a-uuid", ""] {
            let answer = room(&app, &alice, malformed).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("id"), "{malformed:?}: {}", answer.body);
        }
    }

    // ---------------------------------------------------------------- sendMessage

    async fn send_message_numbers_messages_from_one(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let room_id = app.create_room(&alice, "general", false).await;
        app.join_room(&bob, &room_id).await.ok();

        for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
            let message = app.send_message(&alice, &room_id, body).await;
            assert_eq!(message["seq"], i as i64 + 1, "{message}");
            assert_eq!(message["body"], body);
            assert_eq!(message["roomId"], room_id.as_str());
            assert_eq!(message["clientMsgId"], Value::Null);
            assert_eq!(message["editedAt"], Value::Null);
            assert!(message["createdAt"].is_string(), "{message}");
            assert!(message["cursor"].is_string(), "{message}");
            uuid::Uuid::parse_str(message["id"].as_str().unwrap()).expect("message ids are UUIDs");
            // The sender sees their own email.
            assert_eq!(message["author"]["id"], alice.id.as_str());
            assert_eq!(message["author"]["username"], "alice");
            assert_eq!(message["author"]["email"], alice.email.as_str());
        }
        let message = app.send_message(&bob, &room_id, "four").await;
        assert_eq!(message["seq"], 4);
        assert_eq!(message["author"]["id"], bob.id.as_str());
        assert_eq!(message["author"]["email"], bob.email.as_str());

        // Seqs are per room.
        let other = app.create_room(&bob, "other", false).await;
        assert_eq!(app.send_message(&bob, &other, "first here").await["seq"], 1);
        assert_eq!(app.send_message(&alice, &room_id, "five").await["seq"], 5);
    }

    async fn message_bodies_are_validated_in_characters(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        for body in [String::new(), " \n".into(), "\t \r\n ".into(), "a".repeat(4001), "😀".repeat(4001)] {
            let answer = app.send_message_raw(&alice, &room_id, &body, None).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("body"), "{} chars: {}", body.chars().count(), answer.body);
        }
        // Exactly 4000 characters of four bytes each: accepted and returned intact.
        let long = "😀".repeat(4000);
        let message = app.send_message(&alice, &room_id, &long).await;
        assert_eq!(message["body"], long.as_str());
        // Refused sends used no seq.
        assert_eq!(message["seq"], 1);
        // Bodies are kept as sent, surrounding blanks included.
        let padded = app.send_message(&alice, &room_id, "  indented\n").await;
        assert_eq!(padded["body"], "  indented\n");

        let page = history(&app, &alice, &room_id, json!({})).await;
        let page = &page.ok()["messages"];
        assert_eq!(seqs(page), [1, 2]);
        assert_eq!(edges(page)[0]["node"]["body"], long.as_str());
        assert_eq!(edges(page)[1]["node"]["body"], "  indented\n");
    }

    async fn only_members_can_send(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let public = app.create_room(&alice, "general", false).await;
        let private = app.create_room(&alice, "secret", true).await;

        // A public room bob has not joined.
        let answer = app.send_message_raw(&bob, &public, "hi", None).await;
        answer.expect_code("FORBIDDEN");
        assert_eq!(answer.data(), &Value::Null, "{}", answer.body);
        // A private room.
        app.send_message_raw(&bob, &private, "hi", Some("c-1"))
            .await
            .expect_code("FORBIDDEN");
        // No such room.
        let unknown = uuid::Uuid::new_v4().to_string();
        app.send_message_raw(&alice, &unknown, "hi", None).await.expect_code("NOT_FOUND");
        // Not a room id at all.
        let malformed = app.send_message_raw(&alice, "general", "hi", None).await;
        malformed.expect_code("BAD_USER_INPUT");
        assert_eq!(malformed.field(), Some("roomId"));

        // Nothing was stored, and no seq was used.
        for room_id in [&public, &private] {
            let page = history(&app, &alice, room_id, json!({})).await;
            assert!(edges(&page.ok()["messages"]).is_empty());
            assert_eq!(app.send_message(&alice, room_id, "first").await["seq"], 1);
        }
    }

    async fn concurrent_sends_get_consecutive_seqs(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let room_id = app.create_room(&alice, "busy", false).await;
        app.join_room(&bob, &room_id).await.ok();
        app.join_room(&carol, &room_id).await.ok();

        let sends = [&alice, &bob, &carol].into_iter().flat_map(|author| {
            let (app, room_id) = (&app, &room_id);
            (0..10).map(move |i| async move {
                let body = format!("{} #{i}", author.username);
                app.send_message_raw(author, room_id, &body, None).await
            })
        });
        let answers = futures_util::future::join_all(sends).await;
        let mut sent: Vec<(i64, String, String)> = answers
            .iter()
            .map(|answer| {
                let message = &answer.ok()["sendMessage"];
                (
                    message["seq"].as_i64().unwrap(),
                    message["id"].as_str().unwrap().to_owned(),
                    message["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        sent.sort();
        let returned_seqs: Vec<i64> = sent.iter().map(|(seq, _, _)| *seq).collect();
        assert_eq!(returned_seqs, (1..=30).collect::<Vec<_>>(), "no gaps, no duplicates");

        let page = history(&app, &alice, &room_id, json!({ "first": 100 })).await;
        let page = &page.ok()["messages"];
        assert_eq!(seqs(page), (1..=30).collect::<Vec<_>>());
        let stored: Vec<(i64, String, String)> = edges(page)
            .iter()
            .map(|e| {
                (
                    e["node"]["seq"].as_i64().unwrap(),
                    e["node"]["id"].as_str().unwrap().to_owned(),
                    e["node"]["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(stored, sent, "history holds exactly what the sends returned");
        assert_eq!(has_pages(page), (false, false));
        // And the next one follows on.
        assert_eq!(app.send_message(&bob, &room_id, "after the rush").await["seq"], 31);
    }

    // ---------------------------------------------------------------- clientMsgId

    async fn repeating_a_client_msg_id_returns_the_stored_message(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;

        let first = app.send_message_raw(&alice, &room_id, "hello", Some("m-1")).await;
        let first = first.ok()["sendMessage"].clone();
        assert_eq!(first["seq"], 1);
        assert_eq!(first["clientMsgId"], "m-1");
        let retry = app.send_message_raw(&alice, &room_id, "hello", Some("m-1")).await;
        let retry = &retry.ok()["sendMessage"];
        assert_eq!(retry["id"], first["id"]);
        assert_eq!(retry["seq"], 1);
        assert_eq!(retry["body"], "hello");
        assert_eq!(retry["createdAt"], first["createdAt"]);
        assert_eq!(retry["author"]["id"], alice.id.as_str());
        // A retry is the same message, whatever body it carries.
        let changed = app.send_message_raw(&alice, &room_id, "hello (edited)", Some("m-1")).await;
        let changed = &changed.ok()["sendMessage"];
        assert_eq!(changed["id"], first["id"]);
        assert_eq!(changed["body"], "hello");

        let page = history(&app, &alice, &room_id, json!({})).await;
        let page = &page.ok()["messages"];
        assert_eq!(ids(page), [first["id"].as_str().unwrap()]);
        // The repeats used no seq.
        assert_eq!(app.send_message(&alice, &room_id, "next").await["seq"], 2);
        let other = app.send_message_raw(&alice, &room_id, "other", Some("m-2")).await;
        assert_eq!(other.ok()["sendMessage"]["seq"], 3);
    }

    async fn concurrent_duplicate_sends_store_one_message(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;

        let sends = (0..5).map(|_| app.send_message_raw(&alice, &room_id, "only once", Some("dup-1")));
        let answers = futures_util::future::join_all(sends).await;
        let messages: Vec<&Value> = answers.iter().map(|a| &a.ok()["sendMessage"]).collect();
        for message in &messages {
            assert_eq!(message["id"], messages[0]["id"], "{messages:#?}");
            assert_eq!(message["seq"], 1, "{messages:#?}");
            assert_eq!(message["clientMsgId"], "dup-1");
        }

        let page = history(&app, &alice, &room_id, json!({})).await;
        let page = &page.ok()["messages"];
        assert_eq!(seqs(page), [1], "stored once");
        assert_eq!(edges(page)[0]["node"]["id"], messages[0]["id"]);
        // The losers rolled their seqs back: no gap.
        assert_eq!(app.send_message(&alice, &room_id, "next").await["seq"], 2);
    }

    async fn client_msg_ids_belong_to_their_author(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let room_id = app.create_room(&alice, "general", false).await;
        app.join_room(&bob, &room_id).await.ok();

        let from_alice = app.send_message_raw(&alice, &room_id, "hi", Some("shared")).await;
        let from_alice = from_alice.ok()["sendMessage"].clone();
        let from_bob = app.send_message_raw(&bob, &room_id, "hi", Some("shared")).await;
        let from_bob = &from_bob.ok()["sendMessage"];
        assert_ne!(from_bob["id"], from_alice["id"]);
        assert_eq!(from_bob["seq"], 2);
        assert_eq!(from_bob["author"]["id"], bob.id.as_str());

        let page = history(&app, &alice, &room_id, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1, 2]);
    }

    async fn reusing_a_client_msg_id_in_another_room_conflicts(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let first_room = app.create_room(&alice, "first", false).await;
        let second_room = app.create_room(&alice, "second", false).await;

        app.send_message_raw(&alice, &first_room, "hi", Some("m-1")).await.ok();
        let answer = app.send_message_raw(&alice, &second_room, "hi", Some("m-1")).await;
        answer.expect_code("CONFLICT");
        assert_eq!(answer.field(), Some("clientMsgId"), "{}", answer.body);

        let page = history(&app, &alice, &second_room, json!({})).await;
        assert!(edges(&page.ok()["messages"]).is_empty());
        assert_eq!(app.send_message(&alice, &second_room, "fresh").await["seq"], 1);
        let page = history(&app, &alice, &first_room, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1]);
    }

    async fn client_msg_ids_are_bounded(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        for id in ["x".repeat(101), "é".repeat(101), String::new()] {
            let answer = app.send_message_raw(&alice, &room_id, "hi", Some(&id)).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("clientMsgId"), "{id:?}: {}", answer.body);
        }
        let longest = "é".repeat(100);
        let answer = app.send_message_raw(&alice, &room_id, "hi", Some(&longest)).await;
        let message = &answer.ok()["sendMessage"];
        assert_eq!(message["clientMsgId"], longest.as_str());
        assert_eq!(message["seq"], 1);
    }

    // ---------------------------------------------------------------- history

    async fn history_pages_forward(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let sent = fill(&app, &alice, &room_id, 12).await;

        for via in [Via::Root, Via::Room] {
            let page = |args| read(&app, &alice, &room_id, via, args);
            let page1 = page(json!({ "first": 5 })).await;
            assert_eq!(seqs(&page1), [1, 2, 3, 4, 5], "{via:?}");
            assert_eq!(has_pages(&page1), (false, true), "{via:?}");
            assert_cursors_consistent(&page1);
            for (edge, message) in edges(&page1).iter().zip(&sent) {
                assert_eq!(&edge["node"], message, "{via:?}: history reads as the send returned");
            }

            let page2 = page(json!({ "first": 5, "after": cursor_of(&page1, 5) })).await;
            assert_eq!(seqs(&page2), [6, 7, 8, 9, 10], "{via:?}");
            assert_eq!(has_pages(&page2), (true, true), "{via:?}");
            assert_cursors_consistent(&page2);
            assert_eq!(page2["pageInfo"]["startCursor"], sent[5]["cursor"]);

            let page3 = page(json!({ "first": 5, "after": page2["pageInfo"]["endCursor"] })).await;
            assert_eq!(seqs(&page3), [11, 12], "{via:?}");
            assert_eq!(has_pages(&page3), (true, false), "{via:?}");
            assert_cursors_consistent(&page3);

            // Past the end: empty, and nothing after it.
            let past = page(json!({ "first": 5, "after": cursor_of(&page3, 12) })).await;
            assert!(edges(&past).is_empty(), "{via:?}: {past}");
            assert_eq!(past["pageInfo"]["hasNextPage"], false, "{via:?}");
            assert_cursors_consistent(&past);

            // A page that ends exactly at the last message has no next page.
            let exact = page(json!({ "first": 2, "after": cursor_of(&page2, 10) })).await;
            assert_eq!(seqs(&exact), [11, 12], "{via:?}");
            assert_eq!(has_pages(&exact), (true, false), "{via:?}");
        }
    }

    async fn history_pages_backward(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        fill(&app, &alice, &room_id, 12).await;

        for via in [Via::Root, Via::Room] {
            let page = |args| read(&app, &alice, &room_id, via, args);
            let newest = page(json!({ "last": 5 })).await;
            assert_eq!(seqs(&newest), [8, 9, 10, 11, 12], "{via:?}: oldest first within the page");
            assert_eq!(has_pages(&newest), (true, false), "{via:?}");
            assert_cursors_consistent(&newest);

            let before = page(json!({ "last": 5, "before": newest["pageInfo"]["startCursor"] })).await;
            assert_eq!(seqs(&before), [3, 4, 5, 6, 7], "{via:?}");
            assert_eq!(has_pages(&before), (true, true), "{via:?}");
            assert_cursors_consistent(&before);

            let oldest = page(json!({ "last": 5, "before": cursor_of(&before, 3) })).await;
            assert_eq!(seqs(&oldest), [1, 2], "{via:?}");
            assert_eq!(has_pages(&oldest), (false, true), "{via:?}");
            assert_cursors_consistent(&oldest);

            // A page that starts exactly at the first message has no previous page.
            let exact = page(json!({ "last": 2, "before": cursor_of(&before, 3) })).await;
            assert_eq!(seqs(&exact), [1, 2], "{via:?}");
            assert_eq!(has_pages(&exact), (false, true), "{via:?}");

            // `before` alone reads back with the default page size.
            let all_before = page(json!({ "before": cursor_of(&newest, 8) })).await;
            assert_eq!(seqs(&all_before), (1..=7).collect::<Vec<_>>(), "{via:?}");
            assert_eq!(has_pages(&all_before), (false, true), "{via:?}");
        }
    }

    async fn history_page_sizes_default_to_50_and_stop_at_100(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        fill(&app, &alice, &room_id, 101).await;

        let default = history(&app, &alice, &room_id, json!({})).await;
        let default = &default.ok()["messages"];
        assert_eq!(seqs(default), (1..=50).collect::<Vec<_>>());
        assert_eq!(has_pages(default), (false, true));

        let max = history(&app, &alice, &room_id, json!({ "first": 100 })).await;
        let max = &max.ok()["messages"];
        assert_eq!(seqs(max), (1..=100).collect::<Vec<_>>());
        assert_eq!(has_pages(max), (false, true));

        let max_back = history(&app, &alice, &room_id, json!({ "last": 100 })).await;
        let max_back = &max_back.ok()["messages"];
        assert_eq!(seqs(max_back), (2..=101).collect::<Vec<_>>());
        assert_eq!(has_pages(max_back), (true, false));

        // Explicit nulls are the defaults.
        let nulls = json!({ "first": null, "after": null, "last": null, "before": null });
        let via_room = room_history(&app, &alice, &room_id, nulls).await;
        assert_eq!(seqs(&via_room.ok()["room"]["messages"]), (1..=50).collect::<Vec<_>>());

        for (args, field) in [
            (json!({ "first": 101 }), "first"),
            (json!({ "last": 101 }), "last"),
            (json!({ "first": -1 }), "first"),
            (json!({ "last": -1 }), "last"),
        ] {
            let answer = history(&app, &alice, &room_id, args.clone()).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "{args}: {}", answer.body);
            let answer = room_history(&app, &alice, &room_id, args.clone()).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "Room.messages {args}: {}", answer.body);
        }
    }

    async fn history_arguments_are_validated(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let sent = fill(&app, &alice, &room_id, 3).await;
        let message_cursor = sent[1]["cursor"].as_str().unwrap().to_owned();
        let rooms = my_rooms(&app, &alice, None, None).await;
        let room_cursor = edges(&rooms.ok()["rooms"])[0]["cursor"].as_str().unwrap().to_owned();

        let both = history(&app, &alice, &room_id, json!({ "first": 2, "last": 2 })).await;
        both.expect_code("BAD_USER_INPUT");
        let both = room_history(&app, &alice, &room_id, json!({ "first": 2, "last": 2 })).await;
        both.expect_code("BAD_USER_INPUT");

        // Each direction takes its own cursor.
        for args in [
            json!({ "last": 2, "after": message_cursor }),
            json!({ "first": 2, "before": message_cursor }),
        ] {
            history(&app, &alice, &room_id, args.clone()).await.expect_code("BAD_USER_INPUT");
        }

        for (args, field) in [
            (json!({ "first": 2, "after": "garbage" }), "after"),
            (json!({ "after": "bm90IGEgY3Vyc29y" }), "after"), // base64 of "not a cursor"
            (json!({ "after": "" }), "after"),
            (json!({ "last": 2, "before": "garbage" }), "before"),
            // A room cursor is not a message cursor.
            (json!({ "first": 2, "after": room_cursor }), "after"),
            (json!({ "last": 2, "before": room_cursor }), "before"),
        ] {
            let answer = history(&app, &alice, &room_id, args.clone()).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "{args}: {}", answer.body);
            let answer = room_history(&app, &alice, &room_id, args.clone()).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "Room.messages {args}: {}", answer.body);
        }
        // The message cursor itself is fine.
        let page = history(&app, &alice, &room_id, json!({ "after": message_cursor })).await;
        assert_eq!(seqs(&page.ok()["messages"]), [3]);

        let malformed = history(&app, &alice, "general", json!({})).await;
        malformed.expect_code("BAD_USER_INPUT");
        assert_eq!(malformed.field(), Some("roomId"));
        let unknown = uuid::Uuid::new_v4().to_string();
        history(&app, &alice, &unknown, json!({})).await.expect_code("NOT_FOUND");
    }

    async fn empty_history_has_no_edges_and_no_cursors(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "quiet", false).await;
        for args in [json!({}), json!({ "first": 5 }), json!({ "last": 5 })] {
            let page = history(&app, &alice, &room_id, args.clone()).await;
            let via_room = room_history(&app, &alice, &room_id, args.clone()).await;
            for page in [&page.ok()["messages"], &via_room.ok()["room"]["messages"]] {
                assert!(edges(page).is_empty(), "{args}: {page}");
                assert_eq!(has_pages(page), (false, false), "{args}: {page}");
                assert_eq!(page["pageInfo"]["startCursor"], Value::Null, "{args}: {page}");
                assert_eq!(page["pageInfo"]["endCursor"], Value::Null, "{args}: {page}");
            }
        }
    }

    async fn private_history_is_for_members_and_public_history_for_everyone(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let public = app.create_room(&alice, "general", false).await;
        let private = app.create_room(&alice, "secret", true).await;
        fill(&app, &alice, &public, 3).await;
        fill(&app, &alice, &private, 3).await;

        // Carol has joined nothing: she reads the public room but not the private one.
        let page = history(&app, &carol, &public, json!({ "last": 2 })).await;
        let page = &page.ok()["messages"];
        assert_eq!(seqs(page), [2, 3]);
        assert_eq!(has_pages(page), (true, false));
        for args in [json!({}), json!({ "first": 1 }), json!({ "last": 1 })] {
            history(&app, &carol, &private, args.clone()).await.expect_code("FORBIDDEN");
            room_history(&app, &carol, &private, args).await.expect_code("FORBIDDEN");
        }
        // Having left, a former member is a stranger again.
        app.join_room(&bob, &public).await.ok();
        leave_room(&app, &bob, &public).await.ok();
        let page = history(&app, &bob, &public, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1, 2, 3]);
        let page = history(&app, &alice, &private, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1, 2, 3]);
    }

    async fn authors_emails_are_shown_only_on_the_viewers_own_messages(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let room_id = app.create_room(&alice, "general", false).await;
        app.join_room(&bob, &room_id).await.ok();
        app.send_message(&alice, &room_id, "from alice").await;
        app.send_message(&bob, &room_id, "from bob").await;

        let emails = |page: &Value| -> Vec<Value> {
            edges(page).iter().map(|e| e["node"]["author"]["email"].clone()).collect()
        };
        let for_alice = history(&app, &alice, &room_id, json!({})).await;
        assert_eq!(emails(&for_alice.ok()["messages"]), [json!(alice.email), Value::Null]);
        let for_bob = history(&app, &bob, &room_id, json!({})).await;
        assert_eq!(emails(&for_bob.ok()["messages"]), [Value::Null, json!(bob.email)]);
        let for_bob = room_history(&app, &bob, &room_id, json!({})).await;
        assert_eq!(emails(&for_bob.ok()["room"]["messages"]), [Value::Null, json!(bob.email)]);
        // A reader who wrote nothing sees no email at all; usernames stay visible.
        let for_carol = history(&app, &carol, &room_id, json!({})).await;
        let for_carol = &for_carol.ok()["messages"];
        assert_eq!(emails(for_carol), [Value::Null, Value::Null]);
        assert!(!for_carol.to_string().contains("@example.com"), "{for_carol}");
        let usernames: Vec<&Value> = edges(for_carol).iter().map(|e| &e["node"]["author"]["username"]).collect();
        assert_eq!(usernames, [&json!("alice"), &json!("bob")]);
    }

    async fn text_with_nul_characters_is_stored_or_refused_never_an_internal_error(db) {
        // U+0000 is a valid character in a GraphQL string. SQLite stores it, Postgres `text`
        // cannot: whichever the server chooses, the client must get its text back or a field
        // error, the same on both databases, and never INTERNAL_SERVER_ERROR.
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let mut stored = 0;

        let answer = app.send_message_raw(&alice, &room_id, "a\u{0}b", None).await;
        if stored_or_refused(&answer, "body") {
            assert_eq!(answer.data()["sendMessage"]["body"], "a\u{0}b");
            stored += 1;
        }
        let answer = app.send_message_raw(&alice, &room_id, "hi", Some("x\u{0}y")).await;
        if stored_or_refused(&answer, "clientMsgId") {
            assert_eq!(answer.data()["sendMessage"]["clientMsgId"], "x\u{0}y");
            stored += 1;
        }
        let answer = create_room_raw(&app, &alice, json!({ "name": "a\u{0}b" })).await;
        if stored_or_refused(&answer, "name") {
            assert_eq!(answer.data()["createRoom"]["name"], "a\u{0}b");
        }
        let page = history(&app, &alice, &room_id, json!({})).await;
        assert_eq!(edges(&page.ok()["messages"]).len(), stored);
        assert_eq!(app.send_message(&alice, &room_id, "next").await["seq"], stored as i64 + 1);
    }
}
