//! Writes whose request is dropped half-way: a `complete` follows a mutation's `subscribe`
//! before it has answered (as when a client goes away). Whatever was committed is announced
//! all the same: a stored message reaches its subscribers, a stored logout ends its session's
//! tokens here.
//!
//! The moment that matters is brief: the mutation must be taken back after its transaction
//! was sent to commit and before its answer. Each round takes it back a little earlier if it
//! had been stored, a little later if not, and so keeps near that moment; rounds go on until
//! several have taken a mutation back between its commit and its answer.
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{db_tests, helpers::*};

const SEND: &str =
    "mutation($r: ID!, $b: String!) { sendMessage(input: { roomId: $r, body: $b }) { seq } }";
const LOGOUT: &str = "mutation($t: String!) { logout(refreshToken: $t) }";

/// Rounds that took a mutation back after it was stored, and before its answer.
const WANTED: u32 = 5;
const MAX_ROUNDS: u32 = 600;

/// How long `query` takes over `ws`, from `subscribe` to its answer (the median of a few).
async fn duration_of(ws: &mut Ws, query: &str, variables: impl Fn(u32) -> Value) -> Duration {
    let mut took = Vec::new();
    for i in 0..5 {
        let id = format!("timed{i}");
        let start = Instant::now();
        ws.subscribe(&id, query, variables(i)).await;
        ws.next(&id).await;
        took.push(start.elapsed());
        assert_eq!(ws.recv().await["type"], "complete");
    }
    took.sort();
    took[2]
}

/// Subscribes `query`, waits `head_start`, sends `complete`, and reads until the server has
/// handled all of it. Returns whether the mutation answered first.
async fn take_back(
    ws: &mut Ws,
    id: &str,
    query: &str,
    variables: Value,
    head_start: Duration,
) -> bool {
    ws.subscribe(id, query, variables).await;
    // A timer would round up to a millisecond; the moment to hit is a fraction of one.
    let until = Instant::now() + head_start;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    ws.send(json!({ "type": "complete", "id": id })).await;
    ws.send(json!({ "type": "ping" })).await;
    let mut answered = false;
    loop {
        let message = ws.recv().await;
        match message["type"].as_str() {
            Some("pong") => return answered,
            Some("next") if message["id"] == id => answered = true,
            Some("complete") if message["id"] == id => {}
            _ => panic!("unexpected {message}"),
        }
    }
}

/// Head starts that home in on the moment between a mutation's commit and its answer.
struct Staircase {
    head_start: Duration,
    step: Duration,
    rounds: u32,
    hits: u32,
}

impl Staircase {
    fn new(whole: Duration) -> Self {
        Self {
            head_start: whole / 2,
            step: whole / 40,
            rounds: 0,
            hits: 0,
        }
    }

    fn more(&self) -> bool {
        assert!(
            self.rounds < MAX_ROUNDS,
            "{} of {MAX_ROUNDS} rounds took a mutation back after its commit",
            self.hits
        );
        self.hits < WANTED
    }

    fn outcome(&mut self, stored: bool, answered: bool) {
        self.rounds += 1;
        match (stored, answered) {
            (false, _) => self.head_start += self.step,
            (true, true) => self.head_start = self.head_start.saturating_sub(self.step),
            (true, false) => self.hits += 1,
        }
    }
}

db_tests! {
    async fn a_send_taken_back_mid_way_still_reaches_subscribers(db) {
        let app = spawn_app(&db).await;
        let ann = app.register("ann").await;
        let room = app.create_room(&ann, "dropped", false).await;
        let start = app.send_message(&ann, &room, "start").await;
        let mut listener = app.watching(&ann, &room, &start).await;
        let mut sender = app.ws_ready(&ann.access_token).await;
        let whole = duration_of(&mut sender, SEND, |i| json!({ "r": room, "b": format!("timed {i}") })).await;
        let mut delivered = 1;
        let mut stairs = Staircase::new(whole);
        while stairs.more() {
            let id = format!("m{}", stairs.rounds);
            let variables = json!({ "r": room, "b": id });
            let answered = take_back(&mut sender, &id, SEND, variables, stairs.head_start).await;
            // Everything stored by now reaches the subscriber, though nothing follows it.
            let newest = app
                .gql(Some(&ann.access_token), "query($r: ID!) { messages(roomId: $r, last: 1) { edges { node { seq } } } }", json!({ "r": room }))
                .await;
            let newest = newest.ok()["messages"]["edges"][0]["node"]["seq"].as_i64().unwrap();
            stairs.outcome(newest > delivered, answered);
            while delivered < newest {
                let next = listener.next_within("s", Duration::from_secs(5)).await;
                let next = next.unwrap_or_else(|| panic!("seq {} is stored and was never delivered", delivered + 1));
                assert_eq!(next["data"]["messageAdded"]["seq"], delivered + 1, "{next}");
                delivered += 1;
            }
        }
    }

    async fn a_logout_taken_back_mid_way_still_ends_the_session_here(db) {
        let app = spawn_app(&db).await;
        let bea = app.register("bea").await;
        let mut ws = app.ws_ready(&bea.access_token).await;
        let whole = duration_of(&mut ws, LOGOUT, |_| json!({ "t": "no such token" })).await;
        let mut stairs = Staircase::new(whole);
        while stairs.more() {
            let session = app.login(&bea).await;
            let id = format!("l{}", stairs.rounds);
            let variables = json!({ "t": session.refresh_token });
            let answered = take_back(&mut ws, &id, LOGOUT, variables, stairs.head_start).await;
            // The database says whether the logout was stored; this instance must agree.
            let refreshed = app.refresh_raw(&session.refresh_token).await;
            let stored = refreshed.message() == Some("session revoked");
            if stored {
                let me = app.me(&session.access_token).await;
                assert_eq!(me.message(), Some("session revoked"), "stored, yet the token works");
            } else {
                refreshed.ok();
            }
            stairs.outcome(stored, answered);
        }
    }
}
