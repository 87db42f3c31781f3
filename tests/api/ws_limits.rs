//! What one socket and one user may hold, and clients that cannot keep up: each ends in a
//! clear error or close code, and a client that resumes with `after` loses nothing.
use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{db_tests, helpers::*};

fn seq_of(payload: &Value) -> i64 {
    payload["data"]["messageAdded"]["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("a message: {payload}"))
}

/// Sends `count` of the largest messages, one after the other: 4000 four-byte characters,
/// 16 KB each. The kernel buffers a few MB per socket on loopback, which a client that stops
/// reading must exceed before the server notices.
async fn send_large(app: &TestApp, account: &Account, room: &str, count: usize) {
    let body = "😀".repeat(4000);
    for _ in 0..count {
        app.send_message(account, room, &body).await;
    }
}

db_tests! {
    async fn subscriptions_per_socket_are_limited(db) {
        let app = spawn_app_with(&db, |c| c.ws.max_subscriptions = 2).await;
        let amy = app.register("amy").await;
        let room = app.create_room(&amy, "r", false).await;
        // Subscriptions from a cursor: a send that comes before one is established is
        // replayed to it, not missed.
        let first = app.send_message(&amy, &room, "first").await;
        let after = first["cursor"].as_str();
        let mut ws = app.ws_ready(&amy.access_token).await;
        ws.message_added("a", &room, after).await;
        ws.message_added("b", &room, after).await;
        ws.message_added("c", &room, after).await;
        let refused = ws.recv().await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["id"], "c");
        assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
        assert_eq!(refused["payload"][0]["message"], "too many subscriptions on this socket");
        // The socket and its two subscriptions carry on.
        let hello = app.send_message(&amy, &room, "hello").await;
        let mut ids = vec![];
        for _ in 0..2 {
            let message = ws.recv().await;
            assert_eq!(message["type"], "next", "{message}");
            ids.push(message["id"].as_str().unwrap().to_owned());
        }
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        // Completing one makes room for another.
        ws.send(json!({ "type": "complete", "id": "a" })).await;
        ws.message_added("c", &room, hello["cursor"].as_str()).await;
        ws.sync().await;
        app.send_message(&amy, &room, "again").await;
        let mut ids = vec![];
        for _ in 0..2 {
            ids.push(ws.recv().await["id"].as_str().unwrap().to_owned());
        }
        ids.sort();
        assert_eq!(ids, ["b", "c"]);
    }

    async fn sockets_per_user_are_limited(db) {
        let app = spawn_app_with(&db, |c| c.ws.max_sockets_per_user = 2).await;
        let (bo, cy) = (app.register("bob").await, app.register("cyd").await);
        let first = app.ws_ready(&bo.access_token).await;
        let _second = app.ws_ready(&bo.access_token).await;
        let mut third = app.ws().await;
        third.send(json!({ "type": "connection_init", "payload": { "token": bo.access_token } })).await;
        assert_eq!(
            third.closed().await,
            Closed { code: 1013, reason: "too many sockets for this user".into() }
        );
        // Other users are not affected, and a socket that goes gives its place back.
        app.ws_ready(&cy.access_token).await;
        drop(first);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut ws = app.ws().await;
            ws.send(json!({ "type": "connection_init", "payload": { "token": bo.access_token } })).await;
            let (_, closed) = tokio::time::timeout(Duration::from_millis(500), ws.end()).await.unwrap_or_default();
            if closed.is_none() {
                break; // still open: acknowledged
            }
            assert!(tokio::time::Instant::now() < deadline, "the closed socket's place never came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn oversized_messages_close_1009(db) {
        let app = spawn_app_with(&db, |c| c.http.max_body_bytes = 1024).await;
        let dee = app.register("dee").await;
        let mut ws = app.ws_ready(&dee.access_token).await;
        ws.send_raw(Message::Text("x".repeat(2048).into())).await;
        assert_eq!(ws.closed().await, Closed { code: 1009, reason: "message too big".into() });
        // Before sign-in too.
        let mut ws = app.ws().await;
        ws.send_raw(Message::Text(format!("{{\"type\":\"connection_init\",\"payload\":{{\"pad\":\"{}\"}}}}", "x".repeat(2048)).into())).await;
        assert_eq!(ws.closed().await.code, 1009);
    }

    async fn a_subscriber_that_falls_behind_is_closed_and_resumes_without_loss(db) {
        let app = spawn_app_with(&db, |c| {
            c.ws.subscriber_buffer = 8;
            // Long enough that a loaded machine does not turn falling behind into a stall.
            c.ws.send_timeout = Duration::from_secs(60);
        })
        .await;
        let eve = app.register("eve").await;
        let room = app.create_room(&eve, "firehose", false).await;
        // Both follow from a cursor: what is sent before a subscription has started is
        // replayed to it, so each gets every message of the firehose (seqs 2 to 501).
        let zero = app.send_message(&eve, &room, "zero").await;
        let after = zero["cursor"].as_str();
        let mut slow = app.ws_slow(&eve.access_token).await;
        slow.message_added("s", &room, after).await;
        slow.sync().await;
        let mut fast = app.ws_ready(&eve.access_token).await;
        fast.message_added("f", &room, after).await;
        fast.sync().await;

        // The slow client reads nothing while 500 messages (8 MB) go out: its socket backs up,
        // the server's writes to it wait, and it falls far behind the room's 8 buffered.
        let total = 500;
        let sender = async {
            send_large(&app, &eve, &room, total).await;
        };
        let reader = async {
            let mut seqs = vec![];
            while seqs.len() < total {
                seqs.push(seq_of(&fast.next("f").await));
            }
            seqs
        };
        let ((), fast_seqs) = tokio::join!(sender, reader);
        let firehose = (2..=total as i64 + 1).collect::<Vec<_>>();
        assert_eq!(fast_seqs, firehose, "a client that keeps up is not slowed");

        let (payloads, closed) = slow.end().await;
        assert_eq!(
            closed,
            Some(Closed { code: 1013, reason: "subscriber fell behind; resume with after".into() })
        );
        let mut seqs: Vec<i64> = payloads.iter().map(seq_of).collect();
        assert!(seqs.len() < total, "the slow client was closed before the end");
        assert_eq!(seqs, firehose[..seqs.len()]);

        // Resuming from the last message it saw brings the rest, exactly once.
        let last = payloads.last().map(|p| p["data"]["messageAdded"]["cursor"].as_str().unwrap().to_owned());
        let mut resumed = app.ws_ready(&eve.access_token).await;
        resumed.message_added("s", &room, last.as_deref()).await;
        while seqs.len() < total {
            seqs.push(seq_of(&resumed.next("s").await));
        }
        assert_eq!(seqs, firehose);
    }

    async fn a_client_that_stops_reading_is_dropped(db) {
        let app = spawn_app_with(&db, |c| {
            c.ws.send_timeout = Duration::from_millis(500);
            c.ws.max_sockets_per_user = 1;
        })
        .await;
        let fay = app.register("fay").await;
        let room = app.create_room(&fay, "r", false).await;
        let mut stuck = app.ws_slow(&fay.access_token).await;
        stuck.message_added("s", &room, None).await;
        stuck.sync().await;
        send_large(&app, &fay, &room, 400).await;

        // The server gave up on the socket: the user's one place is free again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mut ws = app.ws().await;
            ws.send(json!({ "type": "connection_init", "payload": { "token": fay.access_token } })).await;
            let (_, closed) = tokio::time::timeout(Duration::from_millis(500), ws.end()).await.unwrap_or_default();
            match closed {
                None => break,
                Some(closed) => assert_eq!(closed.code, 1013, "{closed:?}"),
            }
            assert!(tokio::time::Instant::now() < deadline, "the stalled socket was never dropped");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // What the stalled client finds when it reads again: what was buffered, then the end
        // of the connection, with no close frame (none could get through).
        let (payloads, closed) = stuck.end().await;
        assert_eq!(closed, None);
        assert!(payloads.len() < 400, "{} messages arrived", payloads.len());
    }
}
