//! Replaying history (`messageAdded(after:)`) costs what the client takes: the database is
//! read a page at a time, a socket replays a few histories at once, and a client that goes
//! away mid-replay stops the reading.
use std::time::Duration;

use serde_json::{Value, json};

use crate::{db_tests, helpers::*, process::ServerProcess};

/// Sends `n` messages to `room` in batches of aliased mutations; returns the first's cursor.
async fn fill(app: &TestApp, account: &Account, room: &str, n: usize) -> String {
    let mut sent = 0;
    while sent < n {
        let operations: Vec<Value> = (0..16)
            .map(|_| {
                let count = 50.min(n - sent);
                let fields: Vec<String> = (0..count)
                    .map(|i| format!("m{i}: sendMessage(input: {{ roomId: \"{room}\", body: \"m{}\" }}) {{ seq }}", sent + i))
                    .collect();
                sent += count;
                json!({ "query": format!("mutation {{ {} }}", fields.join(" ")) })
            })
            .filter(|op| op["query"] != "mutation {  }")
            .collect();
        for op in app.batch(account, &operations).await {
            assert!(op.get("errors").is_none(), "{op}");
        }
    }
    let first = app
        .gql(
            Some(&account.access_token),
            "query($r: ID!) { messages(roomId: $r, first: 1) { edges { cursor } } }",
            json!({ "r": room }),
        )
        .await;
    first.ok()["messages"]["edges"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn seq_of(message: &Value) -> i64 {
    message["payload"]["data"]["messageAdded"]["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("a message: {message}"))
}

db_tests! {
    async fn a_long_history_replays_in_pages_then_goes_live(db) {
        let app = spawn_app(&db).await;
        let amy = app.register("amy").await;
        let room = app.create_room(&amy, "long", false).await;
        let first = fill(&app, &amy, &room, 450).await;
        let mut ws = app.ws_ready(&amy.access_token).await;
        ws.message_added("r", &room, Some(&first)).await;
        let mut seqs = Vec::new();
        while seqs.len() < 449 {
            seqs.push(seq_of(&ws.recv().await));
        }
        assert_eq!(seqs, (2..=450).collect::<Vec<_>>());
        app.send_message(&amy, &room, "live").await;
        assert_eq!(seq_of(&ws.recv().await), 451);
    }
}

/// Six replays on one socket: at most four are under way at any moment, and each still
/// arrives whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_replays_a_few_histories_at_once() {
    let app = spawn_app(&Backend::Sqlite).await;
    let bo = app.register("bob").await;
    let room = app.create_room(&bo, "long", false).await;
    let first = fill(&app, &bo, &room, 250).await;
    let mut ws = app.ws_ready(&bo.access_token).await;
    let ids: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    for id in &ids {
        ws.message_added(id, &room, Some(&first)).await;
    }
    let mut seen: std::collections::HashMap<String, Vec<i64>> = Default::default();
    let (mut under_way, mut most) = (0, 0);
    while seen.values().map(Vec::len).sum::<usize>() < 6 * 249 {
        let message = ws.recv().await;
        let seqs = seen
            .entry(message["id"].as_str().unwrap().to_owned())
            .or_default();
        seqs.push(seq_of(&message));
        match seqs.len() {
            1 => under_way += 1,
            249 => under_way -= 1,
            _ => {}
        }
        most = most.max(under_way);
    }
    assert!(most <= 4, "{most} replays at once");
    for id in &ids {
        assert_eq!(seen[id], (2..=250).collect::<Vec<_>>(), "{id}");
    }
}

/// The counter of catch-up reads of a server of its own.
async fn catch_up_reads(app: &TestApp) -> u64 {
    app.metric("chat_catch_up_reads_total").await as u64
}

/// A client that vanishes mid-replay (no close frame, just gone) stops the reading: the
/// server does not read the rest of a long history for nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_mid_replay_stops_the_reading() {
    let server = ServerProcess::start(&[
        ("WS_MAX_SOCKETS_PER_USER", "1"),
        ("SEND_RATE_PER_USER", "0"),
        ("SEND_RATE_PER_IP", "0"),
        ("WRITE_RATE_PER_USER", "0"),
        ("WRITE_RATE_PER_IP", "0"),
    ])
    .await;
    let app = &server.app;
    let cyd = app.register("cyd").await;
    let room = app.create_room(&cyd, "long", false).await;
    // 2,000 messages: 20 pages to replay.
    let first = fill(app, &cyd, &room, 2_000).await;
    let before = catch_up_reads(app).await;
    let mut ws = app.ws_ready(&cyd.access_token).await;
    ws.message_added("r", &room, Some(&first)).await;
    for _ in 0..5 {
        ws.recv().await;
    }
    drop(ws);
    // The socket's place comes back once the server has noticed.
    let deadline = tokio::time::Instant::now() + WS_WAIT;
    loop {
        let mut ws = app.ws().await;
        ws.send(json!({ "type": "connection_init", "payload": { "token": cyd.access_token } }))
            .await;
        match ws.recv_or_closed().await {
            Ok(ack) if ack["type"] == "connection_ack" => break,
            other => assert_eq!(other.err().flatten().map(|c| c.code), Some(1013)),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the vanished socket was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let read = catch_up_reads(app).await - before;
    assert!((1..=3).contains(&read), "{read} of 20 pages read");
}
