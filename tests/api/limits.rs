//! What one request may ask for (depth, complexity, aliases, batch size, introspection), and
//! how often a caller may register, refresh and send.
use serde_json::{Value, json};

use crate::{db_tests, helpers::*};

const INTROSPECTION: &str = include_str!("../fixtures/introspection.graphql");

/// A valid document of depth `levels` + 3: `__schema { queryType { ofType { ofType ... } } }`.
fn nested(levels: usize) -> String {
    format!(
        "{{ __schema {{ queryType {{ {}name{} }} }} }}",
        "ofType { ".repeat(levels),
        " }".repeat(levels)
    )
}

/// `n` aliased fields: `a0: __typename a1: __typename ...`.
fn aliases(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: __typename")).collect();
    fields.join(" ")
}

impl TestApp {
    /// A request from `address`, as a trusted proxy would tell it (`TRUST_FORWARDED_FOR`).
    async fn gql_from(
        &self,
        address: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Gql {
        let mut request = self
            .client
            .post(self.graphql_url())
            .header("x-forwarded-for", address)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_gql(request.send().await.unwrap()).await
    }
}

fn retry_after(answer: &Gql) -> u64 {
    answer.expect_code("RATE_LIMITED");
    answer.body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfter in {}", answer.body))
}

const SEND: &str = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { seq } }";

