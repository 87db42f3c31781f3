//! Persisted queries: Apollo's automatic persisted queries (a hash; on a miss, the hash with
//! the text), `documentId`, and the allow-list of `PERSISTED_OPERATIONS_FILE`, on every
//! transport.
use std::path::{Path, PathBuf};

use chat_server::{config::Config, startup::Application};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{db_tests, helpers::*};

const ME: &str = "query Me { me { username } }";
const NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
const NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";

/// Computed here, as a client computes it, not with the server's code.
fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `extensions` naming a document by its hash, as Apollo Client and urql send it.
fn apq(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// An answer and its `Cache-Control`.
struct Answer {
    gql: Gql,
    cache_control: Option<String>,
}

async fn answer(response: reqwest::Response) -> Answer {
    let cache_control = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    Answer {
        gql: into_gql(response).await,
        cache_control,
    }
}

async fn post(app: &TestApp, token: Option<&str>, accept: Option<&str>, body: &Value) -> Answer {
    let mut request = app.client.post(app.graphql_url()).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    answer(request.send().await.unwrap()).await
}

async fn get(app: &TestApp, token: Option<&str>, params: &[(&str, &str)]) -> Answer {
    let mut request = app.client.get(app.graphql_url()).query(params);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.unwrap()).await
}

/// A miss is a step of the protocol: 200 whatever the client accepts, never cached, with
/// Apollo's message and code (clients look at either), and no `data`.
#[track_caller]
fn assert_miss(answer: &Answer, code: &str) {
    let gql = &answer.gql;
    assert_eq!(gql.status, 200, "{}", gql.body);
    gql.expect_code(code);
    let message = match code {
        NOT_FOUND => "PersistedQueryNotFound",
        _ => "PersistedQueryNotSupported",
    };
    assert_eq!(gql.message(), Some(message));
    assert!(gql.body.get("data").is_none(), "{}", gql.body);
    assert_eq!(
        answer.cache_control.as_deref(),
        Some("private, no-cache, must-revalidate")
    );
}

/// A request error naming what was wrong with it: 400 (the default media type).
#[track_caller]
fn assert_bad_input(answer: &Answer, field: &str) {
    let gql = &answer.gql;
    assert_eq!(gql.status, 400, "{}", gql.body);
    gql.expect_code("BAD_USER_INPUT");
    assert_eq!(gql.field(), Some(field), "{}", gql.body);
}

