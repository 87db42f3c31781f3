//! Deeply nested input, of every form, over every transport: each is answered with its code,
//! and the server keeps serving. Before the pre-scan, 2,000 levels of nested lists in one
//! anonymous request overflowed a worker thread's stack and aborted the process.
//!
//! The same matrix runs against a server in this test process (the test build, on the test
//! runtime's 2 MiB stacks), against the binary of this build, and against a release binary
//! when `CHAT_SERVER_RELEASE_BIN` names one (`.ci/run` builds it): stack use differs between
//! builds, so each must be seen to hold.
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::{helpers::*, process::ServerProcess};

const DEPTHS: [usize; 8] = [10, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 100_000];

/// Large enough that every document of the matrix reaches the server's GraphQL pipeline
/// rather than the body limit.
const BODY_LIMIT: &str = "16777216";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// `__schema { queryType { ofType { ofType ... } } }`: valid at any depth the limits allow.
    Selections,
    /// `__type(name: [[[...]]])`.
    ListValue,
    /// `__type(name: {a: {a: ...}})`.
    ObjectValue,
    /// `... on Query { ... on Query { ... } }`.
    InlineFragments,
    /// `...F0`, `fragment F0 on Query { ...F1 }`, ...: one level of text, any depth expanded.
    FragmentChain,
    /// `"variables": {"v": [[[...]]]}`: nested JSON, not GraphQL.
    VariablesJson,
}

const FORMS: [Form; 6] = [
    Form::Selections,
    Form::ListValue,
    Form::ObjectValue,
    Form::InlineFragments,
    Form::FragmentChain,
    Form::VariablesJson,
];

/// What the server must answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expected {
    Data,
    Code(&'static str),
}

impl Form {
    fn request(self, depth: usize) -> (String, Value) {
        let n = depth;
        match self {
            Form::Selections => (
                format!(
                    "{{ __schema {{ queryType {{ {}name{} }} }} }}",
                    "ofType { ".repeat(n.saturating_sub(3)),
                    " }".repeat(n.saturating_sub(3))
                ),
                json!({}),
            ),
            Form::ListValue => (
                format!(
                    "{{ __type(name: {}{}) {{ name }} }}",
                    "[".repeat(n),
                    "]".repeat(n)
                ),
                json!({}),
            ),
            Form::ObjectValue => (
                format!(
                    "{{ __type(name: {}1{}) {{ name }} }}",
                    "{a: ".repeat(n),
                    "}".repeat(n)
                ),
                json!({}),
            ),
            Form::InlineFragments => (
                format!(
                    "{{ {}__typename{} }}",
                    "... on Query { ".repeat(n),
                    " }".repeat(n)
                ),
                json!({}),
            ),
            Form::FragmentChain => {
                let mut doc = String::from("{ ...F0 }");
                for i in 0..n {
                    doc.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
                }
                doc.push_str(&format!(" fragment F{n} on Query {{ __typename }}"));
                (doc, json!({}))
            }
            Form::VariablesJson => {
                let nested = format!("{}1{}", "[".repeat(n), "]".repeat(n));
                (
                    "query($v: String!) { __type(name: $v) { name } }".into(),
                    json!({ "v": Value::String(nested) }),
                )
            }
        }
    }

    fn expected(self, depth: usize) -> Expected {
        let shallow = depth <= 10;
        // `{ ...F0 }`, 8 tokens per fragment, and the last one's 7.
        let chain_tokens = 4 + 8 * depth + 7;
        match self {
            Form::Selections | Form::InlineFragments if shallow => Expected::Data,
            Form::FragmentChain if shallow => Expected::Data,
            Form::ListValue | Form::ObjectValue if shallow => {
                Expected::Code("GRAPHQL_VALIDATION_FAILED")
            }
            Form::Selections | Form::ListValue | Form::ObjectValue | Form::InlineFragments => {
                Expected::Code("GRAPHQL_PARSE_FAILED")
            }
            // Too long to parse at all, past the token limit.
            Form::FragmentChain if chain_tokens > 10_000 => Expected::Code("GRAPHQL_PARSE_FAILED"),
            // One level of text, deep once expanded: refused before validation walks it.
            Form::FragmentChain => Expected::Code("GRAPHQL_VALIDATION_FAILED"),
            // Shallow: a list of lists is no String (coercion). Deep: no JSON the server
            // reads (serde_json's recursion limit, 128).
            Form::VariablesJson => Expected::Code("BAD_USER_INPUT"),
        }
    }
}

