//! Members and roles: rooms built by invitation, bans, handing a room over, leaving it, and
//! what a member who is put out sees; finding people and rooms.
use serde_json::json;

use super::*;
use crate::db_tests;

const MEMBERS: &str = "query($r: ID!) { room(id: $r) { viewerRole memberCount members { edges { node { role user { username email } } } } } }";
const BAN: &str =
    "mutation($r: ID!, $u: ID!, $why: String) { banMember(roomId: $r, userId: $u, reason: $why) }";
const UNBAN: &str = "mutation($r: ID!, $u: ID!) { unbanMember(roomId: $r, userId: $u) }";
const REMOVE: &str = "mutation($r: ID!, $u: ID!) { removeMember(roomId: $r, userId: $u) }";
const SET_ROLE: &str = "mutation($r: ID!, $u: ID!, $role: RoomRole!) { setMemberRole(roomId: $r, userId: $u, role: $role) { role } }";
const LEAVE: &str = "mutation($r: ID!) { leaveRoom(roomId: $r) }";

async fn role_of(app: &TestApp, viewer: &Account, room: &str) -> serde_json::Value {
    let answer = app
        .gql(Some(&viewer.access_token), MEMBERS, json!({ "r": room }))
        .await;
    answer.body["data"]["room"]["viewerRole"].clone()
}

async fn act(app: &TestApp, by: &Account, query: &str, room: &str, whom: &Account) -> Gql {
    app.gql(
        Some(&by.access_token),
        query,
        json!({ "r": room, "u": whom.id }),
    )
    .await
}

