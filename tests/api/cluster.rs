//! Several instances on one Postgres database: messages, revocations and socket closes reach
//! every instance, and a dropped LISTEN connection loses nothing.
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

use crate::{helpers::*, postgres_tests, subscriptions::seqs};

/// Two instances sharing one fresh database.
/// The second keeps every connection its pool may have open from the start: tests cut new
/// connections off while it works (`cut_listeners`), and what it does then must not need a
/// new one. (Warming its pool up with concurrent requests instead left it with fewer when the
/// machine was busy and the requests ran one after the other: a send then failed.)
async fn two_instances(db: &Backend) -> (TestApp, TestApp) {
    let first = spawn_app(db).await;
    let second = spawn_on(first.db.clone(), |c| {
        c.database.min_connections = c.database.max_connections;
    })
    .await;
    (first, second)
}

/// Runs `sql` on the maintenance database, with `{db}` standing for `app`'s database.
async fn admin_sql(app: &TestApp, sql: &str) -> u64 {
    let Some(Backend::Postgres(admin_url)) = Backend::postgres() else {
        unreachable!("postgres tests run with TEST_DATABASE_URL")
    };
    let admin = Database::connect(admin_url.as_str()).await.unwrap();
    let database = app
        .db
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let rows = admin
        .execute_unprepared(&sql.replace("{db}", database))
        .await
        .unwrap()
        .rows_affected();
    admin.close().await.ok();
    rows
}

/// Cuts every LISTEN connection to `app`'s database and keeps them from coming back: new
/// connections are refused (pools keep the ones they have). Returns how many were cut.
async fn cut_listeners(app: &TestApp) -> u64 {
    admin_sql(app, "ALTER DATABASE {db} ALLOW_CONNECTIONS false").await;
    admin_sql(
        app,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{db}' AND application_name = 'chat-server listener'",
    )
    .await
}

async fn restore_listeners(app: &TestApp) {
    admin_sql(app, "ALTER DATABASE {db} ALLOW_CONNECTIONS true").await;
}

