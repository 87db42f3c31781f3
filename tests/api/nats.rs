//! Instances on one Postgres and one NATS (`BROKER_URL`): what one instance stores reaches the
//! others' subscribers, revocations close sockets everywhere, an instance hears only the rooms
//! and users it serves, and nothing is lost or repeated when NATS restarts or drops what a busy
//! instance could not take.
use std::time::Duration;

use serde_json::{Value, json};

use crate::{helpers::*, postgres_tests, subscriptions::seqs};

/// Two instances on one fresh database and `nats`, each configured further by `tune`.
async fn on_nats(
    db: &Backend,
    nats: &NatsServer,
    tune: impl Fn(&mut chat_server::config::Config),
) -> (TestApp, TestApp) {
    let url = nats.url(None);
    let configure = |c: &mut chat_server::config::Config| {
        c.broker.url = Some(url.clone().into());
        tune(c);
    };
    let first = spawn_app_with(db, configure).await;
    let second = spawn_on(first.db.clone(), configure).await;
    (first, second)
}

async fn logout(app: &TestApp, account: &Account) {
    app.gql(
        None,
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": account.refresh_token }),
    )
    .await
    .ok();
}

fn room_subject(room: &str) -> String {
    format!("chat.room.{}", room.replace('-', ""))
}

/// Waits until some instance follows `room` on NATS.
async fn following(nats: &NatsServer, room: &str) {
    for _ in 0..100 {
        if nats
            .connection_following(&room_subject(room))
            .await
            .is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nobody follows room {room}");
}

postgres_tests! {
    async fn messages_revocations_and_inboxes_cross_instances_over_nats(db) {
        let Some(nats) = NatsServer::start(&[]).await else { return };
        let (a, b) = on_nats(&db, &nats, |_| {}).await;
        let nia = a.register("nia").await;
        let oz = a.register("ozz").await;
        let room = a.create_room(&nia, "cluster", false).await;
        let start = b.send_message(&nia, &room, "start").await;
        let mut ws = a.watching(&nia, &room, &start).await;
        // Too long to travel whole: the instance reads it from the database.
        let big = "😀".repeat(4000);
        b.send_message(&nia, &room, "via b").await;
        b.send_message(&nia, &room, &big).await;
        a.send_message(&nia, &room, "via a").await;
        let bodies: Vec<_> = [ws.next("s").await, ws.next("s").await, ws.next("s").await]
            .iter()
            .map(|p| p["data"]["messageAdded"]["body"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(bodies, ["via b", big.as_str(), "via a"]);

        // An inbox on `a` learns of a room `b` adds its user to, and hears that room from then on.
        let mut mine = a.ws_ready(&oz.access_token).await;
        mine.subscribe("m", "subscription { myEvents { __typename ... on NewMessage { roomId seq } } }", json!({})).await;
        mine.sync().await;
        let other = b.create_room(&nia, "elsewhere", true).await;
        b.add_members(&nia, &other, &[&oz]).await.ok();
        assert_eq!(mine.next("m").await["data"]["myEvents"]["__typename"], "MemberJoined");
        // `myEvents` is live only: what is said before `a` follows the room is not replayed.
        following(&nats, &other).await;
        b.send_message(&nia, &other, "for oz").await;
        assert_eq!(
            mine.next("m").await["data"]["myEvents"],
            json!({ "__typename": "NewMessage", "roomId": other, "seq": 1 })
        );

        let mut doomed = a.ws_ready(&oz.access_token).await;
        logout(&b, &oz).await;
        let closed = doomed.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        assert_eq!(a.me(&oz.access_token).await.message(), Some("session revoked"));
    }

    async fn an_instance_hears_only_the_rooms_it_serves(db) {
        let Some(nats) = NatsServer::start(&[]).await else { return };
        let (a, b) = on_nats(&db, &nats, |_| {}).await;
        let pat = a.register("pat").await;
        let served = a.create_room(&pat, "served", false).await;
        let unserved = a.create_room(&pat, "unserved", false).await;
        let start = a.send_message(&pat, &served, "start").await;
        let mut ws = a.watching(&pat, &served, &start).await;
        let a_conn = nats.connection_following(&room_subject(&served)).await.expect("a follows its room");
        let cid = a_conn["cid"].clone();
        assert!(nats.connection_following(&room_subject(&unserved)).await.is_none(), "nobody follows the other");

        let sent_to_a = async || {
            let connections = nats.connections().await;
            let conn = connections.iter().find(|c| c["cid"] == cid).expect("a's connection");
            conn["out_msgs"].as_u64().unwrap()
        };
        let before = sent_to_a().await;
        for i in 0..20 {
            b.send_message(&pat, &unserved, &format!("not for a {i}")).await;
        }
        b.send_message(&pat, &served, "for a").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [2]);
        assert_eq!(sent_to_a().await - before, 1, "a was sent its room's message, and nothing of the other");

        // The last subscriber gone, the instance stops following the room.
        drop(ws);
        let mut followed = true;
        for _ in 0..100 {
            followed = nats.connection_following(&room_subject(&served)).await.is_some();
            if !followed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!followed, "a unsubscribed from the room nobody there watches");
    }

    async fn nothing_is_lost_or_repeated_through_a_nats_restart(db) {
        let Some(mut nats) = NatsServer::start(&[]).await else { return };
        let (a, b) = on_nats(&db, &nats, |_| {}).await;
        let pat = a.register("pat").await;
        let quin = a.register("quin").await;
        let room = a.create_room(&pat, "outage", false).await;
        let start = b.send_message(&pat, &room, "start").await;
        let mut ws = a.watching(&pat, &room, &start).await;
        let mut doomed = a.ws_ready(&quin.access_token).await;
        b.send_message(&pat, &room, "before").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [2], "a hears b before the outage");

        nats.kill().await;
        let (status, body) = a.ready_within(Duration::from_secs(10), |_, body| body["reason"] == "nats").await;
        assert_eq!((status, &body["reason"]), (503, &json!("nats")), "{body}");
        // Stored and answered while NATS is away.
        for i in 0..3 {
            let sent = b.send_message_raw(&pat, &room, &format!("unheard {i}"), None).await;
            assert_eq!(sent.ok()["sendMessage"]["seq"], json!(3 + i));
        }
        logout(&b, &quin).await;
        nats.resume().await;
        for app in [&a, &b] {
            let (status, body) = app.ready_within(Duration::from_secs(20), |status, _| status == 200).await;
            assert_eq!(status, 200, "ready again: {body}");
        }
        assert_eq!(seqs(&mut ws, "s", 3).await, [3, 4, 5], "caught up, once each");
        b.send_message(&pat, &room, "after").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [6], "and live again");
        assert!(ws.next_within("s", Duration::from_millis(500)).await.is_none(), "nothing twice");
        let closed = doomed.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        assert_eq!(a.me(&quin.access_token).await.message(), Some("session revoked"));
    }

    async fn what_nats_drops_for_a_busy_instance_is_caught_up_once(db) {
        let Some(nats) = NatsServer::start(&[]).await else { return };
        // One announcement held per subject: a burst overflows it, and NATS drops the rest.
        let (a, b) = on_nats(&db, &nats, |c| c.broker.nats_buffer = 1).await;
        let pat = a.register("pat").await;
        let room = a.create_room(&pat, "busy", false).await;
        let start = b.send_message(&pat, &room, "start").await;
        let mut ws = a.watching(&pat, &room, &start).await;
        let dropped_before = a.metric("chat_broker_dropped_total").await;
        let mut next = 2;
        // Each burst is followed by nothing that could reveal a gap at its end: only the
        // catch-up that a drop sets off can deliver a lost tail.
        for _ in 0..5 {
            let bodies: Vec<String> = (0..50).map(|i| format!("burst {i}")).collect();
            let burst = bodies.iter().map(|body| b.send_message_raw(&pat, &room, body, None));
            for answer in futures_util::future::join_all(burst).await {
                assert!(answer.ok()["sendMessage"]["seq"].is_i64());
            }
            let got = seqs(&mut ws, "s", 50).await;
            assert_eq!(got, (next..next + 50).collect::<Vec<_>>(), "every message, in order, once");
            next += 50;
        }
        assert!(ws.next_within("s", Duration::from_millis(500)).await.is_none(), "nothing twice");
        assert!(a.metric("chat_broker_dropped_total").await > dropped_before, "NATS dropped nothing");
    }

    async fn announcements_from_outside_the_cluster_change_nothing(db) {
        let Some(nats) = NatsServer::start(&[]).await else { return };
        let (a, _b) = on_nats(&db, &nats, |_| {}).await;
        let rex = a.register("rex").await;
        let room = a.create_room(&rex, "guarded", true).await;
        let start = a.send_message(&rex, &room, "start").await;
        let mut ws = a.watching(&rex, &room, &start).await;
        let me = a.me(&rex.access_token).await;
        let user_id = me.ok()["me"]["id"].as_str().unwrap().to_owned();
        let session_id = claims_of(&rex.access_token)["sid"].as_str().unwrap().to_owned();
        let refused_before = a.metric("chat_notifications_refused_total").await;

        // Anyone who may connect to NATS may publish on the instances' subjects.
        let intruder = async_nats::connect(nats.url(None)).await.expect("connect to NATS");
        let forged = [
            (room_subject(&room), json!({ "k": "m", "i": uuid::Uuid::now_v7(), "r": room, "s": 2, "e": 2,
                "a": user_id, "t": "2026-01-01T00:00:00Z", "b": "forged" }).to_string()),
            ("chat.all".to_owned(), json!({ "k": "x", "s": [session_id] }).to_string()),
            ("chat.all".to_owned(), "AAAA".repeat(20)),
            ("chat.all".to_owned(), String::from_utf8_lossy(&[0xff, 0xfe]).into_owned()),
        ];
        for (subject, payload) in forged {
            intruder.publish(subject, payload.into()).await.unwrap();
        }
        intruder.flush().await.unwrap();
        let mut refused = refused_before;
        for _ in 0..100 {
            refused = a.metric("chat_notifications_refused_total").await;
            if refused >= refused_before + 4.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused >= refused_before + 4.0, "every forgery refused: {refused_before} → {refused}");

        // The genuine seq 2 is delivered, not taken for a duplicate of the forged one, and
        // the session still works.
        a.send_message(&rex, &room, "genuine").await;
        let next = ws.next("s").await;
        assert_eq!(next["data"]["messageAdded"]["body"], "genuine", "{next}");
        assert_eq!(next["data"]["messageAdded"]["seq"], 2, "{next}");
        assert_eq!(a.me(&rex.access_token).await.ok()["me"]["id"], json!(user_id));
    }

    async fn credentials_travel_in_the_url_and_wrong_ones_leave_the_instance_unready(db) {
        let Some(nats) = NatsServer::start(&["--user", "chat", "--pass", "s3cret-pass"]).await else { return };
        let good = spawn_app_with(&db, |c| c.broker.url = Some(nats.url(Some("chat:s3cret-pass")).into())).await;
        let (status, _) = good.readyz().await;
        assert_eq!(status, 200);
        let bad = start_on(good.db.clone(), |c| c.broker.url = Some(nats.url(Some("chat:wrong")).into())).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (status, body) = bad.readyz().await;
        assert_eq!((status, &body["reason"]), (503, &json!("nats")), "{body}");
        // Requests that need no other instance are served all the same.
        let account: Value = bad.register("ulla").await.access_token.into();
        assert!(account.is_string());
    }
}