/// The JSON body of a request: `variables` holds raw JSON text (for the nested-JSON form).
fn body(query: &str, variables: &Value) -> String {
    let variables = match variables.get("v") {
        Some(Value::String(raw)) => format!("{{\"v\":{raw}}}"),
        _ => "{}".into(),
    };
    format!(
        "{{\"query\":{},\"variables\":{variables}}}",
        Value::from(query)
    )
}

async fn over_post(app: &TestApp, form: Form, depth: usize) {
    let (query, variables) = form.request(depth);
    let response = app
        .client
        .post(app.graphql_url())
        .header("content-type", "application/json")
        .body(body(&query, &variables))
        .send()
        .await
        .expect("the server answers");
    let answer = into_gql(response).await;
    let context = format!(
        "POST {form:?} at {depth}: {} {}",
        answer.status, answer.body
    );
    match form.expected(depth) {
        Expected::Data => {
            assert_eq!(answer.status, 200, "{context}");
            assert!(answer.body.get("errors").is_none(), "{context}");
        }
        Expected::Code(code) => {
            assert_eq!(answer.status, 400, "{context}");
            assert_eq!(answer.code(), Some(code), "{context}");
            assert_eq!(
                answer.body["errors"].as_array().unwrap().len(),
                1,
                "{context}"
            );
            if form == Form::VariablesJson && depth > 128 {
                assert!(
                    answer.message().unwrap().contains("recursion limit"),
                    "{context}"
                );
            }
        }
    }
}

async fn over_get(app: &TestApp, form: Form, depth: usize) {
    let (query, variables) = form.request(depth);
    let mut params = vec![("query", query)];
    if let Some(Value::String(raw)) = variables.get("v") {
        params.push(("variables", format!("{{\"v\":{raw}}}")));
    }
    let mut url = reqwest::Url::parse("http://server/graphql").unwrap();
    url.query_pairs_mut().extend_pairs(&params);
    let target = format!("/graphql?{}", url.query().unwrap_or_default());
    let (status, body) = raw_get(app, &target).await;
    // hyper refuses a URI over 64 KB (the `http` crate's limit) with 414, and a request head
    // over its read buffer (about 400 KB) with 431, before we see either.
    if status == 414 || status == 431 {
        assert!(target.len() > 65_534, "GET {form:?} at {depth}: {status}");
        return;
    }
    let answer = Gql {
        status,
        content_type: String::new(),
        body,
    };
    let context = format!("GET {form:?} at {depth}: {} {}", answer.status, answer.body);
    match form.expected(depth) {
        Expected::Data => assert!(answer.body.get("errors").is_none(), "{context}"),
        // GET carries variables as a parameter: nested past serde_json's limit, they are not
        // a JSON object to it.
        Expected::Code(code) => {
            assert_eq!(answer.status, 400, "{context}");
            assert_eq!(answer.code(), Some(code), "{context}");
        }
    }
}

/// A GET written on a socket of its own: HTTP clients refuse to send URLs this long (http's
/// `Uri` stops at 64 KB), and the server's answer to them is part of what is tested.
async fn raw_get(app: &TestApp, target: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET {target} HTTP/1.1\r\nhost: {addr}\r\naccept: application/graphql-response+json\r\nconnection: close\r\n\r\n"
    );
    // The server may answer (and close) before it has read all of a head it refuses.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WS_WAIT, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to a GET of {} bytes", target.len()));
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// Over a socket of `protocol`, already acknowledged.
async fn over_socket(app: &TestApp, token: &str, protocol: &str, form: Form, depth: usize) {
    let mut ws = app.ws_with(Some(protocol)).await;
    ws.send(json!({ "type": "connection_init", "payload": { "token": token } }))
        .await;
    let ack = ws.recv().await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let (query, variables) = form.request(depth);
    let kind = if protocol == LEGACY_WS {
        "start"
    } else {
        "subscribe"
    };
    let frame = format!(
        "{{\"type\":\"{kind}\",\"id\":\"n\",\"payload\":{}}}",
        body(&query, &variables)
    );
    let mut stream = ws.into_inner();
    stream.send(Frame::Text(frame.into())).await.unwrap();
    let context = format!("{protocol} {form:?} at {depth}");
    let first = next_message(&mut stream).await;
    match (form.expected(depth), first) {
        (Expected::Data, Ok(message)) => {
            assert!(
                matches!(message["type"].as_str(), Some("next" | "data")),
                "{context}: {message}"
            );
            assert!(
                message["payload"].get("errors").is_none(),
                "{context}: {message}"
            );
        }
        // The variables are not JSON the server reads: the message is malformed.
        (Expected::Code("BAD_USER_INPUT"), Err(code))
            if form == Form::VariablesJson && depth > 128 =>
        {
            assert_eq!(code, Some(4400), "{context}");
            return;
        }
        (Expected::Code(code), Ok(message)) => {
            assert_eq!(message["type"], "error", "{context}: {message}");
            assert_eq!(
                message["payload"][0]["extensions"]["code"], code,
                "{context}: {message}"
            );
        }
        (expected, got) => panic!("{context}: expected {expected:?}, got {got:?}"),
    }
    // The socket carries on.
    let ping = if protocol == LEGACY_WS {
        json!({ "type": "start", "id": "t", "payload": { "query": "{ __typename }" } })
    } else {
        json!({ "type": "ping" })
    };
    stream
        .send(Frame::Text(ping.to_string().into()))
        .await
        .unwrap();
    loop {
        let message = next_message(&mut stream)
            .await
            .expect("the socket stays open");
        if matches!(message["type"].as_str(), Some("pong" | "data")) {
            break;
        }
    }
}