postgres_tests! {
    async fn messages_sent_on_one_instance_reach_subscribers_on_another(db) {
        let (a, b) = two_instances(&db).await;
        let nia = a.register("nia").await;
        let room = a.create_room(&nia, "cluster", false).await;
        let start = b.send_message(&nia, &room, "start").await;
        let mut ws = a.watching(&nia, &room, &start).await;
        let big = "😀".repeat(4000);
        b.send_message(&nia, &room, "via b").await;
        b.send_message(&nia, &room, &big).await;
        a.send_message(&nia, &room, "via a").await;
        let bodies: Vec<_> = [ws.next("s").await, ws.next("s").await, ws.next("s").await]
            .iter()
            .map(|p| p["data"]["messageAdded"]["body"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(bodies, ["via b", big.as_str(), "via a"]);
    }

    async fn logout_on_one_instance_closes_sockets_on_another(db) {
        let (a, b) = two_instances(&db).await;
        let oz = a.register("ozz").await;
        let mut ws = a.ws_ready(&oz.access_token).await;
        b.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": oz.refresh_token }))
            .await
            .ok();
        let closed = ws.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        // And the access token is refused there too, from its in-memory set.
        assert_eq!(a.me(&oz.access_token).await.message(), Some("session revoked"));
    }

    async fn messages_sent_while_listeners_are_down_are_caught_up(db) {
        let (a, b) = two_instances(&db).await;
        let pat = a.register("pat").await;
        let room = a.create_room(&pat, "resilient", false).await;
        let start = b.send_message(&pat, &room, "start").await;
        let mut ws = a.watching(&pat, &room, &start).await;
        b.send_message(&pat, &room, "before").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [2]);

        assert!(cut_listeners(&a).await >= 2, "both instances LISTEN");
        // Nothing announces these, and nothing is sent after them to reveal the gap: only the
        // catch-up after the listener reconnects can deliver them.
        for i in 0..3 {
            b.send_message(&pat, &room, &format!("unheard {i}")).await;
        }
        restore_listeners(&a).await;
        assert_eq!(seqs(&mut ws, "s", 3).await, [3, 4, 5]);
    }

    async fn revocations_announced_while_listeners_are_down_still_close_sockets(db) {
        let (a, b) = two_instances(&db).await;
        let quin = a.register("quin").await;
        let mut ws = a.ws_ready(&quin.access_token).await;
        assert!(cut_listeners(&a).await >= 2);
        b.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": quin.refresh_token }))
            .await
            .ok();
        restore_listeners(&a).await;
        assert_eq!(ws.closed().await.code, 4403);
        assert_eq!(a.me(&quin.access_token).await.message(), Some("session revoked"));
    }
}

postgres_tests! {
    async fn a_silent_listener_is_noticed_replaced_and_caught_up(db) {
        // `b` talks to Postgres directly, `a` through a proxy that will go silent.
        let b = spawn_app(&db).await;
        let proxy = Proxy::to(&b.db.url).await;
        let heartbeat = Duration::from_secs(1);
        let a = spawn_on(b.db.clone(), |c| {
            c.database.url = proxy.url(&b.db.url).into();
            c.database.listen_heartbeat = heartbeat;
        })
        .await;
        let pat = b.register("pat").await;
        let quin = b.register("quin").await;
        let room = b.create_room(&pat, "outage", false).await;
        let start = b.send_message(&pat, &room, "start").await;
        let mut ws = a.watching(&pat, &room, &start).await;
        let mut doomed = a.ws_ready(&quin.access_token).await;
        b.send_message(&pat, &room, "before").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [2], "a hears b before the cut");

        proxy.cut();
        let cut_at = Instant::now();
        // Two heartbeats of silence at most, and the time to notice a readiness probe.
        let (status, body) = a
            .ready_within(heartbeat * 5, |_, body| body["reason"] == "listener")
            .await;
        assert_eq!((status, &body["reason"]), (503, &json!("listener")), "{body}");
        assert!(cut_at.elapsed() <= heartbeat * 3, "noticed after {:?}", cut_at.elapsed());

        // What happens meanwhile reaches `a` by no notification: only by catching up.
        for i in 0..3 {
            b.send_message(&pat, &room, &format!("unheard {i}")).await;
        }
        b.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": quin.refresh_token }))
            .await
            .ok();
        proxy.heal();
        let (status, body) = a.ready_within(Duration::from_secs(20), |status, _| status == 200).await;
        assert_eq!(status, 200, "a is ready again: {body}");
        assert_eq!(seqs(&mut ws, "s", 3).await, [3, 4, 5], "caught up, once each");
        b.send_message(&pat, &room, "after").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [6], "and live again");
        assert!(ws.next_within("s", Duration::from_millis(500)).await.is_none(), "nothing twice");
        let closed = doomed.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        assert_eq!(a.me(&quin.access_token).await.message(), Some("session revoked"));
    }

    async fn notifications_from_outside_the_cluster_change_nothing(db) {
        let app = spawn_app(&db).await;
        let rex = app.register("rex").await;
        let room = app.create_room(&rex, "guarded", true).await;
        let start = app.send_message(&rex, &room, "start").await;
        let mut ws = app.watching(&rex, &room, &start).await;
        let me = app.me(&rex.access_token).await;
        let (user_id, session_id) = (
            me.ok()["me"]["id"].as_str().unwrap().to_owned(),
            claims_of(&rex.access_token)["sid"].as_str().unwrap().to_owned(),
        );

        // A role that may do no more than connect, as any database user can.
        let role = format!("intruder_{}", uuid::Uuid::new_v4().simple());
        admin_sql(&app, &format!("CREATE ROLE {role} LOGIN")).await;
        let intruder_url = app.db.url.replacen("://postgres@", &format!("://{role}@"), 1);
        let intruder = Database::connect(intruder_url.as_str()).await.expect("connect as the intruder");
        let forged = [
            // The old plain-JSON shape of each event: the next message, a departure, a revocation.
            json!({ "k": "m", "i": uuid::Uuid::now_v7(), "r": room, "s": 2, "a": user_id,
                    "t": "2026-01-01T00:00:00Z", "b": "forged" }),
            json!({ "k": "l", "r": room, "u": user_id }),
            json!({ "k": "x", "s": [session_id] }),
        ];
        for payload in forged.iter().map(Value::to_string).chain(["AAAA".repeat(20)]) {
            intruder
                .execute_unprepared(&format!("NOTIFY chat_events, '{payload}'"))
                .await
                .expect("anyone may notify");
        }
        intruder.close().await.ok();
        admin_sql(&app, &format!("DROP ROLE {role}")).await;

        // The genuine seq 2 is delivered, not taken for a duplicate of the forged one.
        app.send_message(&rex, &room, "genuine").await;
        let next = ws.next("s").await;
        assert_eq!(next["data"]["messageAdded"]["body"], "genuine", "{next}");
        assert_eq!(next["data"]["messageAdded"]["seq"], 2, "{next}");
        assert_eq!(app.me(&rex.access_token).await.ok()["me"]["id"], json!(user_id));
        ws.sync().await;
    }

    async fn leaving_a_private_room_during_a_listener_gap_ends_the_subscription(db) {
        let (a, b) = two_instances(&db).await;
        let sam = a.register("sam").await;
        let tia = a.register("tia").await;
        let room = a.create_room(&tia, "secret", true).await;
        a.add_members(&tia, &room, &[&sam]).await.ok();
        let start = b.send_message(&tia, &room, "start").await;
        let mut ws = a.watching(&sam, &room, &start).await;
        b.send_message(&tia, &room, "hello").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [2]);

        assert!(cut_listeners(&a).await >= 2);
        // Neither the departure nor what follows it is announced to `a`.
        let left = b.gql(Some(&sam.access_token), "mutation($r: ID!) { leaveRoom(roomId: $r) }", json!({ "r": room })).await;
        assert_eq!(left.ok()["leaveRoom"], true);
        b.send_message(&tia, &room, "not for sam").await;
        restore_listeners(&a).await;
        // How sam went was not heard: the subscription ends as for anyone put out.
        let ended = ws.next("s").await;
        assert_eq!(ended["errors"][0]["extensions"]["code"], "FORBIDDEN", "nothing more: {ended}");
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "s" }));
        ws.sync().await;
    }

    async fn connections_ask_the_server_to_probe_them(db) {
        let app = spawn_app(&db).await;
        let conn = Database::connect(app.db.url.as_str()).await.unwrap();
        let sessions: Vec<String> = conn
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()",
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index(0).unwrap())
            .collect();
        assert!(sessions.iter().any(|name| name == "chat-server"), "{sessions:?}");
        assert!(sessions.iter().any(|name| name == "chat-server listener"), "{sessions:?}");
        let config = test_config(&app.db);
        let conn = chat_server::db::connect(&config.database).await.unwrap().reads;
        for (setting, value) in [("tcp_keepalives_idle", "30"), ("tcp_keepalives_interval", "10")] {
            let row = conn
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    format!("SHOW {setting}"),
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.try_get_by_index::<String>(0).unwrap(), value, "{setting}");
        }
    }
}