db_tests! {
    async fn a_miss_then_the_text_then_hits_over_post_and_get(db) {
        let app = spawn_app(&db).await;
        let amy = app.register("amy").await;
        let token = Some(amy.access_token.as_str());
        let hash = sha256(ME);

        // POST: unknown, under either media type.
        for accept in [None, Some("application/json")] {
            assert_miss(&post(&app, token, accept, &json!({ "extensions": apq(&hash) })).await, NOT_FOUND);
        }
        // The client sends the hash again with the text: checked, run and kept.
        let learned = post(&app, token, None, &json!({ "query": ME, "extensions": apq(&hash) })).await;
        assert_eq!(learned.gql.ok()["me"]["username"], "amy");
        let hit = post(&app, token, None, &json!({
            "extensions": apq(&hash), "operationName": "Me", "variables": {},
        })).await;
        assert_eq!(hit.gql.ok()["me"]["username"], "amy");
        assert_eq!(hit.cache_control, None);

        // GET: `extensions` is a JSON parameter, and `query` may be left out.
        let named = "query Named($first: Int) { me { username } rooms(first: $first) { edges { cursor } } }";
        let extensions = apq(&sha256(named)).to_string();
        assert_miss(&get(&app, token, &[("extensions", &extensions)]).await, NOT_FOUND);
        let learned = get(&app, token, &[("query", named), ("extensions", &extensions)]).await;
        assert_eq!(learned.gql.ok()["me"]["username"], "amy");
        let hit = get(&app, token, &[
            ("extensions", &extensions),
            ("operationName", "Named"),
            ("variables", r#"{"first": 1}"#),
        ]).await;
        assert_eq!(hit.gql.ok()["me"]["username"], "amy");
        // The same store serves documentId, bare or prefixed, over either method.
        let prefixed = format!("sha256:{}", sha256(named));
        let by_id = get(&app, token, &[("documentId", &prefixed)]).await;
        assert_eq!(by_id.gql.ok()["me"]["username"], "amy");
        let by_id = post(&app, token, None, &json!({ "documentId": sha256(ME) })).await;
        assert_eq!(by_id.gql.ok()["me"]["username"], "amy");

        // A document sent whole, without a hash, is found by its hash later too.
        let plain = "query Plain { me { id } }";
        app.gql(token, plain, json!({})).await.ok();
        let hit = post(&app, token, None, &json!({ "extensions": apq(&sha256(plain)) })).await;
        hit.gql.ok();

        // A mutation learned over POST still runs over POST only.
        let logout = r#"mutation Out { logout(refreshToken: "not a token") }"#;
        let logout_hash = apq(&sha256(logout));
        post(&app, token, None, &json!({ "query": logout, "extensions": logout_hash })).await;
        let over_get = get(&app, token, &[("extensions", &logout_hash.to_string())]).await;
        assert_eq!(over_get.gql.status, 405, "{}", over_get.gql.body);
    }

    async fn the_text_must_be_what_the_hash_says(db) {
        let app = spawn_app(&db).await;
        let amy = app.register("amy").await;
        let token = Some(amy.access_token.as_str());
        // The hash of one document sent with the text of another: refused, and kept under
        // neither (else anyone could have their document run for another's hash).
        let other = sha256("query Other { me { id } }");
        let mismatch = post(&app, token, None, &json!({ "query": ME, "extensions": apq(&other) })).await;
        assert_bad_input(&mismatch, "extensions.persistedQuery.sha256Hash");
        assert_eq!(mismatch.gql.message(), Some("provided sha does not match query"));
        assert!(mismatch.gql.body.get("data").is_none());
        assert_miss(&post(&app, token, None, &json!({ "extensions": apq(&other) })).await, NOT_FOUND);
        assert_miss(&post(&app, token, None, &json!({ "extensions": apq(&sha256(ME)) })).await, NOT_FOUND);
        let legacy = post(&app, token, Some("application/json"), &json!({ "query": ME, "extensions": apq(&other) })).await;
        assert_eq!(legacy.gql.status, 200);
        legacy.gql.expect_code("BAD_USER_INPUT");
        // Over GET too.
        let over_get = get(&app, token, &[("query", ME), ("extensions", &apq(&other).to_string())]).await;
        assert_bad_input(&over_get, "extensions.persistedQuery.sha256Hash");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_other_than_1_and_hashes_other_than_64_hex_digits_are_refused_unrepeated() {
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.http.max_body_bytes = 4 * 1024 * 1024;
    })
    .await;
    let hash = sha256("{ __typename }");
    for version in [json!(2), json!("1"), json!(0), Value::Null] {
        let body = json!({ "query": "{ __typename }",
            "extensions": { "persistedQuery": { "version": version, "sha256Hash": hash } } });
        let refused = post(&app, None, None, &body).await;
        assert_bad_input(&refused, "extensions.persistedQuery.version");
        assert_eq!(
            refused.gql.message(),
            Some("Unsupported persisted query version")
        );
    }
    let missing = json!({ "extensions": { "persistedQuery": { "version": 1 } } });
    assert_bad_input(
        &post(&app, None, None, &missing).await,
        "extensions.persistedQuery.sha256Hash",
    );

    // Too short, not hex, and 10 and 1,000 times too long: refused, and not sent back.
    let malformed = [
        hash[..63].to_owned(),
        format!("{}z", &hash[..63]),
        hash.repeat(10),
        hash.repeat(1_000),
    ];
    for bad in &malformed {
        let refused = post(&app, None, None, &json!({ "extensions": apq(bad) })).await;
        assert_bad_input(&refused, "extensions.persistedQuery.sha256Hash");
        let text = refused.gql.body.to_string();
        assert!(text.len() < 512, "{} bytes", text.len());
        let with_query = json!({ "query": "{ __typename }", "extensions": apq(bad) });
        assert_bad_input(
            &post(&app, None, None, &with_query).await,
            "extensions.persistedQuery.sha256Hash",
        );
        let id = post(&app, None, None, &json!({ "documentId": bad })).await;
        assert_bad_input(&id, "documentId");
        assert!(id.gql.body.to_string().len() < 512);
    }
    let over_get = get(
        &app,
        None,
        &[("extensions", &apq(&malformed[2]).to_string())],
    )
    .await;
    assert_bad_input(&over_get, "extensions.persistedQuery.sha256Hash");
    let over_get = get(
        &app,
        None,
        &[("documentId", &format!("md5:{}", &hash[..32]))],
    )
    .await;
    assert_bad_input(&over_get, "documentId");
    let not_json = get(&app, None, &[("extensions", "{")]).await;
    assert_eq!(not_json.gql.status, 400);
    not_json.gql.expect_code("BAD_USER_INPUT");
    // One document named two ways is one too many.
    let both = json!({ "documentId": hash, "extensions": apq(&hash) });
    assert_bad_input(&post(&app, None, None, &both).await, "documentId");
    // Neither a document nor a name for one: not a GraphQL request, 400 whatever the type.
    for accept in [None, Some("application/json")] {
        let nothing = post(&app, None, accept, &json!({ "extensions": {} })).await;
        assert_eq!(nothing.gql.status, 400, "{}", nothing.gql.body);
        nothing.gql.expect_code("BAD_USER_INPUT");
    }
    // And the server is none the worse.
    app.query("{ __typename }").await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_the_most_recent_documents_only() {
    let app = spawn_app_with(&Backend::Sqlite, |c| c.graphql.document_cache = 5).await;
    let text = |i: usize| format!("query Q{i} {{ __typename }}");
    for i in 0..15 {
        let body = json!({ "query": text(i), "extensions": apq(&sha256(&text(i))) });
        post(&app, None, None, &body).await.gql.ok();
    }
    let by_hash = |i: usize| json!({ "extensions": apq(&sha256(&text(i))) });
    // The last five are held; the ten before them were let go, the oldest first.
    for i in 10..15 {
        post(&app, None, None, &by_hash(i)).await.gql.ok();
    }
    for i in [0, 4, 9] {
        assert_miss(&post(&app, None, None, &by_hash(i)).await, NOT_FOUND);
    }
    // What was let go is learned again, as an APQ client does it, and pushes out the oldest.
    let again = json!({ "query": text(0), "extensions": apq(&sha256(&text(0))) });
    post(&app, None, None, &again).await.gql.ok();
    post(&app, None, None, &by_hash(0)).await.gql.ok();
    assert_miss(&post(&app, None, None, &by_hash(10)).await, NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_hashes_are_not_supported_and_text_still_runs() {
    let app = spawn_app_with(&Backend::Sqlite, |c| c.graphql.document_cache = 0).await;
    let text = "{ __typename }";
    let hash = sha256(text);
    for body in [
        json!({ "extensions": apq(&hash) }),
        // Apollo Client then sends the text with the hash once more, and then alone.
        json!({ "query": text, "extensions": apq(&hash) }),
        json!({ "documentId": hash }),
    ] {
        assert_miss(&post(&app, None, None, &body).await, NOT_SUPPORTED);
    }
    let extensions = apq(&hash).to_string();
    assert_miss(
        &get(&app, None, &[("extensions", &extensions)]).await,
        NOT_SUPPORTED,
    );
    post(&app, None, None, &json!({ "query": text }))
        .await
        .gql
        .ok();
    post(&app, None, None, &json!({ "query": text }))
        .await
        .gql
        .ok();
}

/// A manifest as graphql-codegen's client preset writes it (`hashAlgorithm: 'sha256'`).
fn manifest(dir: &Path, documents: &[&str]) -> PathBuf {
    let entries: serde_json::Map<String, Value> = documents
        .iter()
        .map(|doc| (sha256(doc), json!(doc)))
        .collect();
    let path = dir.join("persisted-documents.json");
    std::fs::write(&path, serde_json::to_string_pretty(&entries).unwrap()).unwrap();
    path
}

db_tests! {
    async fn an_allow_list_runs_its_documents_and_refuses_the_rest_on_every_transport(db) {
        // Accounts are made where anything runs; the allow-listed instance shares the database.
        let open = spawn_app(&db).await;
        let amy = open.register("amy").await;
        let token = Some(amy.access_token.as_str());
        let dir = tempfile::tempdir().unwrap();
        let added = "subscription Added($r: ID!) { messageAdded(roomId: $r) { body } }";
        let send = "mutation Send($r: ID!, $b: String!) { sendMessage(input: { roomId: $r, body: $b }) { seq } }";
        let path = manifest(dir.path(), &[ME, added, send]);
        let app = spawn_on(open.db.clone(), |c| c.graphql.persisted_operations = Some(path)).await;
        let hash = sha256(ME);

        // By hash (both ways), by documentId (bare or prefixed), or whole: it runs.
        for body in [
            json!({ "extensions": apq(&hash) }),
            json!({ "documentId": hash }),
            json!({ "documentId": format!("sha256:{hash}") }),
            json!({ "query": ME }),
            json!({ "query": ME, "extensions": apq(&hash) }),
        ] {
            let answer = post(&app, token, None, &body).await;
            assert_eq!(answer.gql.ok()["me"]["username"], "amy", "{body}");
        }
        // Anything else is refused before it is parsed: a valid query, one that does not
        // parse, a hash not on the list, and a text sent with its own (right) hash.
        let other = "query Other { me { id } }";
        for body in [
            json!({ "query": "{ __typename }" }),
            json!({ "query": "{ me {" }),
            json!({ "extensions": apq(&sha256(other)) }),
            json!({ "documentId": sha256(other) }),
            json!({ "query": other, "extensions": apq(&sha256(other)) }),
        ] {
            assert_miss(&post(&app, token, None, &body).await, NOT_FOUND);
        }
        // Nothing was learned from that.
        assert_miss(&post(&app, token, None, &json!({ "extensions": apq(&sha256(other)) })).await, NOT_FOUND);

        // GET.
        let by_hash = get(&app, token, &[("extensions", &apq(&hash).to_string())]).await;
        assert_eq!(by_hash.gql.ok()["me"]["username"], "amy");
        let by_id = get(&app, token, &[("documentId", &hash)]).await;
        assert_eq!(by_id.gql.ok()["me"]["username"], "amy");
        assert_miss(&get(&app, token, &[("query", "{ __typename }")]).await, NOT_FOUND);

        // A batch: each operation on its own.
        let batch = json!([
            { "documentId": hash },
            { "query": "{ __typename }" },
            { "extensions": apq(&hash), "operationName": "Me" },
        ]);
        let answer = post(&app, token, None, &batch).await;
        assert_eq!(answer.gql.status, 200);
        let items = answer.gql.body.as_array().expect("an array");
        assert_eq!(items[0]["data"]["me"]["username"], "amy");
        assert_eq!(items[1]["errors"][0]["extensions"]["code"], NOT_FOUND);
        assert!(items[1].get("data").is_none());
        assert_eq!(items[2]["data"]["me"]["username"], "amy");

        // graphql-transport-ws: a document not on the list is an `error`, like every request
        // error there; one that is runs, named or whole.
        let room = open.create_room(&amy, "listed", false).await;
        let mut ws = app.ws_ready(&amy.access_token).await;
        ws.subscribe("free", "subscription { messageAdded(roomId: \"x\") { id } }", json!({})).await;
        let refused = ws.recv().await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["id"], "free");
        assert_eq!(refused["payload"][0]["extensions"]["code"], NOT_FOUND);
        ws.send(json!({ "type": "subscribe", "id": "me",
            "payload": { "documentId": hash } })).await;
        assert_eq!(ws.next("me").await["data"]["me"]["username"], "amy");
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "me" }));
        // As graphql-ws 6 must send it: an empty `query` beside the hash.
        ws.send(json!({ "type": "subscribe", "id": "me2",
            "payload": { "query": "", "extensions": apq(&hash) } })).await;
        assert_eq!(ws.next("me2").await["data"]["me"]["username"], "amy");
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "me2" }));
        ws.send(json!({ "type": "subscribe", "id": "added",
            "payload": { "extensions": apq(&sha256(added)), "variables": { "r": room } } })).await;
        ws.sync().await;
        let sent = post(&app, token, None, &json!({
            "extensions": apq(&sha256(send)), "variables": { "r": room, "b": "allowed" },
        })).await;
        sent.gql.ok();
        assert_eq!(ws.next("added").await["data"]["messageAdded"]["body"], "allowed");

        // The legacy protocol: the same.
        let mut legacy = app.ws_with(Some(LEGACY_WS)).await;
        legacy.send(json!({ "type": "connection_init", "payload": { "authToken": amy.access_token } })).await;
        assert_eq!(legacy.recv_any().await, json!({ "type": "connection_ack" }));
        legacy.send(json!({ "type": "start", "id": "1", "payload": { "query": "{ __typename }" } })).await;
        let refused = legacy.recv().await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["payload"][0]["extensions"]["code"], NOT_FOUND);
        legacy.send(json!({ "type": "start", "id": "2", "payload": { "extensions": apq(&hash) } })).await;
        let data = legacy.recv().await;
        assert_eq!(data["type"], "data", "{data}");
        assert_eq!(data["payload"]["data"]["me"]["username"], "amy");
    }
}

