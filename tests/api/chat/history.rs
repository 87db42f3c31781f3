//! History pages: Relay cursors both ways, sizes, arguments and who may read.
use serde_json::{Value, json};

use super::*;
use crate::db_tests;

db_tests! {
    async fn history_pages_forward(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let sent = fill(&app, &alice, &room_id, 12).await;

        for via in [Via::Root, Via::Room] {
            let page = |args| read(&app, &alice, &room_id, via, args);
            let page1 = page(json!({ "first": 5 })).await;
            assert_eq!(seqs(&page1), [1, 2, 3, 4, 5], "{via:?}");
            assert_eq!(has_pages(&page1), (false, true), "{via:?}");
            assert_cursors_consistent(&page1);
            for (edge, message) in edges(&page1).iter().zip(&sent) {
                assert_eq!(&edge["node"], message, "{via:?}: history reads as the send returned");
            }

            let page2 = page(json!({ "first": 5, "after": cursor_of(&page1, 5) })).await;
            assert_eq!(seqs(&page2), [6, 7, 8, 9, 10], "{via:?}");
            assert_eq!(has_pages(&page2), (true, true), "{via:?}");
            assert_cursors_consistent(&page2);
            assert_eq!(page2["pageInfo"]["startCursor"], sent[5]["cursor"]);

            let page3 = page(json!({ "first": 5, "after": page2["pageInfo"]["endCursor"] })).await;
            assert_eq!(seqs(&page3), [11, 12], "{via:?}");
            assert_eq!(has_pages(&page3), (true, false), "{via:?}");
            assert_cursors_consistent(&page3);

            // Past the end: empty, and nothing after it.
            let past = page(json!({ "first": 5, "after": cursor_of(&page3, 12) })).await;
            assert!(edges(&past).is_empty(), "{via:?}: {past}");
            assert_eq!(past["pageInfo"]["hasNextPage"], false, "{via:?}");
            assert_cursors_consistent(&past);

            // A page that ends exactly at the last message has no next page.
            let exact = page(json!({ "first": 2, "after": cursor_of(&page2, 10) })).await;
            assert_eq!(seqs(&exact), [11, 12], "{via:?}");
            assert_eq!(has_pages(&exact), (true, false), "{via:?}");
        }
    }

    async fn history_pages_backward(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        fill(&app, &alice, &room_id, 12).await;

        for via in [Via::Root, Via::Room] {
            let page = |args| read(&app, &alice, &room_id, via, args);
            let newest = page(json!({ "last": 5 })).await;
            assert_eq!(seqs(&newest), [8, 9, 10, 11, 12], "{via:?}: oldest first within the page");
            assert_eq!(has_pages(&newest), (true, false), "{via:?}");
            assert_cursors_consistent(&newest);

            let before = page(json!({ "last": 5, "before": newest["pageInfo"]["startCursor"] })).await;
            assert_eq!(seqs(&before), [3, 4, 5, 6, 7], "{via:?}");
            assert_eq!(has_pages(&before), (true, true), "{via:?}");
            assert_cursors_consistent(&before);

            let oldest = page(json!({ "last": 5, "before": cursor_of(&before, 3) })).await;
            assert_eq!(seqs(&oldest), [1, 2], "{via:?}");
            assert_eq!(has_pages(&oldest), (false, true), "{via:?}");
            assert_cursors_consistent(&oldest);

            // A page that starts exactly at the first message has no previous page.
            let exact = page(json!({ "last": 2, "before": cursor_of(&before, 3) })).await;
            assert_eq!(seqs(&exact), [1, 2], "{via:?}");
            assert_eq!(has_pages(&exact), (false, true), "{via:?}");

            // `before` alone reads back with the default page size.
            let all_before = page(json!({ "before": cursor_of(&newest, 8) })).await;
            assert_eq!(seqs(&all_before), (1..=7).collect::<Vec<_>>(), "{via:?}");
            assert_eq!(has_pages(&all_before), (false, true), "{via:?}");
        }
    }

    async fn history_page_sizes_default_to_50_and_stop_at_100(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        fill(&app, &alice, &room_id, 101).await;

        let default = history(&app, &alice, &room_id, json!({})).await;
        let default = &default.ok()["messages"];
        assert_eq!(seqs(default), (1..=50).collect::<Vec<_>>());
        assert_eq!(has_pages(default), (false, true));

        let max = history(&app, &alice, &room_id, json!({ "first": 100 })).await;
        let max = &max.ok()["messages"];
        assert_eq!(seqs(max), (1..=100).collect::<Vec<_>>());
        assert_eq!(has_pages(max), (false, true));

        let max_back = history(&app, &alice, &room_id, json!({ "last": 100 })).await;
        let max_back = &max_back.ok()["messages"];
        assert_eq!(seqs(max_back), (2..=101).collect::<Vec<_>>());
        assert_eq!(has_pages(max_back), (true, false));

        // Explicit nulls are the defaults.
        let nulls = json!({ "first": null, "after": null, "last": null, "before": null });
        let via_room = room_history(&app, &alice, &room_id, nulls).await;
        assert_eq!(seqs(&via_room.ok()["room"]["messages"]), (1..=50).collect::<Vec<_>>());

        for (args, field) in [
            (json!({ "first": 101 }), "first"),
            (json!({ "last": 101 }), "last"),
            (json!({ "first": -1 }), "first"),
            (json!({ "last": -1 }), "last"),
        ] {
            let answer = history(&app, &alice, &room_id, args.clone()).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "{args}: {}", answer.body);
            let answer = room_history(&app, &alice, &room_id, args.clone()).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "Room.messages {args}: {}", answer.body);
        }
    }

    async fn history_arguments_are_validated(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "general", false).await;
        let sent = fill(&app, &alice, &room_id, 3).await;
        let message_cursor = sent[1]["cursor"].as_str().unwrap().to_owned();
        let rooms = my_rooms(&app, &alice, None, None).await;
        let room_cursor = edges(&rooms.ok()["rooms"])[0]["cursor"].as_str().unwrap().to_owned();

        let both = history(&app, &alice, &room_id, json!({ "first": 2, "last": 2 })).await;
        both.expect_code("BAD_USER_INPUT");
        let both = room_history(&app, &alice, &room_id, json!({ "first": 2, "last": 2 })).await;
        both.expect_code("BAD_USER_INPUT");

        // Each direction takes its own cursor.
        for args in [
            json!({ "last": 2, "after": message_cursor }),
            json!({ "first": 2, "before": message_cursor }),
        ] {
            history(&app, &alice, &room_id, args.clone()).await.expect_code("BAD_USER_INPUT");
        }

        for (args, field) in [
            (json!({ "first": 2, "after": "garbage" }), "after"),
            (json!({ "after": "bm90IGEgY3Vyc29y" }), "after"), // base64 of "not a cursor"
            (json!({ "after": "" }), "after"),
            (json!({ "last": 2, "before": "garbage" }), "before"),
            // A room cursor is not a message cursor.
            (json!({ "first": 2, "after": room_cursor }), "after"),
            (json!({ "last": 2, "before": room_cursor }), "before"),
        ] {
            let answer = history(&app, &alice, &room_id, args.clone()).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "{args}: {}", answer.body);
            let answer = room_history(&app, &alice, &room_id, args.clone()).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "Room.messages {args}: {}", answer.body);
        }
        // The message cursor itself is fine.
        let page = history(&app, &alice, &room_id, json!({ "after": message_cursor })).await;
        assert_eq!(seqs(&page.ok()["messages"]), [3]);

        let malformed = history(&app, &alice, "general", json!({})).await;
        malformed.expect_code("BAD_USER_INPUT");
        assert_eq!(malformed.field(), Some("roomId"));
        let unknown = uuid::Uuid::new_v4().to_string();
        history(&app, &alice, &unknown, json!({})).await.expect_code("NOT_FOUND");
    }

    async fn empty_history_has_no_edges_and_no_cursors(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let room_id = app.create_room(&alice, "quiet", false).await;
        for args in [json!({}), json!({ "first": 5 }), json!({ "last": 5 })] {
            let page = history(&app, &alice, &room_id, args.clone()).await;
            let via_room = room_history(&app, &alice, &room_id, args.clone()).await;
            for page in [&page.ok()["messages"], &via_room.ok()["room"]["messages"]] {
                assert!(edges(page).is_empty(), "{args}: {page}");
                assert_eq!(has_pages(page), (false, false), "{args}: {page}");
                assert_eq!(page["pageInfo"]["startCursor"], Value::Null, "{args}: {page}");
                assert_eq!(page["pageInfo"]["endCursor"], Value::Null, "{args}: {page}");
            }
        }
    }

    async fn private_history_is_for_members_and_public_history_for_everyone(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let public = app.create_room(&alice, "general", false).await;
        let private = app.create_room(&alice, "secret", true).await;
        fill(&app, &alice, &public, 3).await;
        fill(&app, &alice, &private, 3).await;

        // Carol has joined nothing: she reads the public room but not the private one.
        let page = history(&app, &carol, &public, json!({ "last": 2 })).await;
        let page = &page.ok()["messages"];
        assert_eq!(seqs(page), [2, 3]);
        assert_eq!(has_pages(page), (true, false));
        for args in [json!({}), json!({ "first": 1 }), json!({ "last": 1 })] {
            history(&app, &carol, &private, args.clone()).await.expect_code("FORBIDDEN");
            room_history(&app, &carol, &private, args).await.expect_code("FORBIDDEN");
        }
        // Having left, a former member is a stranger again.
        app.join_room(&bob, &public).await.ok();
        leave_room(&app, &bob, &public).await.ok();
        let page = history(&app, &bob, &public, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1, 2, 3]);
        let page = history(&app, &alice, &private, json!({})).await;
        assert_eq!(seqs(&page.ok()["messages"]), [1, 2, 3]);
    }

    async fn authors_emails_are_shown_only_on_the_viewers_own_messages(db) {
        let app = spawn_app(&db).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let room_id = app.create_room(&alice, "general", false).await;
        app.join_room(&bob, &room_id).await.ok();
        app.send_message(&alice, &room_id, "from alice").await;
        app.send_message(&bob, &room_id, "from bob").await;

        let emails = |page: &Value| -> Vec<Value> {
            edges(page).iter().map(|e| e["node"]["author"]["email"].clone()).collect()
        };
        let for_alice = history(&app, &alice, &room_id, json!({})).await;
        assert_eq!(emails(&for_alice.ok()["messages"]), [json!(alice.email), Value::Null]);
        let for_bob = history(&app, &bob, &room_id, json!({})).await;
        assert_eq!(emails(&for_bob.ok()["messages"]), [Value::Null, json!(bob.email)]);
        let for_bob = room_history(&app, &bob, &room_id, json!({})).await;
        assert_eq!(emails(&for_bob.ok()["room"]["messages"]), [Value::Null, json!(bob.email)]);
        // A reader who wrote nothing sees no email at all; usernames stay visible.
        let for_carol = history(&app, &carol, &room_id, json!({})).await;
        let for_carol = &for_carol.ok()["messages"];
        assert_eq!(emails(for_carol), [Value::Null, Value::Null]);
        assert!(!for_carol.to_string().contains("@example.com"), "{for_carol}");
        let usernames: Vec<&Value> = edges(for_carol).iter().map(|e| &e["node"]["author"]["username"]).collect();
        assert_eq!(usernames, [&json!("alice"), &json!("bob")]);
    }
}
