//! `searchMessages`: full-text search over the rooms the viewer may read, ranked, paged by
//! cursor, on each database's own engine (Postgres `tsvector`, SQLite FTS5).
use migration::{Migrator, MigratorTrait};
use sea_orm::Database;
use serde_json::{Value, json};

use super::*;
use crate::db_tests;

const EDIT: &str =
    "mutation($m: ID!, $b: String!) { editMessage(messageId: $m, body: $b) { body } }";
const DELETE: &str = "mutation($m: ID!) { deleteMessage(messageId: $m) }";

/// `searchMessages` as `viewer`; `args` holds any of `roomId`, `first`, `after`.
async fn search(app: &TestApp, viewer: &Account, query: &str, args: Value) -> Gql {
    let mut variables = args;
    variables["q"] = json!(query);
    app.gql(
        Some(&viewer.access_token),
        &format!(
            "query($q: String!, $roomId: ID, $first: Int, $after: String) {{ \
             searchMessages(query: $q, roomId: $roomId, first: $first, after: $after) {} }}",
            message_connection()
        ),
        variables,
    )
    .await
}

/// A search that must succeed; returns the connection.
async fn found(app: &TestApp, viewer: &Account, query: &str, args: Value) -> Value {
    search(app, viewer, query, args).await.ok()["searchMessages"].clone()
}

/// The bodies of a connection's messages, in order.
fn bodies(connection: &Value) -> Vec<String> {
    edges(connection)
        .iter()
        .map(|edge| edge["node"]["body"].as_str().expect("body").to_owned())
        .collect()
}