/// A server that cannot read its allow-list, or finds an entry that is not what it says,
/// does not start: a typo must not quietly let every document through, nor none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_allow_list_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // As long as a sha1, the client preset's default hash.
    let sha1 = "5ba3f1c2".repeat(5);
    let cases = [
        (dir.path().join("missing.json"), "read "),
        (
            write("list.json", json!([ME]).to_string()),
            "expected a JSON object",
        ),
        (write("empty.json", "{}".into()), "holds no documents"),
        (
            write("sha1.json", json!({ sha1: ME }).to_string()),
            "hashAlgorithm to 'sha256'",
        ),
        (
            write(
                "wrong.json",
                json!({ sha256("{ __typename }"): ME }).to_string(),
            ),
            "not the sha256 of its document",
        ),
        (
            write(
                "broken.json",
                json!({ sha256("{ me {"): "{ me {" }).to_string(),
            ),
            "entry ",
        ),
    ];
    for (path, wanted) in cases {
        let mut config = Config {
            bind_addr: ([127, 0, 0, 1], 0).into(),
            ..Config::default()
        };
        config.graphql.persisted_operations = Some(path.clone());
        let err = match Application::build(config).await {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(err) => format!("{err:#}"),
        };
        assert!(err.starts_with("PERSISTED_OPERATIONS_FILE "), "{err}");
        assert!(err.contains(wanted), "{}: {err}", path.display());
    }

    // The binary says so and exits non-zero, before it opens a database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("serve")
        .current_dir(dir.path())
        .env("PERSISTED_OPERATIONS_FILE", dir.path().join("sha1.json"))
        .env("DATABASE_URL", "postgres://nowhere.invalid/none")
        .env("BIND_ADDR", "127.0.0.1:0")
        .output()
        .expect("run chat-server");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("PERSISTED_OPERATIONS_FILE"), "{said}");
    assert!(said.contains("hashAlgorithm"), "{said}");
}