db_tests! {
    async fn a_private_room_is_built_by_invitation(db) {
        let app = spawn_app(&db).await;
        let (ola, pim, quy) = (app.register("ola").await, app.register("pim").await, app.register("quy").await);
        let room = app.create_room(&ola, "inner circle", true).await;
        // Outside: neither read nor join.
        app.join_room(&pim, &room).await.expect_code("FORBIDDEN");
        app.send_message_raw(&pim, &room, "hi", None).await.expect_code("FORBIDDEN");
        // Invited: in, as a MEMBER, reading, sending and subscribing.
        let added = app.add_members(&ola, &room, &[&pim]).await;
        assert_eq!(added.ok()["addMembers"]["id"], room.as_str());
        let start = app.send_message(&pim, &room, "hello").await;
        let mut ws = app.watching(&pim, &room, &start).await;
        app.send_message(&ola, &room, "welcome").await;
        assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], "welcome");
        let view = app.gql(Some(&pim.access_token), MEMBERS, json!({ "r": room })).await;
        let view = &view.ok()["room"];
        assert_eq!((&view["viewerRole"], &view["memberCount"]), (&json!("MEMBER"), &json!(2)));
        let roles: Vec<_> = view["members"]["edges"].as_array().unwrap().iter()
            .map(|e| (e["node"]["user"]["username"].as_str().unwrap(), e["node"]["role"].as_str().unwrap()))
            .collect();
        assert_eq!(roles, [("ola", "OWNER"), ("pim", "MEMBER")], "in sign-up order");
        // Another member's email is not shown.
        assert!(view["members"]["edges"][0]["node"]["user"]["email"].is_null());
        // Adding again keeps the role; the uninvited stay out.
        app.add_members(&ola, &room, &[&pim, &ola]).await.ok();
        assert_eq!(role_of(&app, &ola, &room).await, "OWNER");
        let outside = app.gql(Some(&quy.access_token), MEMBERS, json!({ "r": room })).await;
        outside.expect_code("FORBIDDEN");
    }

    async fn a_banned_user_cannot_come_back_until_unbanned(db) {
        let app = spawn_app(&db).await;
        let (rae, sol) = (app.register("rae").await, app.register("sol").await);
        let room = app.create_room(&rae, "lobby", false).await;
        app.join_room(&sol, &room).await.ok();
        let banned = app.gql(Some(&rae.access_token), BAN, json!({ "r": room, "u": sol.id, "why": "  spam  " })).await;
        assert_eq!(banned.ok()["banMember"], true);
        // Out, and kept out: joining, being added, even reading the public room.
        assert!(role_of(&app, &sol, &room).await.is_null());
        app.join_room(&sol, &room).await.expect_code("FORBIDDEN");
        app.add_members(&rae, &room, &[&sol]).await.expect_code("FORBIDDEN");
        let read = app.gql(Some(&sol.access_token), "query($r: ID!) { messages(roomId: $r) { edges { cursor } } }", json!({ "r": room })).await;
        read.expect_code("FORBIDDEN");
        let bans = app
            .gql(Some(&rae.access_token), "query($r: ID!) { room(id: $r) { bans { edges { node { reason user { username } bannedBy { username } bannedAt } } } } }", json!({ "r": room }))
            .await;
        let ban = &bans.ok()["room"]["bans"]["edges"][0]["node"];
        assert_eq!((&ban["reason"], &ban["user"]["username"], &ban["bannedBy"]["username"]), (&json!("spam"), &json!("sol"), &json!("rae")));
        // Banning again updates the reason; lifting it lets them in.
        let again = app.gql(Some(&rae.access_token), BAN, json!({ "r": room, "u": sol.id, "why": "still spam" })).await;
        assert_eq!(again.ok()["banMember"], false);
        assert_eq!(act(&app, &rae, UNBAN, &room, &sol).await.ok()["unbanMember"], true);
        assert_eq!(act(&app, &rae, UNBAN, &room, &sol).await.ok()["unbanMember"], false);
        app.join_room(&sol, &room).await.ok();
        assert_eq!(role_of(&app, &sol, &room).await, "MEMBER");
        // A reason past 500 characters, 10 and 1,000 times over, is refused.
        for len in [501, 5_000, 500_000] {
            let long = app.gql(Some(&rae.access_token), BAN, json!({ "r": room, "u": sol.id, "why": "r".repeat(len) })).await;
            long.expect_code("BAD_USER_INPUT");
            assert_eq!(long.field(), Some("reason"));
        }
        // Nobody removes or bans themself: that is leaving.
        act(&app, &rae, REMOVE, &room, &rae).await.expect_code("BAD_USER_INPUT");
        act(&app, &rae, BAN, &room, &rae).await.expect_code("BAD_USER_INPUT");
    }

    async fn ownership_is_handed_over_and_follows_whoever_stays_longest(db) {
        let app = spawn_app(&db).await;
        let (tam, uri, val) = (app.register("tam").await, app.register("uri").await, app.register("val").await);
        let room = app.create_room(&tam, "heirloom", false).await;
        // uri joins first as a MEMBER, val later, and becomes an ADMIN.
        app.join_room(&uri, &room).await.ok();
        app.join_room(&val, &room).await.ok();
        act_role(&app, &tam, &room, &val, "ADMIN").await;

        // Handing over: the owner becomes an ADMIN, and can no longer delete the room.
        act_role(&app, &tam, &room, &uri, "OWNER").await;
        assert_eq!(role_of(&app, &tam, &room).await, "ADMIN");
        assert_eq!(role_of(&app, &uri, &room).await, "OWNER");
        let delete = "mutation($r: ID!) { deleteRoom(roomId: $r) }";
        app.gql(Some(&tam.access_token), delete, json!({ "r": room })).await.expect_code("FORBIDDEN");
        let own = app.gql(Some(&uri.access_token), SET_ROLE, json!({ "r": room, "u": uri.id, "role": "MEMBER" })).await;
        own.expect_code("BAD_USER_INPUT");

        // The owner leaves: of the ADMINs, tam has stood longest.
        assert_eq!(app.gql(Some(&uri.access_token), LEAVE, json!({ "r": room })).await.ok()["leaveRoom"], true);
        assert_eq!(role_of(&app, &tam, &room).await, "OWNER");
        // With no ADMIN left, the longest-standing MEMBER.
        act_role(&app, &tam, &room, &val, "MEMBER").await;
        app.join_room(&uri, &room).await.ok();
        app.gql(Some(&tam.access_token), LEAVE, json!({ "r": room })).await.ok();
        assert_eq!(role_of(&app, &val, &room).await, "OWNER", "val joined before uri came back");
        // An owner who deletes their account hands over too.
        let deleted = app.gql(Some(&val.access_token), "mutation($p: String!) { deleteAccount(password: $p) }", json!({ "p": PASSWORD })).await;
        assert_eq!(deleted.ok()["deleteAccount"], true);
        assert_eq!(role_of(&app, &uri, &room).await, "OWNER");
        // The last member leaves: nobody sees the room any more.
        app.gql(Some(&uri.access_token), LEAVE, json!({ "r": room })).await.ok();
        let seen = app.gql(Some(&tam.access_token), "query($r: ID!) { room(id: $r) { id } }", json!({ "r": room })).await;
        assert!(seen.ok()["room"].is_null());
        app.join_room(&tam, &room).await.expect_code("NOT_FOUND");
        let directory = app.gql(Some(&tam.access_token), "{ publicRooms { edges { node { id } } } }", json!({})).await;
        assert!(!directory.body.to_string().contains(&room));
    }

    async fn a_member_who_is_put_out_is_told_so_and_reads_no_more(db) {
        let app = spawn_app(&db).await;
        let (wes, xan) = (app.register("wes").await, app.register("xan").await);
        for (how, query) in [("removed", REMOVE), ("banned", BAN), ("deleted", "mutation($r: ID!) { deleteRoom(roomId: $r) }")] {
            let room = app.create_room(&wes, how, true).await;
            app.add_members(&wes, &room, &[&xan]).await.ok();
            let start = app.send_message(&wes, &room, "start").await;
            let mut ws = app.watching(&xan, &room, &start).await;
            // Heard live: the subscription has started (as a member) before xan is put out.
            app.send_message(&wes, &room, "still here?").await;
            assert_eq!(ws.next("s").await["data"]["messageAdded"]["body"], "still here?");
            let answer = act(&app, &wes, query, &room, &xan).await;
            answer.ok();
            let ended = ws.next("s").await;
            assert_eq!(ended["errors"][0]["extensions"]["code"], "FORBIDDEN", "{how}: {ended}");
            let expected = match how {
                "removed" => "you were removed from this room",
                "banned" => "you were banned from this room",
                _ => "this room was deleted",
            };
            assert_eq!(ended["errors"][0]["message"], expected);
            assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "s" }));
            let read = app.gql(Some(&xan.access_token), "query($r: ID!) { messages(roomId: $r) { edges { cursor } } }", json!({ "r": room })).await;
            read.expect_code(if how == "deleted" { "NOT_FOUND" } else { "FORBIDDEN" });
        }
    }

    async fn rooms_are_renamed_and_their_topic_set(db) {
        let app = spawn_app(&db).await;
        let yan = app.register("yan").await;
        let room = app.create_room(&yan, "before", false).await;
        let update = "mutation($r: ID!, $i: UpdateRoomInput!) { updateRoom(roomId: $r, input: $i) { name topic } }";
        let set = |input| app.gql(Some(&yan.access_token), update, json!({ "r": room, "i": input }));
        assert_eq!(set(json!({ "name": " after ", "topic": " what we do " })).await.ok()["updateRoom"], json!({ "name": "after", "topic": "what we do" }));
        assert_eq!(set(json!({ "name": "again" })).await.ok()["updateRoom"], json!({ "name": "again", "topic": "what we do" }));
        assert_eq!(set(json!({ "topic": "" })).await.ok()["updateRoom"], json!({ "name": "again", "topic": null }));
        for (input, field) in [(json!({ "name": "  " }), "name"), (json!({ "topic": "t".repeat(501) }), "topic"), (json!({ "topic": "t".repeat(5_010) }), "topic")] {
            let refused = set(input).await;
            refused.expect_code("BAD_USER_INPUT");
            assert_eq!(refused.field(), Some(field));
        }
    }

    async fn add_members_is_bounded_and_knows_everyone_it_adds(db) {
        let app = spawn_app(&db).await;
        let zed = app.register("zed").await;
        let room = app.create_room(&zed, "crowd", false).await;
        let add = "mutation($r: ID!, $u: [ID!]!) { addMembers(roomId: $r, userIds: $u) { memberCount } }";
        let ids = |n: usize| -> Vec<String> { (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect() };
        // At the limit the ids are read (and these are nobody); 10 times past it they are not.
        let at = app.gql(Some(&zed.access_token), add, json!({ "r": room, "u": ids(100) })).await;
        at.expect_code("BAD_USER_INPUT");
        assert!(at.message().unwrap().starts_with("no user with id"), "{:?}", at.body);
        let past = app.gql(Some(&zed.access_token), add, json!({ "r": room, "u": ids(1_000) })).await;
        assert_eq!((past.code(), past.message()), (Some("BAD_USER_INPUT"), Some("at most 100 users at a time")));
        // 1,000 times past it (3.9 MB), the body limit refuses the request before it is read:
        // 413, or a reset if the server closes while the client is still sending. On a client
        // of its own: the connection the server closes must not go back to the suite's pool,
        // where the next request would be written into it (a broken pipe).
        let far_past = reqwest::Client::new()
            .post(app.graphql_url())
            .bearer_auth(&zed.access_token)
            .json(&json!({ "query": add, "variables": { "r": room, "u": ids(100_000) } }))
            .send()
            .await;
        assert!(far_past.as_ref().map_or(true, |r| r.status() == 413), "{far_past:?}");
        let bad = app.gql(Some(&zed.access_token), add, json!({ "r": room, "u": ["not-an-id"] })).await;
        assert_eq!(bad.field(), Some("userIds"));
        let nothing = app.gql(Some(&zed.access_token), add, json!({ "r": room, "u": [] })).await;
        assert_eq!(nothing.ok()["addMembers"]["memberCount"], 1);
    }

    async fn people_are_found_by_name(db) {
        let app = spawn_app_with(&db, |c| c.limits.search_per_user = 3).await;
        let ann = app.register("Annika").await;
        for name in ["anna", "ANNE_x", "annex", "bob", "an_x"] {
            app.register(name).await;
        }
        let search = |prefix: &str, first: i64| {
            app.gql(Some(&ann.access_token), "query($p: String!, $f: Int!) { searchUsers(prefix: $p, first: $f) { username email } }", json!({ "p": prefix, "f": first }))
        };
        let found = search("ANN", 10).await;
        let names: Vec<_> = found.ok()["searchUsers"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["anna", "ANNE_x", "annex", "Annika"], "in any case, in name order");
        assert!(found.ok()["searchUsers"][0]["email"].is_null(), "no one else's email");
        // `_` is a letter here, not a pattern.
        let names = search("an_", 10).await;
        assert_eq!(names.ok()["searchUsers"], json!([{ "username": "an_x", "email": null }]));
        assert_eq!(search("ann", 2).await.ok()["searchUsers"].as_array().unwrap().len(), 2);
        for (prefix, first, field) in [("ann", 21, "first"), ("ann", 0, "first"), ("a%", 5, "prefix"), ("", 5, "prefix")] {
            let refused = search(prefix, first).await;
            assert_eq!((refused.code(), refused.field()), (Some("BAD_USER_INPUT"), Some(field)), "{prefix:?} {first}");
        }
        // 10 and 1,000 times the longest name: refused unread.
        for len in [320, 32_000] {
            assert_eq!(search(&"a".repeat(len), 5).await.field(), Some("prefix"));
        }
        // Each search that runs counts (three so far); past the limit, RATE_LIMITED.
        let limited = search("ann", 5).await;
        limited.expect_code("RATE_LIMITED");

        let by_name = "query($n: String!) { user(username: $n) { username } }";
        let one = app.gql(Some(&ann.access_token), by_name, json!({ "n": "BOB" })).await;
        assert_eq!(one.ok()["user"]["username"], "bob");
        for unknown in ["nobody".to_owned(), "x".repeat(10_000)] {
            let none = app.gql(Some(&ann.access_token), by_name, json!({ "n": unknown })).await;
            assert!(none.ok()["user"].is_null());
        }
    }

    async fn public_rooms_are_found_by_name(db) {
        let app = spawn_app(&db).await;
        let abe = app.register("abe").await;
        for name in ["Rust users", "rustaceans", "100% pure", "Go"] {
            app.create_room(&abe, name, false).await;
        }
        app.create_room(&abe, "rust secret", true).await;
        let search = |term: &str| app.gql(Some(&abe.access_token), "query($s: String!) { publicRooms(search: $s) { edges { node { name } } } }", json!({ "s": term }));
        let names = |answer: &Gql| -> Vec<String> {
            answer.ok()["publicRooms"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(names(&search("RUST").await), ["Rust users", "rustaceans"]);
        assert_eq!(names(&search("0%").await), ["100% pure"], "% is a character");
        for term in [String::new(), "r".repeat(101), "r".repeat(100_000)] {
            let refused = search(&term).await;
            refused.expect_code("BAD_USER_INPUT");
        }
    }
}

async fn act_role(app: &TestApp, by: &Account, room: &str, whom: &Account, role: &str) {
    let answer = app
        .gql(
            Some(&by.access_token),
            SET_ROLE,
            json!({ "r": room, "u": whom.id, "role": role }),
        )
        .await;
    assert_eq!(answer.ok()["setMemberRole"]["role"], role);
}
