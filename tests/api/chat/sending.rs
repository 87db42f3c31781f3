//! sendMessage: seq numbering, validation, membership and clientMsgId idempotency.
use serde_json::{Value, json};

use super::*;
use crate::db_tests;

db_tests! {
    async fn send_message_numbers_messages_from_one(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let room_id = app.create_room(&alice, "general", false).await;
        app.join_room(&bob, &room_id).await.ok();

        for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
            let message = app.send_message(&alice, &room_id, body).await;
            assert_eq!(message["seq"], i as i64 + 1, "{message}");
            assert_eq!(message["body"], body);
            assert_eq!(message["roomId"], room_id.as_str());
            assert_eq!(message["clientMsgId"], Value::Null);
            assert_eq!(message["editedAt"], Value::Null);
            assert!(message["createdAt"].is_string(), "{message}");
            assert!(message["cursor"].is_string(), "{message}");
            uuid::Uuid::parse_str(message["id"].as_str().unwrap()).expect("message ids are UUIDs");
            // The sender sees their own email.
            assert_eq!(message["author"]["id"], alice.id.as_str());
            assert_eq!(message["author"]["username"], "alice");
            assert_eq!(message["author"]["email"], alice.email.as_str());
        }
        let message = app.send_message(&bob, &room_id, "four").await;
        assert_eq!(message["seq"], 4);
        assert_eq!(message["author"]["id"], bob.id.as_str());
        assert_eq!(message["author"]["email"], bob.email.as_str());

        // Seqs are per room.
        let other = app.create_room(&bob, "other", false).await;
        assert_eq!(app.send_message(&bob, &other, "first here").await["seq"], 1);
        assert_eq!(app.send_message(&alice, &room_id, "five").await["seq"], 5);
    }

    async fn message_bodies_are_validated_in_characters(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        for body in [String::new(), " \n".into(), "\t \r\n ".into(), "a".repeat(4001), "😀".repeat(4001)] {
            let answer = app.send_message_raw(&alice, &room_id, &body, None).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("body"), "{} chars: {}", body.chars().count(), answer.body);
        }
        // Exactly 4000 characters of four bytes each: accepted and returned intact.
        let long = "😀".repeat(4000);
        let message = app.send_message(&alice, &room_id, &long).await;
        assert_eq!(message["body"], long.as_str());
        // Refused sends used no seq.
        assert_eq!(message["seq"], 1);
        // Bodies are kept as sent, surrounding blanks included.
        let padded = app.send_message(&alice, &room_id, "  indented\n").await;
        assert_eq!(padded["body"], "  indented\n");

        let page = history(&app, &alice, &room_id, json!({})).await;
        let page = &page.ok()["messages"];
        assert_eq!(seqs(page), [1, 2]);
        assert_eq!(edges(page)[0]["node"]["body"], long.as_str());
        assert_eq!(edges(page)[1]["node"]["body"], "  indented\n");
    }

    async fn only_members_can_send(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let public = app.create_room(&alice, "general", false).await;
        let private = app.create_room(&alice, "secret", true).await;

        // A public room bob has not joined.
        let answer = app.send_message_raw(&bob, &public, "hi", None).await;
        answer.expect_code("FORBIDDEN");
        assert_eq!(answer.data(), &Value::Null, "{}", answer.body);
        // A private room.
        app.send_message_raw(&bob, &private, "hi", Some("c-1"))
            .await
            .expect_code("FORBIDDEN");
        // No such room.
        let unknown = uuid::Uuid::new_v4().to_string();
        app.send_message_raw(&alice, &unknown, "hi", None).await.expect_code("NOT_FOUND");
        // Not a room id at all.
        let malformed = app.send_message_raw(&alice, "general", "hi", None).await;
        malformed.expect_code("BAD_USER_INPUT");
        assert_eq!(malformed.field(), Some("roomId"));

        // Nothing was stored, and no seq was used.
        for room_id in [&public, &private] {
            let page = history(&app, &alice, room_id, json!({})).await;
            assert!(edges(&page.ok()["messages"]).is_empty());
            assert_eq!(app.send_message(&alice, room_id, "first").await["seq"], 1);
        }
    }

    async fn concurrent_sends_get_consecutive_seqs(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let room_id = app.create_room(&alice, "busy", false).await;
        app.join_room(&bob, &room_id).await.ok();
        app.join_room(&carol, &room_id).await.ok();

        let sends = [&alice, &bob, &carol].into_iter().flat_map(|author| {
            let (app, room_id) = (&app, &room_id);
            (0..10).map(move |i| async move {
                let body = format!("{} #{i}", author.username);
                app.send_message_raw(author, room_id, &body, None).await
            })
        });
        let answers = futures_util::future::join_all(sends).await;
        let mut sent: Vec<(i64, String, String)> = answers
            .iter()
            .map(|answer| {
                let message = &answer.ok()["sendMessage"];
                (
                    message["seq"].as_i64().unwrap(),
                    message["id"].as_str().unwrap().to_owned(),
                    message["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        sent.sort();
        let returned_seqs: Vec<i64> = sent.iter().map(|(seq, _, _)| *seq).collect();
        assert_eq!(returned_seqs, (1..=30).collect::<Vec<_>>(), "no gaps, no duplicates");

        let page = history(&app, &alice, &room_id, json!({ "first": 100 })).await;
        let page = &page.ok()["messages"];
        assert_eq!(seqs(page), (1..=30).collect::<Vec<_>>());
        let stored: Vec<(i64, String, String)> = edges(page)
            .iter()
            .map(|e| {
                (
                    e["node"]["seq"].as_i64().unwrap(),
                    e["node"]["id"].as_str().unwrap().to_owned(),
                    e["node"]["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(stored, sent, "history holds exactly what the sends returned");
        assert_eq!(has_pages(page), (false, false));
        // And the next one follows on.
        assert_eq!(app.send_message(&bob, &room_id, "after the rush").await["seq"], 31);
    }

    // ---------------------------------------------------------------- clientMsgId

    async fn repeating_a_client_msg_id_returns_the_stored_message(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;

        let first = app.send_message_raw(&alice, &room_id, "hello", Some("m-1")).await;
        let first = first.ok()["sendMessage"].clone();
        assert_eq!(first["seq"], 1);
        assert_eq!(first["clientMsgId"], "m-1");
        let retry = app.send_message_raw(&alice, &room_id, "hello", Some("m-1")).await;
        let retry = &retry.ok()["sendMessage"];
        assert_eq!(retry["id"], first["id"]);
        assert_eq!(retry["seq"], 1);
        assert_eq!(retry["body"], "hello");
        assert_eq!(retry["createdAt"], first["createdAt"]);
        assert_eq!(retry["author"]["id"], alice.id.as_str());
        // A retry is the same message, whatever body it carries.
        let changed = app.send_message_raw(&alice, &room_id, "hello (edited)", Some("m-1")).await;
        let changed = &changed.ok()["sendMessage"];
        assert_eq!(changed["id"], first["id"]);
        assert_eq!(changed["body"], "hello");

        let page = history(&app, &alice, &room_id, json!({})).await;
        let page = &page.ok()["messages"];
        assert_eq!(ids(page), [first["id"].as_str().unwrap()]);
        // The repeats used no seq.
        assert_eq!(app.send_message(&alice, &room_id, "next").await["seq"], 2);
        let other = app.send_message_raw(&alice, &room_id, "other", Some("m-2")).await;
        assert_eq!(other.ok()["sendMessage"]["seq"], 3);
    }

    async fn concurrent_duplicate_sends_store_one_message(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;

        let sends = (0..5).map(|_| app.send_message_raw(&alice, &room_id, "only once", Some("dup-1")));
        let answers = futures_util::future::join_all(sends).await;
        let messages: Vec<&Value> = answers.iter().map(|a| &a.ok()["sendMessage"]).collect();
        for message in &messages {
            assert_eq!(message["id"], messages[0]["id"], "{messages:#?}");
            assert_eq!(message["seq"], 1, "{messages:#?}");
            assert_eq!(message["clientMsgId"], "dup-1");
        }

        let page = history(&app, &alice, &room_id, json!({})).await;
        let page = &page.ok()["messages"];
        assert_eq!(seqs(page), [1], "stored once");
        assert_eq!(edges(page)[0]["node"]["id"], messages[0]["id"]);
        // The losers rolled their seqs back: no gap.
        assert_eq!(app.send_message(&alice, &room_id, "next").await["seq"], 2);
    }

    async fn client_msg_ids_belong_to_their_author(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let room_id = app.create_room(&alice, "general", false).await;
        app.join_room(&bob, &room_id).await.ok();

        let from_alice = app.send_message_raw(&alice, &room_id, "hi", Some("shared")).await;
        let from_alice = from_alice.ok()["sendMessage"].clone();
        let from_bob = app.send_message_raw(&bob, &room_id, "hi", Some("shared")).await;
        let from_bob = &from_bob.ok()["sendMessage"];
        assert_ne!(from_bob["id"], from_alice["id"]);
        assert_eq!(from_bob["seq"], 2);
        assert_eq!(from_bob["author"]["id"], bob.id.as_str());

        let page = history(&app, &alice, &room_id, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1, 2]);
    }

    async fn reusing_a_client_msg_id_in_another_room_conflicts(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let first_room = app.create_room(&alice, "first", false).await;
        let second_room = app.create_room(&alice, "second", false).await;

        app.send_message_raw(&alice, &first_room, "hi", Some("m-1")).await.ok();
        let answer = app.send_message_raw(&alice, &second_room, "hi", Some("m-1")).await;
        answer.expect_code("CONFLICT");
        assert_eq!(answer.field(), Some("clientMsgId"), "{}", answer.body);

        let page = history(&app, &alice, &second_room, json!({})).await;
        assert!(edges(&page.ok()["messages"]).is_empty());
        assert_eq!(app.send_message(&alice, &second_room, "fresh").await["seq"], 1);
        let page = history(&app, &alice, &first_room, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1]);
    }

    async fn client_msg_ids_are_bounded(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        for id in ["x".repeat(101), "é".repeat(101), String::new()] {
            let answer = app.send_message_raw(&alice, &room_id, "hi", Some(&id)).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("clientMsgId"), "{id:?}: {}", answer.body);
        }
        let longest = "é".repeat(100);
        let answer = app.send_message_raw(&alice, &room_id, "hi", Some(&longest)).await;
        let message = &answer.ok()["sendMessage"];
        assert_eq!(message["clientMsgId"], longest.as_str());
        assert_eq!(message["seq"], 1);
    }

    async fn text_with_nul_characters_is_stored_or_refused_never_an_internal_error(db) {
        // U+0000 is a valid character in a GraphQL string. SQLite stores it, Postgres `text`
        // cannot: whichever the server chooses, the client must get its text back or a field
        // error, the same on both databases, and never INTERNAL_SERVER_ERROR.
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let mut stored = 0;

        let answer = app.send_message_raw(&alice, &room_id, "a\u{0}b", None).await;
        if stored_or_refused(&answer, "body") {
            assert_eq!(answer.data()["sendMessage"]["body"], "a\u{0}b");
            stored += 1;
        }
        let answer = app.send_message_raw(&alice, &room_id, "hi", Some("x\u{0}y")).await;
        if stored_or_refused(&answer, "clientMsgId") {
            assert_eq!(answer.data()["sendMessage"]["clientMsgId"], "x\u{0}y");
            stored += 1;
        }
        let answer = create_room_raw(&app, &alice, json!({ "name": "a\u{0}b" })).await;
        if stored_or_refused(&answer, "name") {
            assert_eq!(answer.data()["createRoom"]["name"], "a\u{0}b");
        }
        let page = history(&app, &alice, &room_id, json!({})).await;
        assert_eq!(edges(&page.ok()["messages"]).len(), stored);
        assert_eq!(app.send_message(&alice, &room_id, "next").await["seq"], stored as i64 + 1);
    }
}
