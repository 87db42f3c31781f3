//! Typing: heard by the other members, live only, ending by itself without a renewal.
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::db_tests;

const TYPING_EVENTS: &str = "subscription($r: ID!, $a: String) { roomEvents(roomId: $r, after: $a) { __typename \
    ... on TypingChanged { user { username } typing until } \
    ... on MessageAdded { message { body } } } }";
const SET_TYPING: &str = "mutation($r: ID!, $t: Boolean!) { setTyping(roomId: $r, typing: $t) }";

db_tests! {
    async fn typing_reaches_the_others_and_ends_by_itself(db) {
        let app = spawn_app_with(&db, |c| c.chat.typing_timeout = Duration::from_secs(1)).await;
        let (ann, bob) = (app.register("ann").await, app.register("bob").await);
        let room = app.create_room(&ann, "chatty", false).await;
        app.join_room(&bob, &room).await.ok();
        let before = app.send_message(&ann, &room, "hello").await;
        let watch = |account: &Account| {
            let (app, room, token) = (&app, room.clone(), account.access_token.clone());
            async move {
                let mut ws = app.ws_ready(&token).await;
                ws.subscribe("e", TYPING_EVENTS, json!({ "r": room })).await;
                ws.sync().await;
                ws
            }
        };
        let (mut bobs, mut anns) = (watch(&bob).await, watch(&ann).await);
        let set = |typing: bool| app.gql(Some(&ann.access_token), SET_TYPING, json!({ "r": room, "t": typing }));

        let started = std::time::Instant::now();
        assert_eq!(set(true).await.ok()["setTyping"], true);
        let heard = bobs.next("e").await["data"]["roomEvents"].clone();
        assert_eq!((&heard["__typename"], &heard["user"]["username"], &heard["typing"]), (&json!("TypingChanged"), &json!("ann"), &json!(true)));
        assert!(heard["until"].is_string());
        // A renewal this soon is not announced again; without another, it ends by itself.
        set(true).await.ok();
        let ended = bobs.next("e").await["data"]["roomEvents"].clone();
        assert_eq!((&ended["user"]["username"], &ended["typing"]), (&json!("ann"), &json!(false)));
        assert!(started.elapsed() >= Duration::from_secs(1), "it ended when it timed out");
        // Stopping is announced at once.
        set(true).await.ok();
        assert_eq!(bobs.next("e").await["data"]["roomEvents"]["typing"], true);
        set(false).await.ok();
        assert_eq!(bobs.next("e").await["data"]["roomEvents"]["typing"], false);
        // Ann never heard her own typing: her first event is the next message.
        app.send_message(&bob, &room, "hi ann").await;
        assert_eq!(anns.next("e").await["data"]["roomEvents"]["message"]["body"], "hi ann");
        assert_eq!(bobs.next("e").await["data"]["roomEvents"]["message"]["body"], "hi ann");

        // Never replayed: a resume brings the messages only.
        let mut resumed = app.ws_ready(&bob.access_token).await;
        resumed.subscribe("e", TYPING_EVENTS, json!({ "r": room, "a": before["cursor"] })).await;
        assert_eq!(resumed.next("e").await["data"]["roomEvents"]["message"]["body"], "hi ann");
        assert!(resumed.next_within("e", Duration::from_millis(300)).await.is_none());

        let outsider = app.register("outsider").await;
        app.gql(Some(&outsider.access_token), SET_TYPING, json!({ "r": room, "t": true })).await.expect_code("FORBIDDEN");
    }
}