/// Every result of a search, page by page (`first` at a time); asserts each page's cursors.
async fn all_pages(app: &TestApp, viewer: &Account, query: &str, first: i32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = found(
            app,
            viewer,
            query,
            json!({ "first": first, "after": after }),
        )
        .await;
        assert!(edges(&page).len() <= first as usize, "{page}");
        assert_eq!(
            page["pageInfo"]["hasPreviousPage"],
            !after.is_null(),
            "{page}"
        );
        ids.extend(self::ids(&page));
        if page["pageInfo"]["hasNextPage"] != true {
            return ids;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

async fn on(app: &TestApp, by: &Account, query: &str, message: &Value, more: Value) -> Gql {
    let mut variables = more;
    variables["m"] = message["id"].clone();
    app.gql(Some(&by.access_token), query, variables).await
}

db_tests! {
    async fn messages_are_found_by_their_words(db) {
        let app = spawn_app(&db).await;
        let ann = app.register("ann").await;
        let room = app.create_room(&ann, "ops", false).await;
        let deploy = app.send_message(&ann, &room, "We deploy on Friday").await;
        app.send_message(&ann, &room, "lunch at noon").await;
        app.send_message(&ann, &room, "the deployment failed").await;

        let page = found(&app, &ann, "deploy", json!({})).await;
        assert_eq!(edges(&page).len(), 1, "{page}");
        let node = &edges(&page)[0]["node"];
        // The same Message a history page holds, its own cursor its place in the history.
        assert_eq!(node, &deploy);
        assert_ne!(edges(&page)[0]["cursor"], node["cursor"], "edges page the search");
        assert_eq!(has_pages(&page), (false, false));

        for (query, want) in [
            ("DEPLOY", vec!["We deploy on Friday"]),
            ("friday deploy", vec!["We deploy on Friday"]),
            ("deployment", vec!["the deployment failed"]),
            ("noon", vec!["lunch at noon"]),
        ] {
            assert_eq!(bodies(&found(&app, &ann, query, json!({})).await), want, "{query}");
        }
        // Whole words, every one of them, and nothing that is not there.
        for query in ["deplo", "friday lunch", "tuesday", "ops"] {
            let page = found(&app, &ann, query, json!({})).await;
            assert!(edges(&page).is_empty(), "{query}: {page}");
            assert_eq!(has_pages(&page), (false, false));
        }
    }

    async fn the_best_match_comes_first_then_the_newest(db) {
        let app = spawn_app(&db).await;
        let bea = app.register("bea").await;
        let room = app.create_room(&bea, "bakery", false).await;
        for body in ["cake for the team", "cake cake cake", "no sweets today", "more cake here", "cake and cake"] {
            app.send_message(&bea, &room, body).await;
        }
        let page = found(&app, &bea, "cake", json!({})).await;
        assert_eq!(
            bodies(&page),
            ["cake cake cake", "cake and cake", "more cake here", "cake for the team"],
            "more occurrences first; among equals the newest"
        );
        assert_cursors_consistent_for_search(&page);
    }

    async fn pages_follow_each_other_without_overlap_or_gap(db) {
        let app = spawn_app(&db).await;
        let cyd = app.register("cyd").await;
        let room = app.create_room(&cyd, "log", false).await;
        let elsewhere = app.create_room(&cyd, "elsewhere", false).await;
        // 23 matches in three ranks (the word 1, 2 or 3 times), many ties within each.
        for i in 0..23 {
            let times = i % 3 + 1;
            let body = format!("{} number {i}", vec!["build"; times].join(" "));
            app.send_message(&cyd, &room, &body).await;
        }
        app.send_message(&cyd, &room, "unrelated").await;
        let everything = ids(&found(&app, &cyd, "build", json!({ "first": 100 })).await);
        assert_eq!(everything.len(), 23);

        for first in [1, 5, 7, 23] {
            assert_eq!(all_pages(&app, &cyd, "build", first).await, everything, "first: {first}");
        }

        // Messages sent between two pages leave the order of the others alone: a rank
        // depends on the message and the search only.
        let page1 = found(&app, &cyd, "build", json!({ "first": 10 })).await;
        for i in 0..20 {
            app.send_message(&cyd, &elsewhere, &format!("other words {i}")).await;
        }
        let after = page1["pageInfo"]["endCursor"].clone();
        let rest = found(&app, &cyd, "build", json!({ "first": 100, "after": after })).await;
        let mut paged = ids(&page1);
        paged.extend(ids(&rest));
        assert_eq!(paged, everything);
        assert_eq!(has_pages(&rest), (true, false));

        // The default page is 50, the largest 100; a cursor of one list is refused by the other.
        let all = found(&app, &cyd, "build", json!({})).await;
        assert_eq!(edges(&all).len(), 23);
        let refused = search(&app, &cyd, "build", json!({ "first": 101 })).await;
        assert_eq!((refused.code(), refused.field()), (Some("BAD_USER_INPUT"), Some("first")));
        let history_cursor = edges(&all)[0]["node"]["cursor"].clone();
        let refused = search(&app, &cyd, "build", json!({ "after": history_cursor })).await;
        assert_eq!((refused.code(), refused.field()), (Some("BAD_USER_INPUT"), Some("after")));
        let search_cursor = edges(&all)[0]["cursor"].clone();
        let refused = history(&app, &cyd, &room, json!({ "after": search_cursor })).await;
        assert_eq!((refused.code(), refused.field()), (Some("BAD_USER_INPUT"), Some("after")));
        for garbage in ["garbage", "", "c2VhcmNoOjdmYzAwMDAwLjAw"] {
            let refused = search(&app, &cyd, "build", json!({ "after": garbage })).await;
            assert_eq!(refused.field(), Some("after"), "{garbage:?}: {}", refused.body);
        }
    }

    async fn a_search_covers_the_rooms_the_viewer_may_read(db) {
        let app = spawn_app(&db).await;
        let [dee, eve, fox, gus] = ["dee", "eve", "fox", "gus"].map(|n| app.register(n));
        let (dee, eve, fox, gus) = (dee.await, eve.await, fox.await, gus.await);
        let public = app.create_room(&dee, "public", false).await;
        let secret = app.create_room(&dee, "secret", true).await;
        let other = app.create_room(&eve, "other", false).await;
        app.add_members(&dee, &secret, &[&fox]).await.ok();
        app.send_message(&dee, &public, "treasure in the open").await;
        app.send_message(&dee, &secret, "treasure behind the door").await;
        app.send_message(&eve, &other, "treasure elsewhere").await;

        // Members of the private room find its messages; others do not, but do find those of
        // public rooms, members or not.
        let mut seen = bodies(&found(&app, &fox, "treasure", json!({})).await);
        seen.sort();
        assert_eq!(seen, ["treasure behind the door", "treasure elsewhere", "treasure in the open"]);
        let mut seen = bodies(&found(&app, &gus, "treasure", json!({})).await);
        seen.sort();
        assert_eq!(seen, ["treasure elsewhere", "treasure in the open"]);

        // With roomId, that room only, refused as its history would be.
        let only = found(&app, &fox, "treasure", json!({ "roomId": secret })).await;
        assert_eq!(bodies(&only), ["treasure behind the door"]);
        let only = found(&app, &gus, "treasure", json!({ "roomId": other })).await;
        assert_eq!(bodies(&only), ["treasure elsewhere"]);
        search(&app, &gus, "treasure", json!({ "roomId": secret })).await.expect_code("FORBIDDEN");
        let unknown = json!({ "roomId": "00000000-0000-0000-0000-000000000000" });
        search(&app, &gus, "treasure", unknown).await.expect_code("NOT_FOUND");
        let bad = search(&app, &gus, "treasure", json!({ "roomId": "not an id" })).await;
        assert_eq!((bad.code(), bad.field()), (Some("BAD_USER_INPUT"), Some("roomId")));

        // The banned read nothing of a room, public or not; a room everyone left, nobody.
        app.gql(
            Some(&dee.access_token),
            "mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u) }",
            json!({ "r": public, "u": gus.id }),
        )
        .await
        .ok();
        assert_eq!(bodies(&found(&app, &gus, "treasure", json!({})).await), ["treasure elsewhere"]);
        search(&app, &gus, "treasure", json!({ "roomId": public })).await.expect_code("FORBIDDEN");
        leave_room(&app, &eve, &other).await.ok();
        assert!(edges(&found(&app, &gus, "treasure", json!({})).await).is_empty());
        // Removed from the private room: no longer found.
        app.gql(
            Some(&dee.access_token),
            "mutation($r: ID!, $u: ID!) { removeMember(roomId: $r, userId: $u) }",
            json!({ "r": secret, "u": fox.id }),
        )
        .await
        .ok();
        assert_eq!(bodies(&found(&app, &fox, "treasure", json!({})).await), ["treasure in the open"]);
    }

    async fn deleted_and_edited_messages_are_found_as_they_are_now(db) {
        let app = spawn_app(&db).await;
        let hal = app.register("hal").await;
        let room = app.create_room(&hal, "drafts", false).await;
        let typo = app.send_message(&hal, &room, "the quick brwn fox").await;
        let gone = app.send_message(&hal, &room, "secret password hunter2").await;
        app.send_message(&hal, &room, "another fox").await;

        on(&app, &hal, EDIT, &typo, json!({ "b": "the quick brown fox" })).await.ok();
        assert!(edges(&found(&app, &hal, "brwn", json!({})).await).is_empty(), "old words");
        let page = found(&app, &hal, "brown", json!({})).await;
        assert_eq!(bodies(&page), ["the quick brown fox"]);
        assert!(edges(&page)[0]["node"]["editedAt"].is_string());
        assert_eq!(bodies(&found(&app, &hal, "fox", json!({})).await).len(), 2);

        on(&app, &hal, DELETE, &gone, json!({})).await.ok();
        for query in ["secret", "hunter2", "password"] {
            assert!(edges(&found(&app, &hal, query, json!({})).await).is_empty(), "{query}");
        }
        // Deleting the room takes its messages out of every search.
        app.gql(Some(&hal.access_token), "mutation($r: ID!) { deleteRoom(roomId: $r) }", json!({ "r": room }))
            .await
            .ok();
        assert!(edges(&found(&app, &hal, "fox", json!({})).await).is_empty());
    }

    async fn query_syntax_is_never_interpreted(db) {
        let app = spawn_app(&db).await;
        let ivy = app.register("ivy").await;
        let room = app.create_room(&ivy, "syntax", false).await;
        app.send_message(&ivy, &room, "foo said \"hello\" AND left OR stayed near the door").await;
        app.send_message(&ivy, &room, "bar: baz* (qux)").await;

        for (query, want) in [
            ("\"foo", 1),
            ("foo\"", 1),
            ("\"hello\"", 1),
            ("AND OR NEAR(", 1),
            ("and or near", 1),
            ("NEAR(foo, door)", 1),
            ("NEAR(foo door, 2)", 0),
            ("bar:", 1),
            ("body:bar", 0),
            ("baz*", 1),
            ("(qux)", 1),
            ("*", 0),
            ("\"", 0),
            ("-foo", 1),
            ("foo -bar", 0),
            ("foo | bar & !baz", 0),
            (":*", 0),
            ("^foo", 1),
            ("'); DROP TABLE messages; --", 0),
            ("\\", 0),
            ("👍", 0),
            ("a\u{301}", 0),
        ] {
            let answer = search(&app, &ivy, query, json!({})).await;
            let page = &answer.ok()["searchMessages"];
            assert_eq!(edges(page).len(), want, "{query:?}: {page}");
        }
        // The messages survived.
        assert_eq!(edges(&found(&app, &ivy, "door", json!({})).await).len(), 1);
    }

    async fn queries_are_bounded_and_rate_limited(db) {
        let app = spawn_app_with(&db, |c| c.limits.message_search_per_user = 5).await;
        let joe = app.register("joe").await;
        let room = app.create_room(&joe, "limits", false).await;
        let long = "a".repeat(200);
        app.send_message(&joe, &room, &long).await;

        // The bound is served; past it, 10 and 1,000 times past it, blank or empty, refused
        // unread (none of these count against the rate).
        assert_eq!(edges(&found(&app, &joe, &long, json!({})).await).len(), 1);
        for (query, why) in [
            ("a".repeat(201), "one past"),
            ("a".repeat(2_000), "10x"),
            ("a".repeat(200_000), "1,000x"),
            (String::new(), "empty"),
            (" \n\t ".into(), "blank"),
            ("a\0b".into(), "NUL"),
        ] {
            let refused = search(&app, &joe, &query, json!({})).await;
            assert_eq!((refused.code(), refused.field()), (Some("BAD_USER_INPUT"), Some("query")), "{why}");
        }
        // Each search that runs counts (one so far); past the limit, RATE_LIMITED.
        for _ in 0..4 {
            found(&app, &joe, "a", json!({})).await;
        }
        let limited = search(&app, &joe, "a", json!({})).await;
        limited.expect_code("RATE_LIMITED");
        assert!(limited.body["errors"][0]["extensions"]["retryAfter"].as_u64() > Some(0));
        // Per user: someone else still searches.
        let kim = app.register("kim").await;
        found(&app, &kim, "a", json!({})).await;
    }

    async fn messages_sent_before_search_existed_are_found(db) {
        let app = spawn_app(&db).await;
        let lee = app.register("lee").await;
        let room = app.create_room(&lee, "history", false).await;
        app.send_message(&lee, &room, "an old message").await;
        let edited = app.send_message(&lee, &room, "old typo").await;
        on(&app, &lee, EDIT, &edited, json!({ "b": "old fixed" })).await.ok();
        let deleted = app.send_message(&lee, &room, "old and gone").await;
        on(&app, &lee, DELETE, &deleted, json!({})).await.ok();

        // Undo the search migration, then start again: it indexes what is there.
        let database = app.stop().await;
        let conn = Database::connect(database.url.as_str()).await.expect("connect");
        Migrator::down(&conn, Some(1)).await.expect("migrate down");
        conn.close().await.ok();
        let app = spawn_on(database, |_| {}).await;
        let mut seen = bodies(&found(&app, &lee, "old", json!({})).await);
        seen.sort();
        assert_eq!(seen, ["an old message", "old fixed"]);
        assert!(edges(&found(&app, &lee, "typo", json!({})).await).is_empty());
        // And keeps up from there.
        app.send_message(&lee, &room, "a new old message").await;
        assert_eq!(edges(&found(&app, &lee, "old", json!({})).await).len(), 3);
    }
}

/// Each edge has a cursor and start/endCursor are the first and last; a search's edge cursors
/// are not its messages' history cursors.
#[track_caller]
fn assert_cursors_consistent_for_search(connection: &Value) {
    let edges = edges(connection);
    for edge in edges {
        assert!(edge["cursor"].is_string(), "{edge}");
        assert!(edge["cursor"].as_str().unwrap().len() <= 80, "{edge}");
        assert_ne!(edge["cursor"], edge["node"]["cursor"], "{edge}");
    }
    let info = &connection["pageInfo"];
    assert_eq!(
        info["startCursor"],
        edges.first().map_or(Value::Null, |e| e["cursor"].clone())
    );
    assert_eq!(
        info["endCursor"],
        edges.last().map_or(Value::Null, |e| e["cursor"].clone())
    );
}
