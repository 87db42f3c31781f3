//! Closes the server starts reach the client, whatever the client is doing: a client that
//! sends back to back still gets the close frame that says why (4403, 1013, 1001), not a
//! connection reset (1006). And what a socket does after its session ended is refused.
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::{db_tests, helpers::*};

/// A client that sends frames back to back (the `n`th is `frame(n)`) while reading what the
/// server sends, once `reading` lets it.
struct Flood {
    sender: JoinHandle<u64>,
    reader: JoinHandle<(Option<Closed>, Instant, Vec<Value>)>,
}

impl Flood {
    fn start(ws: Ws, frame: fn(u64) -> Value) -> Self {
        let (go, reading) = tokio::sync::oneshot::channel();
        let _ = go.send(());
        Self::reading_after(ws, frame, reading)
    }

    fn reading_after(
        ws: Ws,
        frame: fn(u64) -> Value,
        reading: tokio::sync::oneshot::Receiver<()>,
    ) -> Self {
        let (mut sink, mut stream) = ws.into_inner().split();
        let sender = tokio::spawn(async move {
            let mut sent = 0;
            while sink
                .send(Frame::Text(frame(sent).to_string().into()))
                .await
                .is_ok()
            {
                sent += 1;
            }
            sent
        });
        let reader = tokio::spawn(async move {
            let mut nexts = Vec::new();
            let _ = reading.await;
            loop {
                match tokio::time::timeout(WS_WAIT, stream.next()).await {
                    Ok(Some(Ok(Frame::Close(frame)))) => {
                        let closed = frame.map(|f| Closed {
                            code: f.code.into(),
                            reason: f.reason.to_string(),
                        });
                        return (closed, Instant::now(), nexts);
                    }
                    Ok(Some(Ok(Frame::Text(text)))) => {
                        let message: Value = serde_json::from_str(&text).unwrap();
                        if message["type"] == "next" {
                            nexts.push(message);
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    // Reset, or ended without a close frame: what must not happen.
                    Ok(Some(Err(_)) | None) => return (None, Instant::now(), nexts),
                    Err(_) => panic!("the socket was not closed within {WS_WAIT:?}"),
                }
            }
        });
        Self { sender, reader }
    }

    /// How the socket ended, when, and the `next` messages read before.
    async fn ended(self) -> (Option<Closed>, Instant, Vec<Value>) {
        let ended = self.reader.await.unwrap();
        let sent = self.sender.await.unwrap();
        assert!(sent > 0);
        ended
    }
}

fn ping(_: u64) -> Value {
    json!({ "type": "ping" })
}

/// A mutation that creates a room, under a fresh id each time.
fn create_room(n: u64) -> Value {
    json!({
        "type": "subscribe",
        "id": format!("w{n}"),
        "payload": { "query": "mutation { createRoom(input: { name: \"slipped\" }) { id } }" },
    })
}

db_tests! {
    async fn a_flooding_client_gets_4403_at_once_when_its_session_ends(db) {
        let app = spawn_app(&db).await;
        let ann = app.register("ann").await;
        let ws = app.ws_ready(&ann.access_token).await;
        let flood = Flood::start(ws, ping);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let revoked = app.gql(Some(&ann.access_token), "mutation { logoutAll }", json!({})).await;
        assert_eq!(revoked.ok()["logoutAll"], 1);
        let revoked_at = Instant::now();
        let (closed, closed_at, _) = flood.ended().await;
        assert_eq!(closed, Some(Closed { code: 4403, reason: "session revoked".into() }));
        let after = closed_at.saturating_duration_since(revoked_at);
        assert!(after < Duration::from_secs(1), "closed {after:?} after the revocation");
    }

    async fn what_a_socket_sends_after_its_session_ended_is_refused(db) {
        let app = spawn_app(&db).await;
        let bea = app.register("bea").await;
        let other = app.login(&bea).await;
        let ws = app.ws_ready(&bea.access_token).await;
        // The socket floods mutations: each that runs creates a room.
        let flood = Flood::start(ws, create_room);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let logout = app
            .gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": bea.refresh_token }))
            .await;
        assert_eq!(logout.ok()["logout"], true);
        let revoked_by = chrono::Utc::now();
        let (closed, _, nexts) = flood.ended().await;
        assert_eq!(closed, Some(Closed { code: 4403, reason: "session revoked".into() }));
        assert!(!nexts.is_empty(), "writes ran before the revocation");
        // A write that started before the revocation may finish after it (its room is stamped
        // once it has a database connection); none starts after. A socket runs at most 4
        // operations at once, so at most 4 rooms can be stamped late. (Without its turns the
        // flood also held every pool connection, and the logout above timed out waiting.)
        let created: Vec<chrono::DateTime<chrono::Utc>> = app
            .all_rooms(&other)
            .await
            .iter()
            .map(|room| room["createdAt"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(!created.is_empty());
        let late: Vec<_> = created.iter().filter(|at| **at > revoked_by).collect();
        assert!(late.len() <= 4, "{} of {} rooms created after the revocation", late.len(), created.len());
    }

    async fn a_flooding_client_that_falls_behind_gets_1013(db) {
        let app = spawn_app_with(&db, |c| {
            c.ws.subscriber_buffer = 4;
            // The client below does not read for as long as the sending takes.
            c.ws.send_timeout = Duration::from_secs(60);
        })
        .await;
        let cy = app.register("cyd").await;
        let room = app.create_room(&cy, "firehose", false).await;
        let mut ws = app.ws_slow(&cy.access_token).await;
        ws.message_added("s", &room, None).await;
        ws.sync().await;
        // A client that sends back to back but stops reading for a while (a phone put away):
        // the server's writes to it wait, and its subscription falls behind the room. When it
        // reads again, it finds the close frame after what was already on its way.
        let (read_again, reading) = tokio::sync::oneshot::channel();
        let flood = Flood::reading_after(ws, ping, reading);
        // The largest messages (16 KB): a few MB fill what the kernel buffers for the socket.
        let total = 300;
        let body = "😀".repeat(4000);
        for _ in 0..total {
            app.send_message(&cy, &room, &body).await;
        }
        read_again.send(()).unwrap();
        let (closed, _, nexts) = flood.ended().await;
        assert_eq!(
            closed,
            Some(Closed { code: 1013, reason: "subscriber fell behind; resume with after".into() })
        );
        assert!(nexts.len() < total, "{} delivered", nexts.len());
    }

    async fn the_token_expires_at_one_moment_for_both_transports(db) {
        let app = spawn_app_with(&db, |c| c.auth.access_token_ttl = Duration::from_secs(2)).await;
        let dov = app.register("dov").await;
        // Well before the expiry, both accept the token.
        app.me(&dov.access_token).await.ok();
        let mut ws = app.ws_ready(&dov.access_token).await;
        assert_eq!(ws.closed().await, Closed { code: 4403, reason: "token expired".into() });
        // The socket closed at `exp`; from that instant HTTP refuses the token too (it used to
        // accept it for the seconds of leeway after).
        let me = app.me(&dov.access_token).await;
        assert_eq!(me.message(), Some("access token expired"), "{}", me.body);
    }
}

/// Shutdown while the client sends: the client still gets 1001 and reconnects elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_gets_1001_on_shutdown() {
    let app = spawn_app(&Backend::Sqlite).await;
    let eli = app.register("eli").await;
    let ws = app.ws_ready(&eli.access_token).await;
    let flood = Flood::start(ws, ping);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let db = app.stop().await;
    let (closed, _, _) = flood.ended().await;
    assert_eq!(
        closed,
        Some(Closed {
            code: 1001,
            reason: "server shutting down".into()
        })
    );
    drop(db);
}