/// The next protocol message other than keep-alives, or the close code.
async fn next_message(
    stream: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Result<Value, Option<u16>> {
    loop {
        let frame = tokio::time::timeout(WS_WAIT, stream.next())
            .await
            .expect("an answer in time");
        match frame {
            Some(Ok(Frame::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                if !matches!(message["type"].as_str(), Some("ka" | "ping" | "complete")) {
                    return Ok(message);
                }
            }
            Some(Ok(Frame::Close(frame))) => return Err(frame.map(|f| f.code.into())),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// The whole matrix against `app`; `alive` says whether the server still runs.
async fn throw_everything(app: &TestApp, mut alive: impl FnMut() -> bool) {
    let account = app.register("deep").await;
    let mut thrown = 0;
    for form in FORMS {
        for depth in DEPTHS {
            over_post(app, form, depth).await;
            over_get(app, form, depth).await;
            over_socket(app, &account.access_token, TRANSPORT_WS, form, depth).await;
            over_socket(app, &account.access_token, LEGACY_WS, form, depth).await;
            thrown += 4;
            assert!(alive(), "the server died at {form:?}, {depth} levels");
            let health = app.client.get(format!("{}/healthz", app.url)).send().await;
            assert_eq!(health.map(|r| r.status().as_u16()).ok(), Some(200));
        }
    }
    eprintln!("{thrown} nested requests answered; the server still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_of_every_form_is_answered_in_process() {
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.http.max_body_bytes = BODY_LIMIT.parse().unwrap()
    })
    .await;
    throw_everything(&app, || true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_of_every_form_is_answered_by_the_binary() {
    let mut server = ServerProcess::start(&[("MAX_BODY_BYTES", BODY_LIMIT)]).await;
    let app = TestApp::remote(server.app.url.clone());
    throw_everything(&app, || server.is_running()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_of_every_form_is_answered_by_a_release_build() {
    let Some(binary) = std::env::var("CHAT_SERVER_RELEASE_BIN")
        .ok()
        .filter(|b| !b.is_empty())
    else {
        eprintln!("skipped: CHAT_SERVER_RELEASE_BIN is not set");
        return;
    };
    let mut server = ServerProcess::start_binary(&binary, &[("MAX_BODY_BYTES", BODY_LIMIT)]).await;
    let app = TestApp::remote(server.app.url.clone());
    throw_everything(&app, || server.is_running()).await;
}

/// The limit itself: a document nesting exactly `GRAPHQL_MAX_NESTING` levels gets past the
/// scan; one level more does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nesting_limit_is_exact() {
    let app = spawn_app_with(&Backend::Sqlite, |c| c.graphql.max_nesting = 30).await;
    // { __type( [ x 28 ] ) }: 1 + 1 + 28 = 30 levels.
    let at = app
        .query(&format!(
            "{{ __type(name: {}{}) {{ name }} }}",
            "[".repeat(28),
            "]".repeat(28)
        ))
        .await;
    at.expect_code("GRAPHQL_VALIDATION_FAILED");
    let past = app
        .query(&format!(
            "{{ __type(name: {}{}) {{ name }} }}",
            "[".repeat(29),
            "]".repeat(29)
        ))
        .await;
    assert_eq!(past.status, 400);
    past.expect_code("GRAPHQL_PARSE_FAILED");
    assert_eq!(
        past.message(),
        Some("the document nests deeper than 30 levels")
    );
    assert_eq!(
        past.body["errors"][0]["locations"][0],
        json!({ "line": 1, "column": 44 })
    );
    // Brackets in strings do not count.
    let quoted = app
        .gql(
            None,
            &format!("{{ __type(name: \"{}\") {{ name }} }}", "[".repeat(1000)),
            json!({}),
        )
        .await;
    assert_eq!(quoted.ok()["__type"], Value::Null);
}
