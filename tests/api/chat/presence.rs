//! Presence: online while a socket is open on any instance, offline when the last one closes
//! or its instance dies; seen by those who share a room.
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use super::*;
use crate::{db_tests, postgres_tests, process::ServerProcess};

const PRESENCE_EVENTS: &str = "subscription($r: ID!) { roomEvents(roomId: $r, presence: true) { \
    __typename ... on PresenceChanged { roomId user { username } online lastSeenAt } \
    ... on MessageAdded { message { body } } } }";

/// `username`'s presence and the room's online count, as `viewer` sees them.
async fn presence(app: &TestApp, viewer: &Account, username: &str, room: &str) -> Value {
    app.gql(
        Some(&viewer.access_token),
        "query($u: String!, $r: ID!) { user(username: $u) { online lastSeenAt } \
         room(id: $r) { onlineCount } }",
        json!({ "u": username, "r": room }),
    )
    .await
    .ok()
    .clone()
}

/// The next PresenceChanged of a `PRESENCE_EVENTS` subscription.
async fn heard(ws: &mut Ws) -> Value {
    let event = ws.next_within("p", Duration::from_secs(15)).await;
    let event = event.expect("a presence change")["data"]["roomEvents"].clone();
    assert_eq!(event["__typename"], "PresenceChanged", "{event}");
    event
}

/// Waits until `instances` instances have recorded `user` as online.
async fn listed_on(app: &TestApp, user: &Account, instances: i64) {
    let db = sea_orm::Database::connect(app.db.url.as_str())
        .await
        .unwrap();
    let count = format!(
        "SELECT COUNT(*) AS n FROM presence WHERE user_id = '{}'",
        user.id
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                count.clone(),
            ))
            .await
            .unwrap();
        let n: i64 = row.unwrap().try_get("", "n").unwrap();
        if n == instances {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} is listed by {n} instances",
            user.username
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.close().await.ok();
}

db_tests! {
    async fn online_while_any_socket_is_open_offline_when_the_last_closes(db) {
        let app = spawn_app(&db).await;
        let (ann, bob, cid) = (app.register("ann").await, app.register("bob").await, app.register("cid").await);
        let room = app.create_room(&ann, "lobby", false).await;
        app.join_room(&bob, &room).await.ok();
        assert_eq!(presence(&app, &bob, "ann", &room).await, json!({ "user": { "online": false, "lastSeenAt": null }, "room": { "onlineCount": 0 } }));

        let mut bobs = app.ws_ready(&bob.access_token).await;
        bobs.subscribe("p", PRESENCE_EVENTS, json!({ "r": room })).await;
        bobs.sync().await;
        // Two sockets, one announcement.
        let first = app.ws_ready(&ann.access_token).await;
        let online = heard(&mut bobs).await;
        assert_eq!((&online["roomId"], &online["user"]["username"], &online["online"]), (&json!(room), &json!("ann"), &json!(true)));
        let second = app.ws_ready(&ann.access_token).await;
        let seen = presence(&app, &bob, "ann", &room).await;
        assert_eq!((&seen["user"]["online"], &seen["user"]["lastSeenAt"]), (&json!(true), &online["lastSeenAt"]));
        assert_eq!(seen["room"]["onlineCount"], 2, "ann and bob");

        // Closing one of two changes nothing; closing the last takes her offline.
        drop(first);
        assert!(bobs.next_within("p", Duration::from_millis(500)).await.is_none(), "still online");
        assert_eq!(presence(&app, &bob, "ann", &room).await["user"]["online"], true);
        drop(second);
        let offline = heard(&mut bobs).await;
        assert_eq!((&offline["user"]["username"], &offline["online"]), (&json!("ann"), &json!(false)));
        assert!(offline["lastSeenAt"].as_str() >= online["lastSeenAt"].as_str());
        let seen = presence(&app, &bob, "ann", &room).await;
        assert_eq!(seen, json!({ "user": { "online": false, "lastSeenAt": offline["lastSeenAt"] }, "room": { "onlineCount": 1 } }));

        // Only those who share a room with her see it (and she herself).
        let stranger = presence(&app, &cid, "ann", &room).await;
        assert_eq!(stranger["user"], json!({ "online": null, "lastSeenAt": null }));
        assert_eq!(presence(&app, &ann, "ann", &room).await["user"]["lastSeenAt"], offline["lastSeenAt"]);
        app.join_room(&cid, &room).await.ok();
        assert_eq!(presence(&app, &cid, "ann", &room).await["user"]["online"], false);
    }

    async fn presence_is_only_in_the_room_events_that_ask_for_it(db) {
        let app = spawn_app(&db).await;
        let (dee, eve) = (app.register("dee").await, app.register("eve").await);
        let room = app.create_room(&dee, "quiet", false).await;
        app.join_room(&eve, &room).await.ok();
        let mut plain = app.ws_ready(&dee.access_token).await;
        plain.subscribe("p", "subscription($r: ID!) { roomEvents(roomId: $r) { __typename } }", json!({ "r": room })).await;
        let mut asking = app.ws_ready(&dee.access_token).await;
        asking.subscribe("p", PRESENCE_EVENTS, json!({ "r": room })).await;
        plain.sync().await;
        asking.sync().await;
        let eves = app.ws_ready(&eve.access_token).await;
        assert_eq!(heard(&mut asking).await["online"], true);
        app.send_message(&eve, &room, "hi").await;
        assert_eq!(plain.next("p").await["data"]["roomEvents"]["__typename"], "MessageAdded");
        assert_eq!(asking.next("p").await["data"]["roomEvents"]["message"]["body"], "hi");
        drop(eves);
        assert_eq!(heard(&mut asking).await["online"], false);
        assert!(plain.next_within("p", Duration::from_millis(300)).await.is_none());
    }
}