postgres_tests! {
    async fn a_removed_members_subscription_ends_on_the_other_instance(db) {
        let (a, b) = two_instances(&db).await;
        let (fay, gus) = (a.register("fay").await, a.register("gus").await);
        let room = a.create_room(&fay, "moderated", true).await;
        a.add_members(&fay, &room, &[&gus]).await.ok();
        let start = a.send_message(&fay, &room, "start").await;
        let mut ws = a.watching(&gus, &room, &start).await;
        // Heard live: the subscription has started (as a member) before the removal.
        a.send_message(&fay, &room, "still here?").await;
        assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], "still here?");
        let removed = b
            .gql(Some(&fay.access_token), "mutation($r: ID!, $u: ID!) { removeMember(roomId: $r, userId: $u) }", json!({ "r": room, "u": gus.id }))
            .await;
        assert_eq!(removed.ok()["removeMember"], true);
        let ended = ws.next("s").await;
        assert_eq!(ended["errors"][0]["extensions"]["code"], "FORBIDDEN", "{ended}");
        assert_eq!(ended["errors"][0]["message"], "you were removed from this room");
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "s" }));
        let read = a.gql(Some(&gus.access_token), "query($r: ID!) { messages(roomId: $r) { edges { cursor } } }", json!({ "r": room })).await;
        read.expect_code("FORBIDDEN");
    }

    async fn my_events_reach_an_added_user_on_the_other_instance(db) {
        let (a, b) = two_instances(&db).await;
        let (hal, ivy) = (a.register("hal").await, a.register("ivy").await);
        let mut ws = b.ws_ready(&ivy.access_token).await;
        ws.subscribe("m", "subscription { myEvents { __typename ... on MemberJoined { roomId by { username } } ... on NewMessage { roomId preview } } }", json!({})).await;
        ws.sync().await;
        let room = a.create_room(&hal, "across", true).await;
        a.add_members(&hal, &room, &[&ivy]).await.ok();
        let added = ws.next("m").await;
        assert_eq!(added["data"]["myEvents"], json!({ "__typename": "MemberJoined", "roomId": room, "by": { "username": "hal" } }));
        a.send_message(&hal, &room, "over here").await;
        let message = ws.next("m").await;
        assert_eq!(message["data"]["myEvents"], json!({ "__typename": "NewMessage", "roomId": room, "preview": "over here" }));
    }

    async fn room_events_during_a_listener_gap_are_caught_up(db) {
        let (a, b) = two_instances(&db).await;
        let (uma, vic) = (a.register("uma").await, a.register("vic").await);
        let room = a.create_room(&uma, "gaps", false).await;
        let mut ws = a.ws_ready(&uma.access_token).await;
        let query = "subscription($r: ID!) { roomEvents(roomId: $r) { __typename ... on MemberJoined { user { username } } ... on RoomUpdated { name } } }";
        ws.subscribe("e", query, json!({ "r": room })).await;
        ws.sync().await;
        assert!(cut_listeners(&a).await >= 2);
        // Unannounced, and nothing after them reveals the gap.
        b.join_room(&vic, &room).await.ok();
        b.gql(Some(&uma.access_token), "mutation($r: ID!) { updateRoom(roomId: $r, input: { name: \"quiet\" }) { id } }", json!({ "r": room })).await.ok();
        restore_listeners(&a).await;
        let first = ws.next("e").await;
        assert_eq!(first["data"]["roomEvents"], json!({ "__typename": "MemberJoined", "user": { "username": "vic" } }));
        let second = ws.next("e").await;
        assert_eq!(second["data"]["roomEvents"], json!({ "__typename": "RoomUpdated", "name": "quiet" }));
    }

    async fn my_events_learn_the_rooms_joined_during_a_listener_gap(db) {
        let (a, b) = two_instances(&db).await;
        let (wyn, xia) = (a.register("wyn").await, a.register("xia").await);
        let mut ws = a.ws_ready(&xia.access_token).await;
        ws.subscribe("m", "subscription { myEvents { __typename ... on NewMessage { roomId preview } } }", json!({})).await;
        ws.sync().await;
        let room = b.create_room(&wyn, "added unheard", true).await;
        assert!(cut_listeners(&a).await >= 2);
        b.add_members(&wyn, &room, &[&xia]).await.ok();
        restore_listeners(&a).await;
        a.ready_within(Duration::from_secs(10), |status, _| status == 200).await;
        // myEvents replays nothing, but once its instance has caught up it knows xia is in
        // the room: a message sent now reaches her.
        let deadline = Instant::now() + Duration::from_secs(10);
        let heard = loop {
            assert!(Instant::now() < deadline, "no message from the room joined during the gap");
            b.send_message(&wyn, &room, "found you").await;
            if let Some(heard) = ws.next_within("m", Duration::from_millis(500)).await {
                break heard;
            }
        };
        assert_eq!(heard["data"]["myEvents"], json!({ "__typename": "NewMessage", "roomId": room, "preview": "found you" }));
    }

    async fn typing_reaches_the_other_instance(db) {
        let (a, b) = two_instances(&db).await;
        let (yui, zed) = (a.register("yui").await, a.register("zed").await);
        let room = a.create_room(&yui, "across", false).await;
        a.join_room(&zed, &room).await.ok();
        let mut ws = b.ws_ready(&zed.access_token).await;
        ws.subscribe("e", "subscription($r: ID!) { roomEvents(roomId: $r) { ... on TypingChanged { user { username } typing } } }", json!({ "r": room })).await;
        ws.sync().await;
        a.gql(Some(&yui.access_token), "mutation($r: ID!) { setTyping(roomId: $r, typing: true) }", json!({ "r": room })).await.ok();
        let heard = ws.next("e").await;
        assert_eq!(heard["data"]["roomEvents"], json!({ "user": { "username": "yui" }, "typing": true }));
    }
}
