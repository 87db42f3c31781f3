//! Conversation: editing and deleting messages, replies, and reactions; each change an event of
//! the room's stream, received on resume in order and once.
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;
use crate::db_tests;

const EDIT: &str =
    "mutation($m: ID!, $b: String!) { editMessage(messageId: $m, body: $b) { body editedAt } }";
const DELETE: &str = "mutation($m: ID!) { deleteMessage(messageId: $m) }";
const REACT: &str = "mutation($m: ID!, $e: String!) { addReaction(messageId: $m, emoji: $e) { reactions { emoji count viewerHasReacted } } }";
const UNREACT: &str = "mutation($m: ID!, $e: String!) { removeReaction(messageId: $m, emoji: $e) { reactions { emoji count viewerHasReacted } } }";
const ONE: &str = "query($r: ID!) { messages(roomId: $r, first: 100) { edges { node { seq body editedAt deletedAt replyTo { body } reactions { emoji count viewerHasReacted } } } } }";

async fn on(app: &TestApp, by: &Account, query: &str, message: &Value, more: Value) -> Gql {
    let mut variables = more;
    variables["m"] = message["id"].clone();
    app.gql(Some(&by.access_token), query, variables).await
}

/// The room's history as `viewer` reads it, oldest first.
async fn history_of(app: &TestApp, viewer: &Account, room: &str) -> Vec<Value> {
    let page = app
        .gql(Some(&viewer.access_token), ONE, json!({ "r": room }))
        .await;
    page.ok()["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn make_admin(app: &TestApp, owner: &Account, room: &str, whom: &Account) {
    app.gql(
        Some(&owner.access_token),
        "mutation($r: ID!, $u: ID!) { setMemberRole(roomId: $r, userId: $u, role: ADMIN) { role } }",
        json!({ "r": room, "u": whom.id }),
    )
    .await
    .ok();
}

db_tests! {
    async fn messages_are_edited_by_their_author_and_deleted_by_them_or_moderators(db) {
        let app = spawn_app(&db).await;
        let [ann, ben, cat, dan, eli] = ["ann", "ben", "cat", "dan", "eli"].map(|n| app.register(n));
        let (ann, ben, cat, dan, eli) = (ann.await, ben.await, cat.await, dan.await, eli.await);
        let room = app.create_room(&ann, "talk", false).await;
        for member in [&ben, &cat, &dan] {
            app.join_room(member, &room).await.ok();
        }
        make_admin(&app, &ann, &room, &cat).await;
        let first = app.send_message(&ben, &room, "frist").await;
        let second = app.send_message(&ben, &room, "second").await;

        // Editing: the author only, members only, with the body rules of a send.
        for (who, code) in [(&ann, "FORBIDDEN"), (&cat, "FORBIDDEN"), (&eli, "FORBIDDEN")] {
            on(&app, who, EDIT, &first, json!({ "b": "first" })).await.expect_code(code);
        }
        for (body, why) in [("  ", "blank"), (&"b".repeat(4_001), "just over"), (&"b".repeat(40_010), "10x")] {
            let refused = on(&app, &ben, EDIT, &first, json!({ "b": body })).await;
            refused.expect_code("BAD_USER_INPUT");
            assert_eq!(refused.field(), Some("body"), "{why}");
        }
        let edited = on(&app, &ben, EDIT, &first, json!({ "b": "first" })).await;
        assert_eq!(edited.ok()["editMessage"]["body"], "first");
        assert!(edited.ok()["editMessage"]["editedAt"].is_string());
        let unknown = json!({ "id": "00000000-0000-0000-0000-000000000000" });
        on(&app, &ben, EDIT, &unknown, json!({ "b": "x" })).await.expect_code("NOT_FOUND");

        // Deleting: the author, or an OWNER or ADMIN; not another MEMBER, not outsiders.
        on(&app, &dan, DELETE, &first, json!({})).await.expect_code("FORBIDDEN");
        on(&app, &eli, DELETE, &first, json!({})).await.expect_code("FORBIDDEN");
        assert_eq!(on(&app, &cat, DELETE, &first, json!({})).await.ok()["deleteMessage"], true);
        assert_eq!(on(&app, &cat, DELETE, &first, json!({})).await.ok()["deleteMessage"], false, "once");
        assert_eq!(on(&app, &ben, DELETE, &second, json!({})).await.ok()["deleteMessage"], true);
        let refused = on(&app, &ben, EDIT, &first, json!({ "b": "back" })).await;
        refused.expect_code("BAD_USER_INPUT");
        assert_eq!(refused.field(), Some("messageId"));

        // The history keeps both, as tombstones: seqs without gaps, no bodies.
        let history = history_of(&app, &dan, &room).await;
        assert_eq!(history.len(), 2);
        for (message, seq) in history.iter().zip(1..) {
            assert_eq!((&message["seq"], &message["body"]), (&json!(seq), &json!("")));
            assert!(message["deletedAt"].is_string(), "{message}");
        }
        assert!(history[0]["editedAt"].is_string(), "an edit is not undone by deleting");
    }

    async fn replies_answer_messages_of_their_own_room(db) {
        let app = spawn_app(&db).await;
        let fay = app.register("fay").await;
        let room = app.create_room(&fay, "here", false).await;
        let other = app.create_room(&fay, "there", false).await;
        let question = app.send_message(&fay, &room, "why?").await;
        let elsewhere = app.send_message(&fay, &other, "over there").await;
        let reply = |target: &Value| {
            app.gql(
                Some(&fay.access_token),
                "mutation($i: SendMessageInput!) { sendMessage(input: $i) { body replyTo { body } } }",
                json!({ "i": { "roomId": room, "body": "because", "replyToId": target["id"] } }),
            )
        };
        let answer = reply(&question).await;
        assert_eq!(answer.ok()["sendMessage"]["replyTo"]["body"], "why?");
        for (target, why) in [(&elsewhere, "another room's"), (&json!({ "id": "00000000-0000-0000-0000-000000000000" }), "none"), (&json!({ "id": "not an id" }), "not an id")] {
            let refused = reply(target).await;
            refused.expect_code("BAD_USER_INPUT");
            assert_eq!(refused.field(), Some("replyToId"), "{why}");
        }
        on(&app, &fay, DELETE, &question, json!({})).await.ok();
        let history = history_of(&app, &fay, &room).await;
        assert!(history[1]["replyTo"].is_null(), "the answer to a deleted message answers nothing");
        reply(&question).await.expect_code("BAD_USER_INPUT");
    }

    async fn reactions_are_counted_once_per_user_under_concurrent_adds(db) {
        let app = spawn_app(&db).await;
        let gil = app.register("gil").await;
        let room = app.create_room(&gil, "votes", false).await;
        let message = app.send_message(&gil, &room, "lunch?").await;
        let names: Vec<String> = (0..20).map(|i| format!("voter{i}")).collect();
        let voters = futures_util::future::join_all(names.iter().map(|name| app.register(name))).await;
        for voter in &voters {
            app.join_room(voter, &room).await.ok();
        }
        // Everyone at once, each twice (a retry): one reaction each.
        let adds = voters.iter().chain(voters.iter()).map(|voter| on(&app, voter, REACT, &message, json!({ "e": "👍" })));
        for added in futures_util::future::join_all(adds).await {
            added.ok();
        }
        let firsts = voters.iter().take(5).map(|voter| on(&app, voter, REACT, &message, json!({ "e": "❤️" })));
        futures_util::future::join_all(firsts).await;
        let seen = on(&app, &voters[0], REACT, &message, json!({ "e": "❤" })).await;
        assert_eq!(
            seen.ok()["addReaction"]["reactions"],
            json!([
                { "emoji": "👍", "count": 20, "viewerHasReacted": true },
                { "emoji": "❤️", "count": 5, "viewerHasReacted": true },
            ]),
            "❤ and ❤️ are one reaction"
        );
        let history = history_of(&app, &gil, &room).await;
        assert_eq!(history[0]["reactions"][0], json!({ "emoji": "👍", "count": 20, "viewerHasReacted": false }));
        let taken_back = on(&app, &voters[0], UNREACT, &message, json!({ "e": "👍" })).await;
        assert_eq!(taken_back.ok()["removeReaction"]["reactions"][0], json!({ "emoji": "👍", "count": 19, "viewerHasReacted": false }));
        on(&app, &voters[0], UNREACT, &message, json!({ "e": "👍" })).await.ok();

        // At most 20 different emoji on a message; only emoji; outsiders not at all.
        let emoji = ["😀", "😂", "😍", "😎", "😢", "😡", "👏", "🙏", "🔥", "🎉", "💯", "✅", "👀", "🤔", "🙌", "🚀", "🍕", "☕"];
        for e in emoji {
            on(&app, &gil, REACT, &message, json!({ "e": e })).await.ok();
        }
        let refused = on(&app, &gil, REACT, &message, json!({ "e": "🌮" })).await;
        refused.expect_code("BAD_USER_INPUT");
        assert_eq!(refused.field(), Some("emoji"));
        on(&app, &voters[3], REACT, &message, json!({ "e": "🔥" })).await.ok();
        for (e, why) in [("x", "a letter"), ("👍👍", "two"), (&"👍".repeat(160), "10x the bound"), (&"👍".repeat(16_000), "1,000x the bound")] {
            let refused = on(&app, &gil, REACT, &message, json!({ "e": e })).await;
            refused.expect_code("BAD_USER_INPUT");
            assert_eq!(refused.field(), Some("emoji"), "{why}");
        }
        let outsider = app.register("outsider").await;
        on(&app, &outsider, REACT, &message, json!({ "e": "👍" })).await.expect_code("FORBIDDEN");
        // A deleted message loses its reactions and takes no more.
        on(&app, &gil, DELETE, &message, json!({})).await.ok();
        assert_eq!(history_of(&app, &gil, &room).await[0]["reactions"], json!([]));
        on(&app, &voters[1], REACT, &message, json!({ "e": "👍" })).await.expect_code("BAD_USER_INPUT");
    }

    async fn changes_made_while_away_arrive_once_in_order_on_resume(db) {
        let app = spawn_app(&db).await;
        let (hal, ida) = (app.register("hal").await, app.register("ida").await);
        let room = app.create_room(&hal, "log", false).await;
        app.join_room(&ida, &room).await.ok();
        let kept = app.send_message(&hal, &room, "typo").await;
        let gone = app.send_message(&hal, &room, "oops").await;
        let query = "subscription($r: ID!, $a: String) { roomEvents(roomId: $r, after: $a) { __typename \
            ... on MessageEdited { message { seq body } } \
            ... on MessageDeleted { user { username } message { seq body deletedAt } } \
            ... on ReactionAdded { emoji user { username } message { seq reactions { emoji count } } } \
            ... on ReactionRemoved { emoji message { seq } } \
            ... on MessageAdded { message { seq body } } } }";

        // Away from the second message on: an edit, a reaction, a deletion, a reaction taken
        // back, and one more edit of the first message.
        on(&app, &hal, EDIT, &kept, json!({ "b": "typed" })).await.ok();
        on(&app, &ida, REACT, &kept, json!({ "e": "👍" })).await.ok();
        on(&app, &hal, DELETE, &gone, json!({})).await.ok();
        on(&app, &ida, UNREACT, &kept, json!({ "e": "👍" })).await.ok();
        on(&app, &hal, EDIT, &kept, json!({ "b": "typed, finally" })).await.ok();
        let mut ws = app.ws_ready(&ida.access_token).await;
        ws.subscribe("e", query, json!({ "r": room, "a": gone["cursor"] })).await;
        let mut events = Vec::new();
        for _ in 0..5 {
            let payload = ws.next("e").await;
            events.push(payload["data"]["roomEvents"].clone());
        }
        // Each change once, in order; each shows the message as it is now.
        let now = json!({ "seq": 1, "body": "typed, finally" });
        assert_eq!(events[0], json!({ "__typename": "MessageEdited", "message": now }));
        assert_eq!(events[1]["__typename"], "ReactionAdded");
        assert_eq!((&events[1]["emoji"], &events[1]["user"]["username"], &events[1]["message"]["reactions"]), (&json!("👍"), &json!("ida"), &json!([])));
        assert_eq!(events[2]["__typename"], "MessageDeleted");
        assert_eq!((&events[2]["message"]["seq"], &events[2]["message"]["body"]), (&json!(2), &json!("")));
        assert!(events[2]["message"]["deletedAt"].is_string());
        assert_eq!(events[3], json!({ "__typename": "ReactionRemoved", "emoji": "👍", "message": { "seq": 1 } }));
        assert_eq!(events[4], json!({ "__typename": "MessageEdited", "message": now }));
        // Then live.
        on(&app, &ida, REACT, &kept, json!({ "e": "🎉" })).await.ok();
        let live = ws.next("e").await["data"]["roomEvents"].clone();
        assert_eq!(live["message"]["reactions"], json!([{ "emoji": "🎉", "count": 1 }]));
        assert!(ws.next_within("e", Duration::from_millis(300)).await.is_none(), "nothing twice");
        // messageAdded replays messages as they are now.
        let mut ws = app.ws_ready(&ida.access_token).await;
        ws.message_added("s", &room, Some(&URL_SAFE_NO_PAD.encode("msg:0"))).await;
        assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], "typed, finally");
        assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], "");
    }

    async fn mentions_name_members_and_count_until_read(db) {
        let app = spawn_app(&db).await;
        // quin exists but is not in the room: not mentionable there.
        let (oli, pam, _quin) = (app.register("oli").await, app.register("pam").await, app.register("quin").await);
        let room = app.create_room(&oli, "mentions", false).await;
        app.join_room(&pam, &room).await.ok();
        let mut ws = app.ws_ready(&pam.access_token).await;
        ws.subscribe("m", "subscription { myEvents { ... on NewMessage { seq mentionsViewer } } }", json!({})).await;
        ws.sync().await;
        let counts = async || {
            let answer = app.gql(Some(&pam.access_token), "query($r: ID!) { room(id: $r) { unreadCount mentionCount } }", json!({ "r": room })).await;
            answer.ok()["room"].clone()
        };

        app.send_message(&oli, &room, "no one").await;
        let hello = app.send_message(&oli, &room, "hi @Pam, @quin (not here) and @nobody; @pam again").await;
        assert_eq!(ws.next("m").await["data"]["myEvents"], json!({ "seq": 1, "mentionsViewer": false }));
        assert_eq!(ws.next("m").await["data"]["myEvents"], json!({ "seq": 2, "mentionsViewer": true }));
        let page = app.gql(Some(&oli.access_token), "query($r: ID!) { messages(roomId: $r) { edges { node { mentions { username } } } } }", json!({ "r": room })).await;
        assert_eq!(page.ok()["messages"]["edges"][1]["node"]["mentions"], json!([{ "username": "pam" }]), "members only, once");
        assert_eq!(counts().await, json!({ "unreadCount": 2, "mentionCount": 1 }));

        // Editing the mention away, and back; deleting; reading.
        let edited = on(&app, &oli, "mutation($m: ID!) { editMessage(messageId: $m, body: \"hi all\") { mentions { username } } }", &hello, json!({})).await;
        assert_eq!(edited.ok()["editMessage"]["mentions"], json!([]));
        assert_eq!(counts().await["mentionCount"], 0);
        on(&app, &oli, EDIT, &hello, json!({ "b": "hi @pam" })).await.ok();
        assert_eq!(counts().await["mentionCount"], 1);
        let again = app.send_message(&oli, &room, "@pam?").await;
        assert_eq!(counts().await, json!({ "unreadCount": 3, "mentionCount": 2 }));
        on(&app, &oli, DELETE, &again, json!({})).await.ok();
        assert_eq!(counts().await, json!({ "unreadCount": 2, "mentionCount": 1 }));
        app.gql(Some(&pam.access_token), "mutation($r: ID!) { markRead(roomId: $r, seq: 2) { id } }", json!({ "r": room })).await.ok();
        assert_eq!(counts().await, json!({ "unreadCount": 0, "mentionCount": 0 }));
    }
}