db_tests! {
    async fn the_playground_introspection_query_is_within_every_limit(db) {
        let app = spawn_app(&db).await;
        let answer = app.query(INTROSPECTION).await;
        let types = answer.ok()["__schema"]["types"].as_array().unwrap();
        assert!(types.iter().any(|t| t["name"] == "Message"));
    }

    async fn documents_nested_too_deep_are_refused(db) {
        let app = spawn_app_with(&db, |c| c.graphql.max_depth = 10).await;
        app.query(&nested(5)).await.ok();
        let deep = app.query(&nested(12)).await;
        assert_eq!(deep.status, 400);
        deep.expect_code("GRAPHQL_VALIDATION_FAILED");
        assert!(deep.body.get("data").is_none(), "{}", deep.body);
    }

    async fn pages_count_their_size_in_complexity(db) {
        let app = spawn_app(&db).await;
        let kim = app.register("kim").await;
        let page = |rooms: u32, messages: u32| {
            format!(
                "{{ rooms(first: {rooms}) {{ edges {{ node {{ name messages(first: {messages}) {{ edges {{ node {{ body author {{ username }} }} }} }} }} }} }} }}"
            )
        };
        // A room list with each room's latest messages is an ordinary screen...
        app.gql(Some(&kim.access_token), &page(20, 10), json!({})).await.ok();
        // ...a hundred rooms with a hundred messages each is ten thousand messages.
        let heavy = app.gql(Some(&kim.access_token), &page(100, 100), json!({})).await;
        assert_eq!(heavy.status, 400);
        heavy.expect_code("GRAPHQL_VALIDATION_FAILED");
        assert!(heavy.message().unwrap().contains("complex"), "{}", heavy.body);
        // Page sizes from variables count the same.
        let query = "query($n: Int) { rooms(first: $n) { edges { node { messages(first: $n) { edges { node { body author { username } } } } } } } }";
        let heavy = app.gql(Some(&kim.access_token), query, json!({ "n": 100 })).await;
        heavy.expect_code("GRAPHQL_VALIDATION_FAILED");
    }

    async fn documents_with_too_many_aliases_are_refused(db) {
        let app = spawn_app_with(&db, |c| c.graphql.max_aliases = 5).await;
        assert_eq!(app.query(&format!("{{ {} }}", aliases(5))).await.ok()["a4"], "Query");
        let refused = app.query(&format!("{{ {} }}", aliases(6))).await;
        assert_eq!(refused.status, 400);
        refused.expect_code("GRAPHQL_VALIDATION_FAILED");
        assert_eq!(refused.message(), Some("the document uses too many aliases"));
        // Aliases inside fragments count too.
        let fragment = format!("{{ ...F }} fragment F on Query {{ {} }}", aliases(6));
        app.query(&fragment).await.expect_code("GRAPHQL_VALIDATION_FAILED");
    }

    async fn introspection_can_be_turned_off(db) {
        let app = spawn_app_with(&db, |c| c.graphql.introspection = false).await;
        for query in ["{ __schema { types { name } } }", "{ __type(name: \"User\") { name } }", INTROSPECTION] {
            let refused = app.query(query).await;
            assert_eq!(refused.status, 400, "{query}");
            refused.expect_code("GRAPHQL_VALIDATION_FAILED");
            assert!(refused.message().unwrap().starts_with("introspection is disabled"));
        }
        assert_eq!(app.query("{ __typename }").await.ok()["__typename"], "Query");
    }

    async fn batches_are_limited_in_size(db) {
        let app = spawn_app_with(&db, |c| c.graphql.max_batch = 3).await;
        let batch = |n: usize| json!(vec![json!({ "query": "{ __typename }" }); n]);
        let ok = app.client.post(app.graphql_url()).json(&batch(3)).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        let refused = into_gql(app.client.post(app.graphql_url()).json(&batch(4)).send().await.unwrap()).await;
        assert_eq!(refused.status, 400);
        refused.expect_code("BAD_USER_INPUT");
        assert_eq!(refused.message(), Some("a batch must hold 1 to 3 operations"));
    }

    async fn registration_is_rate_limited_per_address(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.register_per_ip = 2;
            c.http.trust_forwarded_for = true;
        })
        .await;
        let register = |name: &str| {
            json!({ "input": { "email": format!("{name}@example.com"), "username": name, "password": PASSWORD } })
        };
        let query = "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }";
        for name in ["ria", "sam"] {
            app.gql_from("203.0.113.7", None, query, register(name)).await.ok();
        }
        let limited = app.gql_from("203.0.113.7", None, query, register("tom")).await;
        assert!((1..=60).contains(&retry_after(&limited)));
        // Refused before the account exists: the name is still free, from another address.
        app.gql_from("198.51.100.9", None, query, register("tom")).await.ok();
    }

    async fn refresh_is_rate_limited_per_address(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.refresh_per_ip = 2;
            c.http.trust_forwarded_for = true;
        })
        .await;
        let mut uma = app.register("uma").await;
        let query = format!("mutation($t: String!) {{ refresh(refreshToken: $t) {{ {AUTH_FIELDS} }} }}");
        for _ in 0..2 {
            let answer = app.gql_from("203.0.113.7", None, &query, json!({ "t": uma.refresh_token })).await;
            uma.refresh_token = answer.ok()["refresh"]["refreshToken"].as_str().unwrap().to_owned();
        }
        let limited = app.gql_from("203.0.113.7", None, &query, json!({ "t": uma.refresh_token })).await;
        retry_after(&limited);
        // The limited attempt did not use the token up: it still works, from elsewhere.
        app.gql_from("198.51.100.9", None, &query, json!({ "t": uma.refresh_token })).await.ok();
    }

    async fn refresh_is_rate_limited_per_user(db) {
        let app = spawn_app_with(&db, |c| c.limits.refresh_per_user = 3).await;
        let (ivy, jon) = (app.register("ivy").await, app.register("jon").await);
        // Three sessions of one user share the user's allowance.
        let mut sessions = vec![ivy.clone(), app.login(&ivy).await, app.login(&ivy).await];
        for session in &mut sessions {
            *session = app.refresh(session).await;
        }
        retry_after(&app.refresh_raw(&sessions[0].refresh_token).await);
        // The refusal did not count as a reuse of the token (that would end the session),
        // and other users are not affected.
        app.me(&sessions[0].access_token).await.ok();
        app.refresh(&jon).await;
    }

    async fn sending_is_rate_limited_per_user_and_per_address(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.send_per_user = 3;
            c.limits.send_per_ip = 5;
            c.http.trust_forwarded_for = true;
        })
        .await;
        let (vic, wes) = (app.register("vic").await, app.register("wes").await);
        let room = app.create_room(&vic, "busy", false).await;
        app.join_room(&wes, &room).await.ok();
        let send = |body: &str| json!({ "i": { "roomId": room, "body": body } });
        for i in 0..3 {
            app.gql_from("203.0.113.7", Some(&vic.access_token), SEND, send(&format!("v{i}"))).await.ok();
        }
        // vic is out of sends, wherever vic sends from...
        let limited = app.gql_from("198.51.100.9", Some(&vic.access_token), SEND, send("v3")).await;
        retry_after(&limited);
        // ...but wes is not, until their shared address has sent five.
        for i in 0..2 {
            app.gql_from("203.0.113.7", Some(&wes.access_token), SEND, send(&format!("w{i}"))).await.ok();
        }
        let limited = app.gql_from("203.0.113.7", Some(&wes.access_token), SEND, send("w2")).await;
        retry_after(&limited);
        // Nothing refused was stored, and the seqs have no gap.
        let history = app
            .gql(Some(&vic.access_token), "query($r: ID!) { messages(roomId: $r) { edges { node { seq body } } } }", json!({ "r": room }))
            .await;
        let bodies: Vec<_> = history.ok()["messages"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["node"]["seq"].as_i64().unwrap(), e["node"]["body"].as_str().unwrap().to_owned()))
            .collect();
        let expected: Vec<_> = ["v0", "v1", "v2", "w0", "w1"]
            .iter()
            .enumerate()
            .map(|(i, b)| (i as i64 + 1, (*b).to_owned()))
            .collect();
        assert_eq!(bodies, expected);
    }
}

/// `n` aliased `createRoom`s in one mutation.
fn create_rooms(n: usize, tag: &str) -> String {
    let fields: Vec<String> = (0..n)
        .map(|i| format!("r{i}: createRoom(input: {{ name: \"{tag}{i}\" }}) {{ id }}"))
        .collect();
    format!("mutation {{ {} }}", fields.join(" "))
}

/// A batch of `operations` mutations of `aliases` `createRoom`s each, as `account`.
async fn create_rooms_batch(
    app: &TestApp,
    account: &Account,
    operations: usize,
    aliases: usize,
) -> Vec<Value> {
    let batch: Vec<Value> = (0..operations)
        .map(|op| json!({ "query": create_rooms(aliases, &format!("b{op}-")) }))
        .collect();
    app.batch(account, &batch).await
}

