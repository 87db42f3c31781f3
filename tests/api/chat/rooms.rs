//! createRoom, joinRoom, leaveRoom, rooms, publicRooms and room.
use serde_json::{Value, json};

use super::*;
use crate::db_tests;

db_tests! {
    async fn create_room_makes_the_creator_a_member_with_a_trimmed_public_room(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        // isPrivate omitted: defaults to false.
        let answer = create_room_raw(&app, &alice, json!({ "name": "  general \n" })).await;
        let created = &answer.ok()["createRoom"];
        assert_eq!(created["name"], "general");
        assert_eq!(created["isPrivate"], false);
        assert!(created["createdAt"].is_string(), "{created}");
        let id = created["id"].as_str().unwrap();
        uuid::Uuid::parse_str(id).expect("room ids are UUIDs");

        let rooms = my_rooms(&app, &alice, None, None).await;
        let rooms = &rooms.ok()["rooms"];
        assert_eq!(ids(rooms), vec![id.to_owned()]);
        assert_eq!(edges(rooms)[0]["node"], *created);

        // The creator may send straight away.
        let message = app.send_message(&alice, id, "hi").await;
        assert_eq!(message["seq"], 1);

        // An explicitly private room stays private.
        let answer = create_room_raw(&app, &alice, json!({ "name": "secret", "isPrivate": true })).await;
        assert_eq!(answer.ok()["createRoom"]["isPrivate"], true);
        // `isPrivate: Boolean = false`: an explicit null is the default, as the contract has it.
        let answer = create_room_raw(&app, &alice, json!({ "name": "open", "isPrivate": null })).await;
        assert_eq!(answer.ok()["createRoom"]["isPrivate"], false);
    }

    async fn room_names_are_validated_in_characters(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        for name in [String::new(), "   ".into(), " \n\t ".into(), "é".repeat(101), "r".repeat(101)] {
            let answer = create_room_raw(&app, &alice, json!({ "name": name })).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("name"), "{name:?}: {}", answer.body);
        }
        // 100 characters is fine, even at two bytes each, and even padded with blanks.
        let long = "é".repeat(100);
        let answer = create_room_raw(&app, &alice, json!({ "name": long })).await;
        assert_eq!(answer.ok()["createRoom"]["name"], long.as_str());
        let answer = create_room_raw(&app, &alice, json!({ "name": format!("  {long}  ") })).await;
        assert_eq!(answer.ok()["createRoom"]["name"], long.as_str());
        // Nothing was created by the refused attempts.
        let rooms = my_rooms(&app, &alice, None, None).await;
        assert_eq!(edges(&rooms.ok()["rooms"]).len(), 2);
    }

    async fn chat_operations_require_sign_in(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let operations = [
            ("mutation { createRoom(input: { name: \"x\" }) { id } }", json!({})),
            ("mutation($r: ID!) { joinRoom(roomId: $r) { id } }", json!({ "r": room_id })),
            ("mutation($r: ID!) { leaveRoom(roomId: $r) }", json!({ "r": room_id })),
            (
                "mutation($r: ID!) { sendMessage(input: { roomId: $r, body: \"hi\" }) { id } }",
                json!({ "r": room_id }),
            ),
            ("{ rooms { edges { cursor } } }", json!({})),
            ("{ publicRooms { edges { cursor } } }", json!({})),
            ("query($r: ID!) { room(id: $r) { id } }", json!({ "r": room_id })),
            ("query($r: ID!) { messages(roomId: $r) { edges { cursor } } }", json!({ "r": room_id })),
        ];
        for (query, variables) in operations {
            let answer = app.gql(None, query, variables.clone()).await;
            answer.expect_code("UNAUTHENTICATED");
        }
        // None of those did anything.
        let history = history(&app, &alice, &room_id, json!({})).await;
        assert!(edges(&history.ok()["messages"]).is_empty());
        let rooms = my_rooms(&app, &alice, None, None).await;
        assert_eq!(edges(&rooms.ok()["rooms"]).len(), 1);
    }

    // ---------------------------------------------------------------- joinRoom

    async fn joining_a_public_room_twice_is_harmless(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let room_id = app.create_room(&alice, "general", false).await;

        // Not a member yet: not in bob's rooms, and bob cannot send.
        assert!(edges(&my_rooms(&app, &bob, None, None).await.ok()["rooms"]).is_empty());
        app.send_message_raw(&bob, &room_id, "hi", None).await.expect_code("FORBIDDEN");

        for _ in 0..2 {
            let joined = app.join_room(&bob, &room_id).await;
            assert_eq!(joined.ok()["joinRoom"]["id"], room_id.as_str());
        }
        // Even at the same time.
        let carol = app.register("carol").await;
        let joins = (0..3).map(|_| app.join_room(&carol, &room_id));
        for joined in futures_util::future::join_all(joins).await {
            assert_eq!(joined.ok()["joinRoom"]["id"], room_id.as_str());
        }
        let rooms = my_rooms(&app, &carol, None, None).await;
        assert_eq!(ids(&rooms.ok()["rooms"]), vec![room_id.clone()], "listed once");
        let rooms = my_rooms(&app, &bob, None, None).await;
        assert_eq!(ids(&rooms.ok()["rooms"]), vec![room_id.clone()], "listed once");
        let message = app.send_message(&bob, &room_id, "hello").await;
        assert_eq!(message["seq"], 1);
        assert_eq!(message["author"]["id"], bob.id.as_str());
    }

    async fn private_rooms_cannot_be_joined(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let mallory = app.register("mallory").await;
        let room_id = app.create_room(&alice, "secret", true).await;

        let answer = app.join_room(&mallory, &room_id).await;
        answer.expect_code("FORBIDDEN");
        assert_eq!(answer.data(), &Value::Null, "{}", answer.body);
        // The refusal left no membership behind.
        assert!(edges(&my_rooms(&app, &mallory, None, None).await.ok()["rooms"]).is_empty());
        app.send_message_raw(&mallory, &room_id, "let me in", None)
            .await
            .expect_code("FORBIDDEN");
        // A member "joining" their own private room again is harmless.
        let again = app.join_room(&alice, &room_id).await;
        assert_eq!(again.ok()["joinRoom"]["id"], room_id.as_str());
    }

    async fn joining_unknown_or_malformed_rooms_is_refused(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let unknown = uuid::Uuid::new_v4().to_string();
        app.join_room(&alice, &unknown).await.expect_code("NOT_FOUND");
        for malformed in ["not-a-uuid", "", "1234"] {
            let answer = app.join_room(&alice, malformed).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("roomId"), "{malformed:?}: {}", answer.body);
        }
    }

    // ---------------------------------------------------------------- leaveRoom

    async fn leaving_a_room_ends_membership(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let other = app.create_room(&alice, "other", false).await;
        app.join_room(&bob, &room_id).await.ok();
        app.join_room(&bob, &other).await.ok();
        app.send_message(&bob, &room_id, "bye").await;

        let left = leave_room(&app, &bob, &room_id).await;
        assert_eq!(left.ok()["leaveRoom"], true);
        let again = leave_room(&app, &bob, &room_id).await;
        assert_eq!(again.ok()["leaveRoom"], false);

        app.send_message_raw(&bob, &room_id, "one more", None)
            .await
            .expect_code("FORBIDDEN");
        let rooms = my_rooms(&app, &bob, None, None).await;
        assert_eq!(ids(&rooms.ok()["rooms"]), vec![other.clone()]);
        // The others stay.
        let rooms = my_rooms(&app, &alice, None, None).await;
        assert_eq!(ids(&rooms.ok()["rooms"]), vec![room_id.clone(), other]);
        assert_eq!(app.send_message(&alice, &room_id, "still here").await["seq"], 2);
        // A room never joined: false.
        let carol = app.register("carol").await;
        assert_eq!(leave_room(&app, &carol, &room_id).await.ok()["leaveRoom"], false);
        // And bob may come back.
        app.join_room(&bob, &room_id).await.ok();
        assert_eq!(app.send_message(&bob, &room_id, "back").await["seq"], 3);
        // Two leaves at once: one of them did it.
        let (a, b) = tokio::join!(leave_room(&app, &bob, &room_id), leave_room(&app, &bob, &room_id));
        let mut results = [a.ok()["leaveRoom"].clone(), b.ok()["leaveRoom"].clone()];
        results.sort_by_key(|r| r.as_bool());
        assert_eq!(results, [json!(false), json!(true)]);

        let unknown = uuid::Uuid::new_v4().to_string();
        leave_room(&app, &bob, &unknown).await.expect_code("NOT_FOUND");
        let malformed = leave_room(&app, &bob, "general").await;
        malformed.expect_code("BAD_USER_INPUT");
        assert_eq!(malformed.field(), Some("roomId"));
    }

    // ---------------------------------------------------------------- rooms, publicRooms

    async fn rooms_lists_the_viewers_rooms_oldest_first_in_pages(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let a1 = app.create_room(&alice, "a1", false).await;
        let a2 = app.create_room(&alice, "a2", false).await;
        let a3 = app.create_room(&alice, "a3", true).await;
        let a4 = app.create_room(&alice, "a4", false).await;
        let bp = app.create_room(&bob, "bp", false).await;
        let bq = app.create_room(&bob, "bq", true).await;
        app.join_room(&alice, &bp).await.ok();

        let all = my_rooms(&app, &alice, None, None).await;
        let all = &all.ok()["rooms"];
        assert_eq!(names(all), ["a1", "a2", "a3", "a4", "bp"]);
        assert_eq!(has_pages(all), (false, false));
        assert_cursors_consistent(all);

        let page1 = my_rooms(&app, &alice, Some(2), None).await;
        let page1 = &page1.ok()["rooms"];
        assert_eq!(ids(page1), [a1.clone(), a2.clone()]);
        assert_eq!(has_pages(page1), (false, true));
        assert_cursors_consistent(page1);

        let end = page1["pageInfo"]["endCursor"].as_str().unwrap();
        let page2 = my_rooms(&app, &alice, Some(2), Some(end)).await;
        let page2 = &page2.ok()["rooms"];
        assert_eq!(ids(page2), [a3.clone(), a4.clone()]);
        assert_eq!(has_pages(page2), (true, true));
        assert_cursors_consistent(page2);

        let end = page2["pageInfo"]["endCursor"].as_str().unwrap();
        let page3 = my_rooms(&app, &alice, Some(2), Some(end)).await;
        let page3 = &page3.ok()["rooms"];
        assert_eq!(ids(page3), [bp.as_str()]);
        assert_eq!(has_pages(page3), (true, false));
        assert_cursors_consistent(page3);

        // Exactly filling a page leaves no next page.
        let exact = my_rooms(&app, &alice, Some(5), None).await;
        assert_eq!(has_pages(&exact.ok()["rooms"]), (false, false));

        // Bob's rooms are his own two; a newcomer has none.
        let bobs = my_rooms(&app, &bob, None, None).await;
        assert_eq!(ids(&bobs.ok()["rooms"]), [bp, bq]);
        let carol = app.register("carol").await;
        let none = my_rooms(&app, &carol, None, None).await;
        let none = &none.ok()["rooms"];
        assert!(edges(none).is_empty());
        assert_eq!(has_pages(none), (false, false));
        assert_cursors_consistent(none);

        // Page size limits and cursor kinds.
        let too_many = my_rooms(&app, &alice, Some(101), None).await;
        too_many.expect_code("BAD_USER_INPUT");
        assert_eq!(too_many.field(), Some("first"));
        let garbage = my_rooms(&app, &alice, None, Some("garbage")).await;
        garbage.expect_code("BAD_USER_INPUT");
        assert_eq!(garbage.field(), Some("after"));
        let message = app.send_message(&alice, &a1, "hi").await;
        let wrong_kind = my_rooms(&app, &alice, None, message["cursor"].as_str()).await;
        wrong_kind.expect_code("BAD_USER_INPUT");
        assert_eq!(wrong_kind.field(), Some("after"));
    }

    async fn public_rooms_lists_public_rooms_to_anyone_signed_in(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        app.create_room(&alice, "a1", false).await;
        app.create_room(&alice, "a2-private", true).await;
        app.create_room(&bob, "b1", false).await;
        app.create_room(&bob, "b2-private", true).await;
        app.create_room(&alice, "a3", false).await;

        // Carol is a member of nothing, yet sees the directory.
        let all = public_rooms(&app, &carol, None, None).await;
        let all = &all.ok()["publicRooms"];
        assert_eq!(names(all), ["a1", "b1", "a3"]);
        assert!(edges(all).iter().all(|e| e["node"]["isPrivate"] == false), "{all}");
        assert_eq!(has_pages(all), (false, false));
        assert_cursors_consistent(all);

        let page1 = public_rooms(&app, &carol, Some(2), None).await;
        let page1 = &page1.ok()["publicRooms"];
        assert_eq!(names(page1), ["a1", "b1"]);
        assert_eq!(has_pages(page1), (false, true));
        let end = page1["pageInfo"]["endCursor"].as_str().unwrap();
        let page2 = public_rooms(&app, &carol, Some(2), Some(end)).await;
        let page2 = &page2.ok()["publicRooms"];
        assert_eq!(names(page2), ["a3"]);
        assert_eq!(has_pages(page2), (true, false));

        // Members of private rooms do not see them in the directory either.
        let for_alice = public_rooms(&app, &alice, None, None).await;
        assert_eq!(names(&for_alice.ok()["publicRooms"]), ["a1", "b1", "a3"]);
    }

    // ---------------------------------------------------------------- room(id)

    async fn public_rooms_are_readable_by_anyone_signed_in(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let carol = app.register("carol").await;
        let room_id = app.create_room(&alice, "general", false).await;
        fill(&app, &alice, &room_id, 2).await;

        let answer = room(&app, &carol, &room_id).await;
        let found = &answer.ok()["room"];
        assert_eq!(found["id"], room_id.as_str());
        assert_eq!(found["name"], "general");
        assert_eq!(found["isPrivate"], false);
        // Reading does not make carol a member.
        assert!(edges(&my_rooms(&app, &carol, None, None).await.ok()["rooms"]).is_empty());
        // ... and its history is readable too.
        let page = room_history(&app, &carol, &room_id, json!({})).await;
        assert_eq!(seqs(&page.ok()["room"]["messages"]), [1, 2]);
        let page = history(&app, &carol, &room_id, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1, 2]);
    }

    async fn private_rooms_are_readable_by_members_only(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let mallory = app.register("mallory").await;
        let room_id = app.create_room(&alice, "secret", true).await;
        app.send_message(&alice, &room_id, "the plan").await;

        let answer = room(&app, &alice, &room_id).await;
        let found = &answer.ok()["room"];
        assert_eq!(found["name"], "secret");
        assert_eq!(found["isPrivate"], true);
        let page = room_history(&app, &alice, &room_id, json!({})).await;
        assert_eq!(seqs(&page.ok()["room"]["messages"]), [1]);

        let refused = room(&app, &mallory, &room_id).await;
        refused.expect_code("FORBIDDEN");
        assert_eq!(refused.data()["room"], Value::Null, "{}", refused.body);
        let refused = history(&app, &mallory, &room_id, json!({})).await;
        refused.expect_code("FORBIDDEN");
        assert!(!refused.body.to_string().contains("the plan"), "{}", refused.body);
        let refused = room_history(&app, &mallory, &room_id, json!({})).await;
        refused.expect_code("FORBIDDEN");
        assert!(!refused.body.to_string().contains("the plan"), "{}", refused.body);
    }

    async fn unknown_rooms_are_null_and_malformed_ids_are_refused(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let unknown = uuid::Uuid::new_v4().to_string();
        let answer = room(&app, &alice, &unknown).await;
        let data = answer.ok();
        assert!(data.get("room").is_some(), "{}", answer.body);
        assert_eq!(data["room"], Value::Null);

        for malformed in ["not-a-uuid", ""] {
            let answer = room(&app, &alice, malformed).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("id"), "{malformed:?}: {}", answer.body);
        }
    }

    async fn rooms_by_activity_put_the_newest_message_first(db) {
        let app = spawn_app(&db).await;
        let uma = app.register("uma").await;
        let mut ids = Vec::new();
        for name in ["a", "b", "c"] {
            ids.push(app.create_room(&uma, name, false).await);
        }
        let list = |after: Value, order: &'static str| {
            app.gql(
                Some(&uma.access_token),
                "query($a: String, $o: RoomOrder!) { rooms(first: 2, after: $a, orderBy: $o) { edges { node { name lastActivityAt } } pageInfo { hasNextPage endCursor } } }",
                json!({ "a": after, "o": order }),
            )
        };
        let names = |answer: &Gql| -> Vec<String> {
            answer.ok()["rooms"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect()
        };
        // No messages yet: by creation, newest first.
        assert_eq!(names(&list(Value::Null, "ACTIVITY").await), ["c", "b"]);
        let sent = app.send_message(&uma, &ids[0], "a moves up").await;
        app.send_message(&uma, &ids[1], "b moves up").await;
        let first = list(Value::Null, "ACTIVITY").await;
        assert_eq!(names(&first), ["b", "a"]);
        let page = &first.ok()["rooms"];
        assert_eq!(page["pageInfo"]["hasNextPage"], true);
        assert_eq!(page["edges"][1]["node"]["lastActivityAt"], sent["createdAt"]);
        let next = list(page["pageInfo"]["endCursor"].clone(), "ACTIVITY").await;
        assert_eq!(names(&next), ["c"]);
        assert_eq!(next.ok()["rooms"]["pageInfo"]["hasNextPage"], false);
        // The default order is unchanged, and a cursor of one order is refused by the other.
        let created = list(Value::Null, "CREATED").await;
        assert_eq!(names(&created), ["a", "b"]);
        for (cursor, order) in [(page["pageInfo"]["endCursor"].clone(), "CREATED"), (created.ok()["rooms"]["pageInfo"]["endCursor"].clone(), "ACTIVITY")] {
            let refused = list(cursor, order).await;
            refused.expect_code("BAD_USER_INPUT");
            assert_eq!(refused.field(), Some("after"));
        }
    }
}