postgres_tests! {
    async fn a_user_online_on_two_instances_stays_online_until_both_close(db) {
        let a = spawn_app(&db).await;
        let b = spawn_on(a.db.clone(), |_| {}).await;
        let (fay, gus) = (a.register("fay").await, a.register("gus").await);
        let room = a.create_room(&fay, "split", false).await;
        a.join_room(&gus, &room).await.ok();
        let mut guss = b.ws_ready(&gus.access_token).await;
        guss.subscribe("p", PRESENCE_EVENTS, json!({ "r": room })).await;
        guss.sync().await;
        let on_a = a.ws_ready(&fay.access_token).await;
        assert_eq!(heard(&mut guss).await["online"], true, "heard across instances");
        let on_b = b.ws_ready(&fay.access_token).await;
        // Each instance records its sockets' users in its own time: wait for b's, or closing
        // a's socket first would be a moment offline (announced, and rightly so).
        listed_on(&b, &fay, 2).await;
        drop(on_a);
        assert!(guss.next_within("p", Duration::from_millis(800)).await.is_none(), "still online on b");
        assert_eq!(a.gql(Some(&gus.access_token), "{ user(username: \"fay\") { online } }", json!({})).await.ok()["user"]["online"], true);
        drop(on_b);
        assert_eq!(heard(&mut guss).await["online"], false);
    }

    async fn users_of_an_instance_that_is_killed_go_offline(db) {
        let b = spawn_app_with(&db, |c| c.chat.presence_ttl = Duration::from_secs(2)).await;
        let a = ServerProcess::start(&[("DATABASE_URL", b.db.url.as_str()), ("PRESENCE_TTL_SECONDS", "2")]).await;
        let (hal, ivy) = (b.register("hal").await, b.register("ivy").await);
        let room = b.create_room(&hal, "fragile", false).await;
        b.join_room(&ivy, &room).await.ok();
        let mut ivys = b.ws_ready(&ivy.access_token).await;
        ivys.subscribe("p", PRESENCE_EVENTS, json!({ "r": room })).await;
        ivys.sync().await;
        let _hals = a.app.ws_ready(&hal.access_token).await;
        assert_eq!(heard(&mut ivys).await["online"], true);

        // Killed: nothing said goodbye. Its rows expire, and b sweeps them.
        a.kill();
        let offline = heard(&mut ivys).await;
        assert_eq!((&offline["user"]["username"], &offline["online"]), (&json!("hal"), &json!(false)));
        let seen = presence(&b, &ivy, "hal", &room).await;
        assert_eq!(seen["user"]["online"], false);
        assert_eq!(seen["room"]["onlineCount"], 1, "ivy only");
    }
}
