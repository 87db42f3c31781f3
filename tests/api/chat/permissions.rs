//! Who may do what in a room: every line of README.md's table, tried by each role, both ways.
//! Each attempt gets a room of its own, so that what one changes cannot decide another.
use serde_json::{Value, json};

use super::*;
use crate::db_tests;

/// The people of every room here.
struct People {
    owner: Account,
    admin: Account,
    /// A second ADMIN, and a MEMBER: the targets of actions on others.
    other_admin: Account,
    target: Account,
    member: Account,
    outsider: Account,
}

impl People {
    async fn register(app: &TestApp) -> Self {
        Self {
            owner: app.register("owner").await,
            admin: app.register("admin").await,
            other_admin: app.register("admin2").await,
            target: app.register("target").await,
            member: app.register("member").await,
            outsider: app.register("outsider").await,
        }
    }

    /// A fresh room: the owner, two ADMINs, a MEMBER target and a MEMBER.
    async fn room(&self, app: &TestApp, private: bool) -> String {
        let room = app.create_room(&self.owner, "perms", private).await;
        let members = [&self.admin, &self.other_admin, &self.target, &self.member];
        app.add_members(&self.owner, &room, &members).await.ok();
        for admin in [&self.admin, &self.other_admin] {
            set_role(app, &self.owner, &room, admin, "ADMIN").await.ok();
        }
        room
    }
}

async fn set_role(app: &TestApp, by: &Account, room: &str, whom: &Account, role: &str) -> Gql {
    app.gql(
        Some(&by.access_token),
        "mutation($r: ID!, $u: ID!, $role: RoomRole!) { setMemberRole(roomId: $r, userId: $u, role: $role) { role } }",
        json!({ "r": room, "u": whom.id, "role": role }),
    )
    .await
}

const OK: Option<&str> = None;
const NO: Option<&str> = Some("FORBIDDEN");

