//! `messageAdded`: live delivery, replay from a cursor, and the hand-over between them.
use std::collections::HashMap;

use serde_json::{Value, json};

use crate::{db_tests, helpers::*};

/// Reads `count` messages of subscription `id`, returning their seqs in arrival order.
pub async fn seqs(ws: &mut Ws, id: &str, count: usize) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let payload = ws.next(id).await;
        let message = &payload["data"]["messageAdded"];
        seqs.push(
            message["seq"]
                .as_i64()
                .unwrap_or_else(|| panic!("a message: {payload}")),
        );
    }
    seqs
}

db_tests! {
    async fn subscriptions_that_select_the_same_share_each_resolution_and_no_one_elses_view(db) {
        const DOC: &str = "subscription S($r: ID!, $a: String, $body: Boolean!) { \
            messageAdded(roomId: $r, after: $a) { \
                seq body @include(if: $body) author { username } reactions { emoji count } } }";
        const EMAIL: &str = "subscription E($r: ID!) { \
            messageAdded(roomId: $r) { seq author { username email } } }";
        let app = spawn_app(&db).await;
        let ann = app.register("ann").await;
        let room = app.create_room(&ann, "shared", false).await;
        let first = app.send_message(&ann, &room, "first").await;
        let mut sockets = Vec::new();
        // ben and cat select the same (ben's cursor says where his stream starts, not what
        // an item looks like); dan the same document without bodies; ann and eve the
        // author's email, which only ann may see.
        for (name, doc, variables) in [
            ("ben", DOC, json!({ "r": room, "a": first["cursor"], "body": true })),
            ("cat", DOC, json!({ "r": room, "body": true })),
            ("dan", DOC, json!({ "r": room, "body": false })),
            ("eve", EMAIL, json!({ "r": room })),
            ("ann", EMAIL, json!({ "r": room })),
        ] {
            let account = if name == "ann" { ann.clone() } else { app.register(name).await };
            app.join_room(&account, &room).await.ok();
            let mut ws = app.ws_ready(&account.access_token).await;
            ws.subscribe("s", doc, variables).await;
            ws.sync().await;
            sockets.push((name, ws));
        }
        let resolved = r#"graphql_shared_resolutions_total{outcome="resolved"}"#;
        let taken = r#"graphql_shared_resolutions_total{outcome="taken"}"#;
        let (resolved_before, taken_before) = (app.metric(resolved).await, app.metric(taken).await);

        for round in 1..=3 {
            let body = format!("round {round}");
            let sent = app.send_message(&ann, &room, &body).await;
            for (name, ws) in &mut sockets {
                let got = ws.next("s").await["data"]["messageAdded"].clone();
                assert_eq!(got["seq"], sent["seq"], "{name}: {got}");
                assert_eq!(got["author"]["username"], "ann", "{name}: {got}");
                match *name {
                    "ben" | "cat" => assert_eq!(got["body"], body.as_str(), "{name}: {got}"),
                    "dan" => assert!(got.get("body").is_none(), "{name}: {got}"),
                    "eve" => assert!(got["author"]["email"].is_null(), "{name}: {got}"),
                    _ => assert_eq!(got["author"]["email"], "ann@example.com", "{name}: {got}"),
                }
            }
        }
        // Per message: one resolution for ben and cat, taken by the other; one for dan; one
        // each for ann and eve. (Other tests of this process may add to both counters.)
        assert!(app.metric(taken).await - taken_before >= 3.0, "nothing was shared");
        assert!(app.metric(resolved).await - resolved_before >= 12.0);
    }

    async fn a_burst_reaches_every_subscription_of_one_selection_once_each_in_order(db) {
        // Most of these take an answer another has resolved and serialized, and are spared
        // async-graphql for it; what they are sent must still be every message, in order.
        let app = spawn_app(&db).await;
        let ann = app.register("ann").await;
        let ben = app.register("ben").await;
        let room = app.create_room(&ann, "burst", false).await;
        app.join_room(&ben, &room).await.ok();
        let mut sockets = Vec::new();
        for _ in 0..8 {
            let mut ws = app.ws_ready(&ben.access_token).await;
            ws.message_added("s", &room, None).await;
            ws.sync().await;
            sockets.push(ws);
        }
        let mut events = app.ws_ready(&ben.access_token).await;
        events.subscribe(
            "e",
            "subscription($r: ID!) { roomEvents(roomId: $r) { ... on MessageAdded { message { seq body } } } }",
            json!({ "r": room }),
        )
        .await;
        events.sync().await;

        for i in 1..=30 {
            app.send_message(&ann, &room, &format!("m{i}")).await;
        }
        let expected: Vec<i64> = (1..=30).collect();
        for ws in &mut sockets {
            assert_eq!(seqs(ws, "s", 30).await, expected);
        }
        for i in 1..=30 {
            let event = events.next("e").await;
            assert_eq!(event["data"]["roomEvents"]["message"]["seq"], i, "{event}");
            assert_eq!(event["data"]["roomEvents"]["message"]["body"], format!("m{i}"));
        }
    }

    async fn two_subscriptions_of_a_socket_to_one_selection_each_get_every_message(db) {
        // The socket handles one subscription's item, and sends it, before the other's: so
        // the other finds the answer serialized already and sends that, under its own id.
        const DOC: &str = "subscription($r: ID!) { messageAdded(roomId: $r) { seq body } }";
        let app = spawn_app(&db).await;
        let ann = app.register("ann").await;
        let room = app.create_room(&ann, "twice", false).await;
        let mut ws = app.ws_ready(&ann.access_token).await;
        ws.subscribe("a", DOC, json!({ "r": room })).await;
        ws.subscribe("b", DOC, json!({ "r": room })).await;
        ws.sync().await;

        for i in 1..=10 {
            app.send_message(&ann, &room, &format!("m{i}")).await;
        }
        let mut got: HashMap<String, Vec<i64>> = HashMap::new();
        for _ in 0..20 {
            let frame = ws.recv().await;
            assert_eq!(frame["type"], "next", "{frame}");
            let message = &frame["payload"]["data"]["messageAdded"];
            let seq = message["seq"].as_i64().unwrap();
            assert_eq!(message["body"], format!("m{seq}"), "{frame}");
            got.entry(frame["id"].as_str().unwrap().into())
                .or_default()
                .push(seq);
        }
        let every: Vec<i64> = (1..=10).collect();
        assert_eq!(got["a"], every);
        assert_eq!(got["b"], every);
    }

    async fn new_messages_arrive_live(db) {
        let app = spawn_app(&db).await;
        let ann = app.register("ann").await;
        let ben = app.register("ben").await;
        let room = app.create_room(&ann, "live", false).await;
        app.join_room(&ben, &room).await.ok();
        app.send_message(&ann, &room, "before").await;

        let mut ben_ws = app.ws_ready(&ben.access_token).await;
        ben_ws.message_added("s", &room, None).await;
        let mut ann_ws = app.ws_ready(&ann.access_token).await;
        ann_ws.message_added("s", &room, None).await;
        // Once the socket answers a later message, the subscription is live.
        ben_ws.sync().await;
        ann_ws.sync().await;

        let sent = app.send_message(&ann, &room, "hello").await;
        let received = ben_ws.next("s").await["data"]["messageAdded"].clone();
        // Without `after`, nothing sent before subscribing is replayed.
        assert_eq!(received["seq"], 2);
        assert_eq!(received["id"], sent["id"]);
        assert_eq!(received["body"], "hello");
        assert_eq!(received["roomId"], room);
        assert_eq!(received["createdAt"], sent["createdAt"]);
        assert_eq!(received["cursor"], sent["cursor"]);
        assert_eq!(received["author"]["username"], "ann");
        // The author's email is for the author's eyes.
        assert!(received["author"]["email"].is_null());
        let own = ann_ws.next("s").await["data"]["messageAdded"].clone();
        assert_eq!(own["author"]["email"], "ann@example.com");
    }

    async fn replay_then_live_has_no_gap_and_no_duplicate(db) {
        let app = spawn_app(&db).await;
        let cat = app.register("cat").await;
        let dan = app.register("dan").await;
        let room = app.create_room(&cat, "busy", false).await;
        app.join_room(&dan, &room).await.ok();
        let mut sent = Vec::new();
        for i in 1..=10 {
            sent.push(app.send_message(&cat, &room, &format!("m{i}")).await);
        }
        let after = sent[4]["cursor"].as_str().unwrap().to_owned();

        // Messages keep arriving while the subscription replays and goes live.
        let sender = {
            let (app, cat, room) = (&app, &cat, &room);
            async move {
                for i in 11..=60 {
                    app.send_message(cat, room, &format!("m{i}")).await;
                }
            }
        };
        let subscriber = async {
            let mut ws = app.ws_ready(&dan.access_token).await;
            ws.message_added("s", &room, Some(&after)).await;
            seqs(&mut ws, "s", 55).await
        };
        let ((), received) = tokio::join!(sender, subscriber);
        assert_eq!(received, (6..=60).collect::<Vec<_>>());
    }

    async fn every_subscriber_gets_every_message_once_in_order(db) {
        let app = spawn_app(&db).await;
        let senders = [app.register("eli").await, app.register("fox").await, app.register("gia").await];
        let room = app.create_room(&senders[0], "crowd", false).await;
        for sender in &senders[1..] {
            app.join_room(sender, &room).await.ok();
        }
        let start = app.send_message(&senders[0], &room, "start").await;
        let mut sockets = Vec::new();
        for sender in &senders {
            sockets.push(app.watching(sender, &room, &start).await);
        }
        let sends = senders.iter().flat_map(|sender| {
            (0..10).map(move |i| (sender, format!("{} {i}", sender.username)))
        });
        futures_util::future::join_all(
            sends.map(|(sender, body)| {
                let (app, room) = (&app, &room);
                async move { app.send_message(sender, room, &body).await }
            }),
        )
        .await;
        for ws in &mut sockets {
            assert_eq!(seqs(ws, "s", 30).await, (2..=31).collect::<Vec<_>>());
        }
    }

    async fn leaving_the_room_ends_the_subscription(db) {
        let app = spawn_app(&db).await;
        let hal = app.register("hal").await;
        let ida = app.register("ida").await;
        let room = app.create_room(&hal, "exit", false).await;
        app.join_room(&ida, &room).await.ok();
        let first = app.send_message(&hal, &room, "first").await;
        let mut ws = app.ws_ready(&ida.access_token).await;
        ws.message_added("s", &room, first["cursor"].as_str()).await;
        // Once this arrives the subscription is established.
        app.send_message(&hal, &room, "second").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [2]);
        let left = app
            .gql(Some(&ida.access_token), "mutation($r: ID!) { leaveRoom(roomId: $r) }", json!({ "r": room }))
            .await;
        assert_eq!(left.ok()["leaveRoom"], true);
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "s" }));
    }

    async fn subscribing_needs_membership_and_a_valid_cursor(db) {
        let app = spawn_app(&db).await;
        let jan = app.register("jan").await;
        let kim = app.register("kim").await;
        let room = app.create_room(&jan, "public", false).await;
        let mut ws = app.ws_ready(&kim.access_token).await;
        // Public, but not joined.
        ws.message_added("a", &room, None).await;
        assert_eq!(ws.next("a").await["errors"][0]["extensions"]["code"], "FORBIDDEN");
        assert_eq!(ws.recv().await["type"], "complete");
        app.join_room(&kim, &room).await.ok();
        ws.message_added("b", &room, Some("not-a-cursor")).await;
        let error = ws.next("b").await;
        assert_eq!(error["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(error["errors"][0]["extensions"]["field"], "after");
        assert_eq!(ws.recv().await["type"], "complete");
        ws.message_added("c", "not-an-id", None).await;
        assert_eq!(ws.next("c").await["errors"][0]["extensions"]["field"], "roomId");
    }

    async fn the_largest_messages_arrive_whole(db) {
        let app = spawn_app(&db).await;
        let lou = app.register("lou").await;
        let room = app.create_room(&lou, "big", false).await;
        let start = app.send_message(&lou, &room, "start").await;
        let mut ws = app.watching(&lou, &room, &start).await;
        // 4000 characters of 4 bytes: twice what a Postgres notification can carry.
        let body = "😀".repeat(4000);
        app.send_message(&lou, &room, &body).await;
        app.send_message(&lou, &room, "small").await;
        assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], body);
        assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], "small");
    }

    async fn one_socket_follows_many_rooms(db) {
        let app = spawn_app(&db).await;
        let mo = app.register("moe").await;
        let rooms = [
            app.create_room(&mo, "one", false).await,
            app.create_room(&mo, "two", true).await,
        ];
        let starts = [
            app.send_message(&mo, &rooms[0], "start").await,
            app.send_message(&mo, &rooms[1], "start").await,
        ];
        let mut ws = app.ws_ready(&mo.access_token).await;
        ws.message_added("one", &rooms[0], starts[0]["cursor"].as_str()).await;
        ws.message_added("two", &rooms[1], starts[1]["cursor"].as_str()).await;
        app.send_message(&mo, &rooms[1], "to two").await;
        app.send_message(&mo, &rooms[0], "to one").await;
        let mut got: HashMap<String, Value> = HashMap::new();
        for _ in 0..2 {
            let message = ws.recv().await;
            got.insert(message["id"].as_str().unwrap().into(), message["payload"]["data"]["messageAdded"]["body"].clone());
        }
        assert_eq!(got["one"], "to one");
        assert_eq!(got["two"], "to two");
    }
}
