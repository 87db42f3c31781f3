//! Read markers and unread counts: markRead moves forward only, counts follow sends, reads on
//! another device and deletions, and the user's other devices hear of each read.
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::db_tests;

const STATE: &str = "query($r: ID!) { room(id: $r) { lastReadSeq unreadCount } }";
const MARK: &str =
    "mutation($r: ID!, $s: Int!) { markRead(roomId: $r, seq: $s) { lastReadSeq unreadCount } }";

async fn read_state(app: &TestApp, viewer: &Account, room: &str) -> serde_json::Value {
    app.gql(Some(&viewer.access_token), STATE, json!({ "r": room }))
        .await
        .ok()["room"]
        .clone()
}

db_tests! {
    async fn unread_counts_follow_sends_reads_and_deletions(db) {
        let app = spawn_app(&db).await;
        let (jo, kim, lee) = (app.register("jo_").await, app.register("kim").await, app.register("lee").await);
        let room = app.create_room(&jo, "news", false).await;
        app.join_room(&kim, &room).await.ok();
        let mut sent = Vec::new();
        for body in ["one", "two", "three"] {
            sent.push(app.send_message(&jo, &room, body).await);
        }
        assert_eq!(read_state(&app, &kim, &room).await, json!({ "lastReadSeq": 0, "unreadCount": 3 }));
        assert_eq!(read_state(&app, &jo, &room).await["unreadCount"], 0, "one's own messages are read");

        // Kim's other device follows her reads.
        let mut other = app.ws_ready(&kim.access_token).await;
        other.subscribe("m", "subscription { myEvents { __typename ... on RoomRead { roomId lastReadSeq } } }", json!({})).await;
        other.sync().await;
        let marked = app.gql(Some(&kim.access_token), MARK, json!({ "r": room, "s": 2 })).await;
        assert_eq!(marked.ok()["markRead"], json!({ "lastReadSeq": 2, "unreadCount": 1 }));
        let heard = other.next("m").await;
        assert_eq!(heard["data"]["myEvents"], json!({ "__typename": "RoomRead", "roomId": room, "lastReadSeq": 2 }));
        // Never back: an older seq changes nothing, and says nothing.
        let older = app.gql(Some(&kim.access_token), MARK, json!({ "r": room, "s": 1 })).await;
        assert_eq!(older.ok()["markRead"]["lastReadSeq"], 2);
        assert!(other.next_within("m", Duration::from_millis(300)).await.is_none());

        // A deleted message is no longer unread.
        app.gql(Some(&jo.access_token), "mutation($m: ID!) { deleteMessage(messageId: $m) }", json!({ "m": sent[2]["id"] })).await.ok();
        assert_eq!(read_state(&app, &kim, &room).await, json!({ "lastReadSeq": 2, "unreadCount": 0 }));
        // Who joins later has read what came before.
        app.join_room(&lee, &room).await.ok();
        assert_eq!(read_state(&app, &lee, &room).await, json!({ "lastReadSeq": 3, "unreadCount": 0 }));

        for (seq, why) in [(4, "past the newest"), (-1, "negative")] {
            let refused = app.gql(Some(&kim.access_token), MARK, json!({ "r": room, "s": seq })).await;
            refused.expect_code("BAD_USER_INPUT");
            assert_eq!(refused.field(), Some("seq"), "{why}");
        }
        let outsider = app.register("outsider").await;
        app.gql(Some(&outsider.access_token), MARK, json!({ "r": room, "s": 1 })).await.expect_code("FORBIDDEN");
        assert_eq!(read_state(&app, &outsider, &room).await, json!({ "lastReadSeq": null, "unreadCount": null }));
    }

    async fn unread_counts_stop_at_a_thousand(db) {
        let app = spawn_app(&db).await;
        let (max, ned) = (app.register("max").await, app.register("ned").await);
        let room = app.create_room(&max, "busy", false).await;
        app.join_room(&ned, &room).await.ok();
        let bodies: Vec<String> = (0..1_005).map(|i| format!("m{i}")).collect();
        // A few at a time, as clients send: a thousand at once would wait on the test's five
        // database connections for longer than a request may.
        use futures_util::StreamExt;
        let sends = bodies.iter().map(|body| app.send_message_raw(&max, &room, body, None));
        let sent: Vec<Gql> = futures_util::stream::iter(sends).buffer_unordered(16).collect().await;
        for sent in sent {
            sent.ok();
        }
        assert_eq!(read_state(&app, &ned, &room).await, json!({ "lastReadSeq": 0, "unreadCount": 1000 }));
        let marked = app.gql(Some(&ned.access_token), MARK, json!({ "r": room, "s": 1_000 })).await;
        assert_eq!(marked.ok()["markRead"]["unreadCount"], 5);
    }
}

const READ_BY: &str = "query($r: ID!, $s: Int!) { room(id: $r) { readBy(seq: $s) { username } } }";

db_tests! {
    async fn receipts_name_who_read_up_to_a_message_in_small_rooms(db) {
        let app = spawn_app_with(&db, |c| c.chat.receipts_max_members = 3).await;
        let (mo, ned, oz) = (app.register("mo_").await, app.register("ned").await, app.register("oz_").await);
        let room = app.create_room(&mo, "small", false).await;
        app.join_room(&ned, &room).await.ok();
        app.join_room(&oz, &room).await.ok();
        app.send_message(&mo, &room, "first").await;
        app.send_message(&mo, &room, "second").await;
        let read_by = |seq: i64| app.gql(Some(&mo.access_token), READ_BY, json!({ "r": room, "s": seq }));
        assert_eq!(read_by(1).await.ok()["room"]["readBy"], json!([]), "nobody marked anything yet");
        app.gql(Some(&ned.access_token), MARK, json!({ "r": room, "s": 2 })).await.ok();
        app.gql(Some(&oz.access_token), MARK, json!({ "r": room, "s": 1 })).await.ok();
        assert_eq!(read_by(1).await.ok()["room"]["readBy"], json!([{ "username": "ned" }, { "username": "oz_" }]));
        assert_eq!(read_by(2).await.ok()["room"]["readBy"], json!([{ "username": "ned" }]));

        // One member more than READ_RECEIPTS_MAX_MEMBERS: no receipts.
        let pat = app.register("pat").await;
        app.join_room(&pat, &room).await.ok();
        assert_eq!(read_by(1).await.ok()["room"]["readBy"], json!(null));
        let outsider = app.register("outsider").await;
        app.gql(Some(&outsider.access_token), READ_BY, json!({ "r": room, "s": 1 })).await.expect_code("FORBIDDEN");
    }
}