/// One line of the table: what is tried, and what each of owner, admin, member and outsider
/// gets: an answer (`OK`), or an error with this code.
struct Line {
    what: &'static str,
    private: bool,
    query: &'static str,
    /// The variables, given the room and the people.
    variables: fn(&str, &People) -> Value,
    expected: [Option<&'static str>; 4],
}

fn lines() -> Vec<Line> {
    let target = |r: &str, p: &People| json!({ "r": r, "u": p.target.id });
    let room = |r: &str, _: &People| json!({ "r": r });
    vec![
        Line {
            what: "read a private room's history",
            private: true,
            query: "query($r: ID!) { messages(roomId: $r) { edges { cursor } } }",
            variables: room,
            expected: [OK, OK, OK, NO],
        },
        Line {
            what: "read a public room's history",
            private: false,
            query: "query($r: ID!) { messages(roomId: $r) { edges { cursor } } }",
            variables: room,
            expected: [OK, OK, OK, OK],
        },
        Line {
            what: "send",
            private: false,
            query: "mutation($r: ID!) { sendMessage(input: { roomId: $r, body: \"hi\" }) { seq } }",
            variables: room,
            expected: [OK, OK, OK, NO],
        },
        Line {
            what: "list the members",
            private: false,
            query: "query($r: ID!) { room(id: $r) { members { edges { node { role } } } } }",
            variables: room,
            expected: [OK, OK, OK, NO],
        },
        Line {
            what: "add a member",
            private: true,
            query: "mutation($r: ID!, $u: ID!) { addMembers(roomId: $r, userIds: [$u]) { id } }",
            variables: |r, p| json!({ "r": r, "u": p.outsider.id }),
            expected: [OK, OK, NO, NO],
        },
        Line {
            what: "remove a MEMBER",
            private: false,
            query: "mutation($r: ID!, $u: ID!) { removeMember(roomId: $r, userId: $u) }",
            variables: target,
            expected: [OK, OK, NO, NO],
        },
        Line {
            what: "remove an ADMIN",
            private: false,
            query: "mutation($r: ID!, $u: ID!) { removeMember(roomId: $r, userId: $u) }",
            variables: |r, p| json!({ "r": r, "u": p.other_admin.id }),
            expected: [OK, NO, NO, NO],
        },
        Line {
            what: "remove the OWNER",
            private: false,
            query: "mutation($r: ID!, $u: ID!) { removeMember(roomId: $r, userId: $u) }",
            variables: |r, p| json!({ "r": r, "u": p.owner.id }),
            // The owner removing themself: leaving is `leaveRoom`.
            expected: [Some("BAD_USER_INPUT"), NO, NO, NO],
        },
        Line {
            what: "ban a MEMBER",
            private: false,
            query: "mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u, reason: \"spam\") }",
            variables: target,
            expected: [OK, OK, NO, NO],
        },
        Line {
            what: "ban an ADMIN",
            private: false,
            query: "mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u) }",
            variables: |r, p| json!({ "r": r, "u": p.other_admin.id }),
            expected: [OK, NO, NO, NO],
        },
        Line {
            what: "lift a ban",
            private: false,
            query: "mutation($r: ID!, $u: ID!) { unbanMember(roomId: $r, userId: $u) }",
            variables: target,
            expected: [OK, OK, NO, NO],
        },
        Line {
            what: "see the bans",
            private: false,
            query: "query($r: ID!) { room(id: $r) { bans { edges { node { reason } } } } }",
            variables: room,
            expected: [OK, OK, NO, NO],
        },
        Line {
            what: "make a MEMBER an ADMIN",
            private: false,
            query: "mutation($r: ID!, $u: ID!) { setMemberRole(roomId: $r, userId: $u, role: ADMIN) { role } }",
            variables: target,
            expected: [OK, NO, NO, NO],
        },
        Line {
            what: "rename the room and set its topic",
            private: false,
            query: "mutation($r: ID!) { updateRoom(roomId: $r, input: { name: \"renamed\", topic: \"t\" }) { name } }",
            variables: room,
            expected: [OK, OK, NO, NO],
        },
        Line {
            what: "delete the room",
            private: false,
            query: "mutation($r: ID!) { deleteRoom(roomId: $r) }",
            variables: room,
            expected: [OK, NO, NO, NO],
        },
        Line {
            what: "join a public room",
            private: false,
            query: "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
            variables: room,
            expected: [OK, OK, OK, OK],
        },
        Line {
            what: "join a private room",
            private: true,
            query: "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
            variables: room,
            // Members are in already, which joining again does not change.
            expected: [OK, OK, OK, NO],
        },
    ]
}

db_tests! {
    async fn every_permission_both_ways(db) {
        let app = spawn_app(&db).await;
        let people = People::register(&app).await;
        for line in lines() {
            let actors = [&people.owner, &people.admin, &people.member, &people.outsider];
            for (actor, expected) in actors.into_iter().zip(line.expected) {
                let room = people.room(&app, line.private).await;
                if line.what == "lift a ban" || line.what == "see the bans" {
                    let ban = "mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u) }";
                    app.gql(Some(&people.owner.access_token), ban, json!({ "r": room, "u": people.target.id }))
                        .await
                        .ok();
                }
                let answer = app.gql(Some(&actor.access_token), line.query, (line.variables)(&room, &people)).await;
                let who = &actor.username;
                match expected {
                    None => assert!(answer.body.get("errors").is_none(), "{who} may {}: {:?}", line.what, answer.body),
                    Some(code) => assert_eq!(answer.code(), Some(code), "{who}: {}: {:?}", line.what, answer.body),
                }
            }
        }
    }

    async fn nothing_about_a_direct_room_can_be_changed(db) {
        let app = spawn_app(&db).await;
        let people = People::register(&app).await;
        let (one, two) = (&people.owner, &people.member);
        let open = "mutation($u: ID!) { openDirectRoom(userId: $u) { id } }";
        let room = app.gql(Some(&one.access_token), open, json!({ "u": two.id })).await;
        let room = room.ok()["openDirectRoom"]["id"].as_str().unwrap().to_owned();
        let refused = [
            "mutation($r: ID!, $x: ID!) { addMembers(roomId: $r, userIds: [$x]) { id } }",
            "mutation($r: ID!, $u: ID!) { removeMember(roomId: $r, userId: $u) }",
            "mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u) }",
            "mutation($r: ID!, $u: ID!) { setMemberRole(roomId: $r, userId: $u, role: ADMIN) { role } }",
            "mutation($r: ID!) { updateRoom(roomId: $r, input: { name: \"x\" }) { id } }",
            "mutation($r: ID!) { deleteRoom(roomId: $r) }",
            "mutation($r: ID!) { leaveRoom(roomId: $r) }",
        ];
        for query in refused {
            for (member, other) in [(one, two), (two, one)] {
                let mut variables = json!({ "r": room });
                if query.contains("$u") {
                    variables["u"] = json!(other.id);
                }
                if query.contains("$x") {
                    variables["x"] = json!(people.outsider.id);
                }
                let answer = app.gql(Some(&member.access_token), query, variables).await;
                assert_eq!(answer.code(), Some("FORBIDDEN"), "{query}: {:?}", answer.body);
            }
        }
        let join = app.gql(Some(&people.outsider.access_token), "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", json!({ "r": room })).await;
        join.expect_code("FORBIDDEN");
        let read = app.gql(Some(&people.outsider.access_token), "query($r: ID!) { messages(roomId: $r) { edges { cursor } } }", json!({ "r": room })).await;
        read.expect_code("FORBIDDEN");
    }
}
