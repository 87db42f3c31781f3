//! Every bound on what a client sends, at the bound, one past it, and 10 and 1,000 times past:
//! the first is served, the others refused with one clear error (never thousands of errors,
//! never work in proportion to the excess).
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::helpers::*;

/// The bound, and past it: one more, 10x and 1,000x.
fn around(bound: usize) -> [(usize, bool); 4] {
    [
        (bound, true),
        (bound + 1, false),
        (bound * 10, false),
        (bound * 1000, false),
    ]
}

/// Asserts a request error with `code` and a single error in it.
#[track_caller]
fn refused_once(answer: &Gql, code: &str) {
    assert_eq!(answer.status, 400, "{}", short(&answer.body));
    assert_eq!(answer.code(), Some(code), "{}", short(&answer.body));
    assert_eq!(answer.body["errors"].as_array().map(Vec::len), Some(1));
}

/// The start of an answer, for failure messages (some echo what they refuse).
fn short(body: &Value) -> String {
    body.to_string().chars().take(300).collect()
}

async fn spawn() -> TestApp {
    spawn_app_with(&Backend::Sqlite, |c| {
        c.http.max_body_bytes = 64 * 1024 * 1024
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_ids_are_bounded_on_both_protocols() {
    let app = spawn().await;
    let amy = app.register("amy").await;
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        for (len, ok) in around(128) {
            let mut ws = app.ws_with(Some(protocol)).await;
            ws.send(json!({ "type": "connection_init", "payload": { "token": amy.access_token } }))
                .await;
            assert_eq!(ws.recv().await["type"], "connection_ack");
            let id = "i".repeat(len);
            let kind = if protocol == LEGACY_WS {
                "start"
            } else {
                "subscribe"
            };
            ws.send(json!({ "type": kind, "id": id, "payload": { "query": "{ __typename }" } }))
                .await;
            if ok {
                let next = ws.recv().await;
                assert_eq!(next["id"], id.as_str(), "{protocol}");
            } else {
                assert_eq!(
                    ws.closed().await,
                    Closed {
                        code: 4400,
                        reason: "invalid message: an id is at most 128 bytes".into()
                    },
                    "{protocol}, {len} bytes"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_names_are_bounded() {
    let app = spawn().await;
    let bo = app.register("bob").await;
    for (len, ok) in around(128) {
        let name = format!("Q{}", "n".repeat(len - 1));
        let body =
            json!({ "query": format!("query {name} {{ __typename }}"), "operationName": name });
        let answer = into_gql(
            app.client
                .post(app.graphql_url())
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if ok {
            assert_eq!(answer.ok()["__typename"], "Query");
        } else {
            refused_once(&answer, "BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("operationName"));
        }
    }
    // Over a socket, the operation is refused and the socket carries on.
    let mut ws = app.ws_ready(&bo.access_token).await;
    let name = "n".repeat(129);
    ws.send(json!({
        "type": "subscribe",
        "id": "o",
        "payload": { "query": "{ __typename }", "operationName": name },
    }))
    .await;
    let refused = ws.recv().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(
        refused["payload"][0]["extensions"]["field"],
        "operationName"
    );
    ws.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_bounded() {
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.graphql.max_tokens = 100;
        c.http.max_body_bytes = 64 * 1024 * 1024;
    })
    .await;
    for (tokens, ok) in around(100) {
        // `{`, `}` and one `__typename` per other token.
        let answer = app
            .query(&format!("{{ {}}}", "__typename ".repeat(tokens - 2)))
            .await;
        if ok {
            assert_eq!(answer.ok()["__typename"], "Query");
        } else {
            refused_once(&answer, "GRAPHQL_PARSE_FAILED");
            assert_eq!(
                answer.message(),
                Some("the document has more than 100 tokens")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directives_are_bounded() {
    let app = spawn().await;
    for (count, ok) in around(50) {
        let spreads = "...F @include(if: true) ".repeat(count);
        let answer = app
            .query(&format!(
                "{{ {spreads}}} fragment F on Query {{ __typename }}"
            ))
            .await;
        if ok {
            assert_eq!(answer.ok()["__typename"], "Query");
        } else if count <= 500 {
            refused_once(&answer, "GRAPHQL_VALIDATION_FAILED");
            assert_eq!(
                answer.message(),
                Some("the document uses more than 50 directives")
            );
        } else {
            // 50,000 directives are 350,000 tokens: refused before parsing.
            refused_once(&answer, "GRAPHQL_PARSE_FAILED");
        }
    }
    // The same directive repeated on one field: one error, not one per repetition.
    let repeated = app
        .query(&format!(
            "{{ __typename {} }}",
            "@skip(if: false) ".repeat(100_000)
        ))
        .await;
    refused_once(&repeated, "GRAPHQL_PARSE_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_are_bounded() {
    let app = spawn().await;
    for (count, ok) in around(50) {
        let fields: Vec<String> = (0..count).map(|i| format!("a{i}: __typename")).collect();
        let answer = app.query(&format!("{{ {} }}", fields.join(" "))).await;
        if ok {
            assert_eq!(answer.ok()["a49"], "Query");
        } else if count <= 500 {
            refused_once(&answer, "GRAPHQL_VALIDATION_FAILED");
        } else {
            refused_once(&answer, "GRAPHQL_PARSE_FAILED");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_bounded() {
    let app = spawn().await;
    for (count, ok) in around(16) {
        let batch = json!(vec![json!({ "query": "{ __typename }" }); count]);
        let response = app
            .client
            .post(app.graphql_url())
            .json(&batch)
            .send()
            .await
            .unwrap();
        let answer = into_gql(response).await;
        if ok {
            assert_eq!(answer.body.as_array().map(Vec::len), Some(16));
        } else {
            refused_once(&answer, "BAD_USER_INPUT");
            assert_eq!(
                answer.message(),
                Some("a batch must hold 1 to 16 operations")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_that_multiply_or_loop_are_refused_unexpanded() {
    let app = spawn().await;
    // F0 spreads F1 twice, F1 spreads F2 twice...: 2^40 fields from 2 KB.
    let mut doc = String::from("{ ...F0 }");
    for i in 0..40 {
        doc.push_str(&format!(
            " fragment F{i} on Query {{ ...F{next} ...F{next} }}",
            next = i + 1
        ));
    }
    doc.push_str(" fragment F40 on Query { __typename }");
    let answer = app.query(&doc).await;
    refused_once(&answer, "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(
        answer.message(),
        Some("the document selects more than 5000 fields once its fragments are expanded")
    );
    let cycle = app
        .query("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
        .await;
    refused_once(&cycle, "GRAPHQL_VALIDATION_FAILED");
    assert!(
        cycle
            .message()
            .unwrap()
            .starts_with("Cannot spread fragment"),
        "{}",
        cycle.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_nested_past_serde_jsons_limit_are_refused() {
    let app = spawn().await;
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    // serde_json reads 127 levels; the body and its variables object take two.
    let at = format!(
        "{{\"query\":\"{{ __typename }}\",\"variables\":{{\"v\":{}}}}}",
        nested(125)
    );
    let response = app
        .client
        .post(app.graphql_url())
        .header("content-type", "application/json")
        .body(at)
        .send()
        .await
        .unwrap();
    assert_eq!(into_gql(response).await.ok()["__typename"], "Query");
    for depth in [126, 1_250, 125_000] {
        let body = format!(
            "{{\"query\":\"{{ __typename }}\",\"variables\":{{\"v\":{}}}}}",
            nested(depth)
        );
        let response = app
            .client
            .post(app.graphql_url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let answer = into_gql(response).await;
        refused_once(&answer, "BAD_USER_INPUT");
        assert!(
            answer
                .message()
                .unwrap()
                .contains("recursion limit exceeded"),
            "{}",
            answer.body
        );
    }
    // A field the server does not read is skipped, not walked: any depth costs one pass.
    let ignored = format!(
        "{{\"query\":\"{{ __typename }}\",\"unread\":{}}}",
        nested(1_000_000)
    );
    let response = app
        .client
        .post(app.graphql_url())
        .header("content-type", "application/json")
        .body(ignored)
        .send()
        .await
        .unwrap();
    assert_eq!(into_gql(response).await.ok()["__typename"], "Query");
    // Over a socket, a frame nested as deep is a malformed message.
    let mut ws = app.ws().await;
    let frame = format!(
        "{{\"type\":\"connection_init\",\"payload\":{}{}}}",
        "[".repeat(1_280),
        "]".repeat(1_280)
    );
    ws.send_raw(Frame::Text(frame.into())).await;
    assert_eq!(ws.closed().await.code, 4400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_are_bounded_and_never_past_the_end() {
    let app = spawn().await;
    let cyd = app.register("cyd").await;
    let room = app.create_room(&cyd, "r", false).await;
    let first = app.send_message(&cyd, &room, "one").await;
    let cursor = first["cursor"].as_str().unwrap().to_owned();
    let page = "query($r: ID!, $a: String) { messages(roomId: $r, first: 10, after: $a) { edges { node { seq } } } }";
    let ok = app
        .gql(
            Some(&cyd.access_token),
            page,
            json!({ "r": room, "a": cursor }),
        )
        .await;
    assert_eq!(ok.ok()["messages"]["edges"], json!([]));
    for len in [81, 800, 80_000] {
        let answer = app
            .gql(
                Some(&cyd.access_token),
                page,
                json!({ "r": room, "a": "A".repeat(len) }),
            )
            .await;
        answer.expect_code("BAD_USER_INPUT");
        assert_eq!(answer.field(), Some("after"));
    }
    // A subscription from a cursor past the room's newest message would take the next
    // messages as delivered: refused.
    let past = base64_url(b"msg:1000");
    let mut ws = app.ws_ready(&cyd.access_token).await;
    ws.message_added("p", &room, Some(&past)).await;
    let refused = ws.recv().await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["field"], "after",
        "{refused}"
    );
    assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "p" }));
    // From the newest message itself, the next one arrives.
    ws.message_added("s", &room, Some(&cursor)).await;
    ws.sync().await;
    app.send_message(&cyd, &room, "two").await;
    loop {
        let message = ws.recv().await;
        if message["id"] == "s" {
            assert_eq!(message["payload"]["data"]["messageAdded"]["body"], "two");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_message_ids_are_bounded() {
    let app = spawn().await;
    let dee = app.register("dee").await;
    let room = app.create_room(&dee, "r", false).await;
    for (len, ok) in around(100) {
        let id = "c".repeat(len);
        let answer = app.send_message_raw(&dee, &room, "hi", Some(&id)).await;
        if ok {
            assert_eq!(answer.ok()["sendMessage"]["clientMsgId"], id.as_str());
        } else {
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("clientMsgId"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_longer_than_any_we_issue_are_refused_unread() {
    let app = spawn().await;
    let eve = app.register("eve").await;
    for len in [129, 1_280, 128_000] {
        let refresh = app.refresh_raw(&"r".repeat(len)).await;
        assert_eq!(refresh.message(), Some("invalid refresh token"));
        let logout = app
            .gql(
                None,
                "mutation($t: String!) { logout(refreshToken: $t) }",
                json!({ "t": "r".repeat(len) }),
            )
            .await;
        assert_eq!(logout.ok()["logout"], false);
    }
    for len in [2_049, 20_480] {
        let token = format!("{}.{}", eve.access_token, "x".repeat(len));
        assert_eq!(app.me(&token).await.message(), Some("invalid access token"));
    }
    // In a socket's connection_init too.
    let mut ws = app.ws().await;
    let token = "x".repeat(2_049_000);
    ws.send(json!({ "type": "connection_init", "payload": { "token": token } }))
        .await;
    assert_eq!(
        ws.closed().await,
        Closed {
            code: 4403,
            reason: "invalid token".into()
        }
    );
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_messages_past_the_size_limit_close_1009() {
    let app = spawn_app_with(&Backend::Sqlite, |c| c.http.max_body_bytes = 1024).await;
    let fay = app.register("fay").await;
    for len in [1024, 1025, 10_240, 1_024_000] {
        let mut ws = app.ws_ready(&fay.access_token).await;
        // `{"type":"ping","payload":{"pad":"` and `"}}` are 36 bytes.
        let pad = "x".repeat(len - 36);
        let frame = format!("{{\"type\":\"ping\",\"payload\":{{\"pad\":\"{pad}\"}}}}");
        if len <= 1024 {
            ws.send_raw(Frame::Text(frame.into())).await;
            assert_eq!(ws.recv().await["type"], "pong");
            continue;
        }
        let mut stream = ws.into_inner();
        // The server stops reading at the header: sending the rest may fail.
        let _ = futures_util::SinkExt::send(&mut stream, Frame::Text(frame.into())).await;
        let closed = loop {
            match futures_util::StreamExt::next(&mut stream).await {
                Some(Ok(Frame::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break None,
            }
        };
        if len <= 10_240 {
            assert_eq!(closed, Some(1009), "{len} bytes");
        } else {
            // A megabyte still on its way when the server gave up: 1009, or a reset.
            assert!(
                matches!(closed, Some(1009) | None),
                "{len} bytes: {closed:?}"
            );
        }
    }
    // Whatever the message claimed, the server holds none of it and serves on.
    app.ws_ready(&fay.access_token).await.sync().await;
}