db_tests! {
    async fn every_mutation_field_counts_against_the_write_limits(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.write_per_user = 100;
            c.http.trust_forwarded_for = true;
        })
        .await;
        let xia = app.register("xia").await;
        let yul = app.register("yul").await;
        let room = app.create_room(&yul, "open", false).await;
        // 16 operations of 50 aliases: 800 writes, not one request.
        let answers = create_rooms_batch(&app, &xia, 16, 50).await;
        let limited = answers
            .iter()
            .flat_map(|a| a["errors"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["extensions"]["code"] == "RATE_LIMITED")
            .count();
        assert!(limited > 0, "some writes were refused");
        assert!(
            answers.iter().flat_map(|a| a["errors"].as_array().cloned().unwrap_or_default()).all(|e| e["extensions"]["code"] == "RATE_LIMITED"),
            "only for the rate"
        );
        // Every kind of write is counted: joining and leaving are refused now too. The
        // allowance refills by one every 0.6 s, so on a slow machine one of them may find a
        // write just refilled: of three tries each, one is refused at least.
        let leave = "mutation($r: ID!) { leaveRoom(roomId: $r) }";
        for write in ["join", "leave"] {
            let mut refused = false;
            for _ in 0..3 {
                let answer = match write {
                    "join" => app.join_room(&xia, &room).await,
                    _ => app.gql(Some(&xia.access_token), leave, json!({ "r": room })).await,
                };
                if answer.code() == Some("RATE_LIMITED") {
                    retry_after(&answer);
                    refused = true;
                    break;
                }
            }
            assert!(refused, "{write} is a write");
        }
        // The allowance refills while the batch runs (one write every 0.6 s): on a busy
        // machine a few more may have passed.
        let written = app.all_rooms(&xia).await.len();
        assert!((100..115).contains(&written), "{written} of 800 writes ran");
        // Reads are not writes.
        app.me(&xia.access_token).await.ok();
    }

    async fn anonymous_writes_count_per_address(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.write_per_ip = 3;
            c.http.trust_forwarded_for = true;
        })
        .await;
        let logout = "mutation($t: String!) { logout(refreshToken: $t) }";
        for _ in 0..3 {
            let answer = app.gql_from("203.0.113.7", None, logout, json!({ "t": "nope" })).await;
            assert_eq!(answer.ok()["logout"], false);
        }
        retry_after(&app.gql_from("203.0.113.7", None, logout, json!({ "t": "nope" })).await);
        app.gql_from("198.51.100.9", None, logout, json!({ "t": "nope" })).await.ok();
    }

    async fn forwarded_for_is_read_from_its_last_line(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.write_per_ip = 1;
            c.http.trust_forwarded_for = true;
        })
        .await;
        let logout = json!({ "query": "mutation { logout(refreshToken: \"nope\") }" });
        let from = |lines: &[&str]| {
            let mut request = app.client.post(app.graphql_url()).json(&logout);
            for line in lines {
                request = request.header("x-forwarded-for", *line);
            }
            async move { into_gql(request.send().await.unwrap()).await }
        };
        // A line of the client's own comes first; the proxy's (the last) says who it is.
        from(&["192.0.2.1", "203.0.113.1"]).await.ok();
        from(&["192.0.2.1", "203.0.113.2"]).await.ok();
        retry_after(&from(&["192.0.2.99", "203.0.113.1"]).await);
    }

    async fn ipv6_clients_are_counted_by_their_64(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.write_per_ip = 1;
            c.http.trust_forwarded_for = true;
        })
        .await;
        let logout = "mutation { logout(refreshToken: \"nope\") }";
        app.gql_from("2001:db8:0:1::1", None, logout, json!({})).await.ok();
        // Any other address of the same /64 is the same client.
        retry_after(&app.gql_from("2001:db8:0:1:ffff:ffff:ffff:fffe", None, logout, json!({})).await);
        app.gql_from("2001:db8:0:2::1", None, logout, json!({})).await.ok();
    }
}

/// A burst of writes on SQLite (one writer at a time) from one user: the others' writes wait
/// their turn and succeed; nobody gets INTERNAL_SERVER_ERROR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_on_sqlite_fails_nobody() {
    let app = spawn_app(&Backend::Sqlite).await;
    let (zed, amy) = (app.register("zed").await, app.register("amy").await);
    let room = app.create_room(&amy, "calm", false).await;
    let burst = create_rooms_batch(&app, &zed, 16, 50);
    let others = async {
        let mut answers = Vec::new();
        for i in 0..50 {
            answers.push(
                app.send_message_raw(&amy, &room, &format!("m{i}"), None)
                    .await,
            );
        }
        answers
    };
    let (burst, others) = tokio::join!(burst, others);
    for answer in &burst {
        assert!(answer.get("errors").is_none(), "{}", answer);
    }
    for answer in &others {
        answer.ok();
    }
    assert_eq!(app.all_rooms(&zed).await.len(), 800);
}
