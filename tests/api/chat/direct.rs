//! Direct rooms: one per pair, whoever opens it and however many times at once.
use futures_util::future::join_all;
use serde_json::json;

use super::*;
use crate::db_tests;

const OPEN: &str = "mutation($u: ID!) { openDirectRoom(userId: $u) { id name isDirect isPrivate viewerRole memberCount } }";

db_tests! {
    async fn both_sides_opening_at_once_get_one_room(db) {
        let app = spawn_app(&db).await;
        let (cai, dov) = (app.register("cai").await, app.register("dov").await);
        let opens = (0..8).map(|i| {
            let (me, other) = if i % 2 == 0 { (&cai, &dov) } else { (&dov, &cai) };
            app.gql(Some(&me.access_token), OPEN, json!({ "u": other.id }))
        });
        let answers = join_all(opens).await;
        let ids: Vec<_> = answers.iter().map(|a| a.ok()["openDirectRoom"]["id"].clone()).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        // Each sees the other's name; both are plain members of a private, direct room.
        for (answer, i) in answers.iter().zip(0..) {
            let room = &answer.ok()["openDirectRoom"];
            assert_eq!(room["name"], if i % 2 == 0 { "dov" } else { "cai" });
            assert_eq!((&room["isDirect"], &room["isPrivate"]), (&json!(true), &json!(true)));
            assert_eq!((&room["viewerRole"], &room["memberCount"]), (&json!("MEMBER"), &json!(2)));
        }
        // And it is a room like the others for the two of them.
        let room = ids[0].as_str().unwrap();
        let start = app.send_message(&cai, room, "hi dov").await;
        let mut ws = app.watching(&dov, room, &start).await;
        app.send_message(&cai, room, "are you there?").await;
        assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], "are you there?");
        let mine = app.all_rooms(&dov).await;
        assert!(mine.iter().any(|r| r["id"] == room));
    }

    async fn a_direct_room_is_with_someone_else_who_exists(db) {
        let app = spawn_app(&db).await;
        let eli = app.register("eli").await;
        let myself = app.gql(Some(&eli.access_token), OPEN, json!({ "u": eli.id })).await;
        assert_eq!((myself.code(), myself.field()), (Some("BAD_USER_INPUT"), Some("userId")));
        let nobody = app.gql(Some(&eli.access_token), OPEN, json!({ "u": uuid::Uuid::now_v7() })).await;
        nobody.expect_code("NOT_FOUND");
        let garbage = app.gql(Some(&eli.access_token), OPEN, json!({ "u": "x".repeat(10_000) })).await;
        assert_eq!(garbage.field(), Some("userId"));
    }
}
