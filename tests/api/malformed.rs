//! Property tests: random and malformed GraphQL documents, JSON bodies, variables and
//! WebSocket frames thrown at the running server. Whatever comes in, the answer is a coded
//! GraphQL error (never a 5xx, never INTERNAL_SERVER_ERROR) or a documented close code
//! (never a socket dropped without one), and the server serves normally afterwards.
use std::{cell::RefCell, collections::BTreeMap, time::Duration};

use futures_util::{SinkExt, StreamExt};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::helpers::*;

/// Codes an input of any shape may earn (INTERNAL_SERVER_ERROR is not among them).
const CLIENT_CODES: [&str; 8] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BAD_USER_INPUT",
    "CONFLICT",
    "NOT_FOUND",
    "RATE_LIMITED",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
];

/// Close codes a socket may end with, whatever the client sent.
const CLOSE_CODES: [u16; 8] = [1000, 1009, 1013, 4400, 4401, 4403, 4409, 4429];

/// A server with a user and a room, and the runtime it runs on: proptest's runner is
/// synchronous, each case blocks on the runtime.
struct Harness {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    account: Account,
    room: String,
}

impl Harness {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, account, room) = rt.block_on(async {
            let app = spawn_app_with(&Backend::Sqlite, |c| c.http.max_body_bytes = 64 * 1024).await;
            let account = app.register("fuzzer").await;
            let room = app.create_room(&account, "fuzz", false).await;
            (app, account, room)
        });
        Self {
            rt,
            app,
            account,
            room,
        }
    }

    fn post(&self, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        self.rt.block_on(async {
            let response = self
                .app
                .client
                .post(self.app.graphql_url())
                .bearer_auth(&self.account.access_token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("the server answers");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }

    fn post_json(&self, body: &Value) -> (u16, Value) {
        self.post("application/json", body.to_string().into_bytes())
    }

    /// The server still does its job.
    fn still_serves(&self) {
        self.rt.block_on(async {
            assert_eq!(
                self.app.query("{ __typename }").await.ok()["__typename"],
                "Query"
            );
            let mut ws = self.app.ws_ready(&self.account.access_token).await;
            ws.subscribe("q", "{ me { username } }", json!({})).await;
            assert_eq!(ws.next("q").await["data"]["me"]["username"], "fuzzer");
        });
    }
}

/// A tally of what came back, for the report at the end of each test.
#[derive(Default)]
struct Tally(RefCell<BTreeMap<String, usize>>);

impl Tally {
    fn add(&self, outcome: impl Into<String>) {
        *self.0.borrow_mut().entry(outcome.into()).or_default() += 1;
    }

    fn report(&self, what: &str) {
        let tally = self.0.borrow();
        let total: usize = tally.values().sum();
        eprintln!("{total} {what}: {tally:?}");
    }
}

/// Checks one HTTP answer (a batch's is a list of answers); returns a summary such as
/// `400 GRAPHQL_PARSE_FAILED`.
fn check_answer(status: u16, body: &Value) -> Result<String, TestCaseError> {
    prop_assert!(
        [200, 400, 405, 413, 415].contains(&status),
        "status {status}: {body}"
    );
    match body {
        Value::Array(answers) if status == 200 => {
            prop_assert!(!answers.is_empty(), "{body}");
            for answer in answers {
                check_response(answer)?;
            }
            Ok(format!("{status} batch"))
        }
        _ => Ok(match check_response(body)? {
            Some(code) => format!("{status} {code}"),
            None => status.to_string(),
        }),
    }
}

/// Checks one GraphQL response; returns its first error's code, if it has errors.
fn check_response(body: &Value) -> Result<Option<String>, TestCaseError> {
    prop_assert!(body.is_object(), "not a JSON object: {body}");
    let Some(errors) = body.get("errors") else {
        prop_assert!(body.get("data").is_some(), "{body}");
        return Ok(None);
    };
    let errors = errors.as_array().expect("errors is a list");
    prop_assert!(!errors.is_empty(), "{body}");
    for error in errors {
        let code = error["extensions"]["code"].as_str().unwrap_or("none");
        prop_assert!(CLIENT_CODES.contains(&code), "code {code}: {body}");
        prop_assert!(error["message"].is_string(), "{body}");
    }
    Ok(errors[0]["extensions"]["code"].as_str().map(str::to_owned))
}

/// A GraphQL literal or variable, valid syntax of any type.
fn literal() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        Just("99999999999999999999".to_owned()),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        any::<String>().prop_map(|s| Value::from(s).to_string()),
        prop::sample::select(vec![
            "true",
            "false",
            "null",
            "USER",
            "ADMIN",
            "\"\"",
            "$v",
            "$i",
            "$r",
            "$undefined"
        ])
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            prop::collection::vec((name(), inner), 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

/// Names of the schema's fields and arguments, mostly, and some that do not exist.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => prop::sample::select(vec![
            "me", "rooms", "publicRooms", "room", "messages", "sendMessage", "register", "login",
            "refresh", "logout", "logoutAll", "createRoom", "joinRoom", "leaveRoom",
            "messageAdded", "users", "id", "roomId", "body", "seq", "edges", "node", "cursor",
            "pageInfo", "hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "author",
            "username", "email", "role", "createdAt", "clientMsgId", "name", "isPrivate",
            "accessToken", "refreshToken", "user", "__typename", "__schema", "__type", "types",
            "ofType", "kind", "fields", "input", "first", "last", "after", "before",
            "refreshToken", "password",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,10}",
    ]
}

/// A selection set of valid syntax: fields with aliases, arguments and directives, nested,
/// with inline fragments and spreads.
fn selection_set() -> impl Strategy<Value = String> {
    let arguments =
        prop::option::of(prop::collection::vec((name(), literal()), 1..4)).prop_map(|args| {
            args.map(|args| {
                let args: Vec<String> =
                    args.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("({})", args.join(", "))
            })
            .unwrap_or_default()
        });
    let field = (
        prop::option::of("[a-z]{1,3}"),
        name(),
        arguments,
        prop::option::of(prop::sample::select(vec![
            "@include(if: true)",
            "@skip(if: $v)",
            "@bogus",
            "@include",
        ])),
    )
        .prop_map(|(alias, name, args, directive)| {
            let alias = alias.map(|a| format!("{a}: ")).unwrap_or_default();
            format!("{alias}{name}{args} {}", directive.unwrap_or(""))
        })
        .boxed();
    let leaf = prop::collection::vec(field.clone(), 1..4).prop_map(|fields| fields.join(" "));
    leaf.prop_recursive(6, 40, 4, move |inner| {
        prop_oneof![
            4 => (field.clone(), inner.clone()).prop_map(|(field, set)| format!("{field} {{ {set} }}")),
            1 => (prop::sample::select(vec!["Query", "Room", "Message", "User", "Nope"]), inner.clone())
                .prop_map(|(ty, set)| format!("... on {ty} {{ {set} }}")),
            1 => Just("...F".to_owned()),
            2 => prop::collection::vec(inner, 1..3).prop_map(|sets| sets.join(" ")),
        ]
    })
}

/// Operations of the schema with random literals (of the right type or not) for their
/// arguments: documents that mostly get past validation into the resolvers. `ROOM_ID`
/// stands for the harness's room.
fn schema_operation() -> impl Strategy<Value = String> {
    let templates = vec![
        "{ me { id username email role createdAt } }",
        "{ rooms(first: A) { edges { cursor node { id name isPrivate messages(last: A, before: S) { edges { node { seq body author { username email } } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } } } }",
        "{ publicRooms(first: A, after: S) { edges { node { id name } } } }",
        "{ room(id: S) { name messages(first: A, after: S) { edges { node { seq } } } } }",
        "{ room(id: \"ROOM_ID\") { name messages(first: A, last: A) { edges { node { seq } } } } }",
        "{ messages(roomId: \"ROOM_ID\", first: A, after: S) { edges { cursor node { seq body clientMsgId editedAt } } } }",
        "{ messages(roomId: \"ROOM_ID\", last: A, before: S) { pageInfo { startCursor } } }",
        "{ users(first: A) { edges { node { id } } } }",
        "mutation { sendMessage(input: { roomId: \"ROOM_ID\", body: S, clientMsgId: S }) { seq body } }",
        "mutation { sendMessage(input: { roomId: S, body: S }) { seq } }",
        "mutation { createRoom(input: { name: S, isPrivate: B }) { id name } }",
        "mutation { joinRoom(roomId: S) { id } }",
        "mutation { leaveRoom(roomId: S) }",
        "mutation { login(input: { login: S, password: S }) { accessToken } }",
        "mutation { register(input: { email: S, username: S, password: S }) { user { id } } }",
        "mutation { refresh(refreshToken: S) { accessToken } }",
        "mutation { logout(refreshToken: S) }",
    ];
    // Each hole mostly of its type (Int, String, Boolean), sometimes any literal at all.
    let ints = prop::collection::vec(
        prop_oneof![4 => (-5i32..150).prop_map(|n| n.to_string()), 1 => literal()],
        6,
    );
    let strings = prop::collection::vec(
        prop_oneof![
            2 => any::<String>().prop_map(|s| Value::from(s).to_string()),
            2 => "[a-zA-Z0-9+/=_@.-]{0,20}".prop_map(|s| Value::from(s).to_string()),
            1 => Just("\"bXNnOjA\"".to_owned()),
            1 => literal(),
        ],
        6,
    );
    let bools = prop_oneof![4 => any::<bool>().prop_map(|b| b.to_string()), 1 => literal()];
    (prop::sample::select(templates), ints, strings, bools).prop_map(
        |(template, ints, strings, boolean)| {
            let (mut ints, mut strings) = (ints.into_iter().cycle(), strings.into_iter().cycle());
            template
                .split(' ')
                .map(|word| {
                    let at = word.find([')', ',', '}']).unwrap_or(word.len());
                    let (head, tail) = word.split_at(at);
                    let value = match head {
                        "A" => ints.next().unwrap(),
                        "S" => strings.next().unwrap(),
                        "B" => boolean.clone(),
                        _ => return word.to_owned(),
                    };
                    format!("{value}{tail}")
                })
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// Documents: mostly of valid syntax (so that validation and execution get exercised), and
/// some token soup, arbitrary text and deep nesting.
fn document() -> impl Strategy<Value = String> {
    let operation = (
        prop::sample::select(vec!["", "query", "mutation", "subscription", "query Named"]),
        prop::option::of(prop::sample::select(vec![
            "($v: Boolean)",
            "($i: SendMessageInput!, $v: Boolean = true)",
            "($r: ID!, $f: Int)",
            "($v: Nope)",
            "($v: Int = \"x\")",
        ])),
        selection_set(),
        prop::option::of((
            prop::sample::select(vec!["Query", "Room", "Message"]),
            selection_set(),
        )),
    )
        .prop_map(|(keyword, variables, set, fragment)| {
            let fragment = fragment
                .map(|(ty, set)| format!(" fragment F on {ty} {{ {set} }}"))
                .unwrap_or_default();
            let head = if keyword.is_empty() && variables.is_some() {
                "query"
            } else {
                keyword
            };
            format!(
                "{head}{} {{ {set} }}{fragment}",
                variables.unwrap_or_default()
            )
        });
    let soup = prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec![
                "{", "}", "(", ")", "[", "]", ":", "$", "!", "=", "@", "...", ",", "|", "&",
                "query", "mutation", "subscription", "fragment", "on", "#comment\n", "\"\"\"block\"\"\"",
            ]).prop_map(str::to_owned),
            2 => name(),
            1 => literal(),
        ],
        0..40,
    )
    .prop_map(|tokens| tokens.join(" "));
    prop_oneof![
        6 => schema_operation(),
        4 => operation,
        2 => soup,
        1 => any::<String>(),
        1 => deep(),
    ]
}

/// Deep nesting of any bracket, anywhere a document allows one (selections, arguments' list
/// and object values, variable types), closed or not, up to 9,000 levels: what fits in the
/// harness's 64 KB bodies (a larger body is answered 413 while the client is still sending
/// it). `nesting.rs` goes to 100,000 levels with a larger limit.
fn deep() -> impl Strategy<Value = String> {
    let depth = prop_oneof![1usize..100, 100usize..2_000, 2_000usize..9_000];
    (depth, 0usize..4, any::<bool>()).prop_map(|(depth, form, closed)| {
        let (open, close, around) = match form {
            0 => ("{ me ", "}", ("", "")),
            1 => ("[", "]", ("{ room(id: ", ") { id } }")),
            2 => ("{a: ", "}", ("{ room(id: ", ") { id } }")),
            _ => ("[", "]", ("query($v: ", "Int) { __typename }")),
        };
        let closing = if closed {
            close.repeat(depth)
        } else {
            String::new()
        };
        format!("{}{}{closing}{}", around.0, open.repeat(depth), around.1)
    })
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        document().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "query",
                        "variables",
                        "operationName",
                        "extensions",
                        "input",
                        "roomId",
                        "body",
                        "clientMsgId",
                        "first",
                        "after",
                        "i",
                        "v",
                    ])
                    .prop_map(str::to_owned),
                    any::<String>(),
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn random_documents_get_coded_errors() {
    let h = Harness::new();
    let tally = Tally::default();
    runner(1500)
        .run(&document(), |doc| {
            let doc = doc.replace("ROOM_ID", &h.room);
            let (status, body) = h.post_json(&json!({ "query": doc }));
            tally.add(check_answer(status, &body)?);
            Ok(())
        })
        .unwrap();
    tally.report("random documents");
    h.still_serves();
}

#[test]
fn random_bodies_get_coded_errors() {
    let h = Harness::new();
    let tally = Tally::default();
    let body = prop_oneof![
        4 => json_value().prop_map(|v| ("application/json", v.to_string().into_bytes())),
        2 => (json_value(), prop::collection::vec(json_value(), 0..4)).prop_map(|(query, more)| {
            // Request-shaped: a query of any type beside other fields, or a batch of those.
            let request = json!({ "query": query, "variables": more.first(), "operationName": more.get(1) });
            let body = if more.len() > 2 { json!([request, more[2]]) } else { request };
            ("application/json", body.to_string().into_bytes())
        }),
        1 => prop::collection::vec(any::<u8>(), 0..400).prop_map(|b| ("application/json", b)),
        1 => prop::collection::vec(any::<u8>(), 0..100).prop_map(|b| ("text/plain", b)),
        1 => (1usize..100_000).prop_map(|n| ("application/json", format!("{{\"query\":\"{}\"}}", "x".repeat(n)).into_bytes())),
    ];
    runner(1000)
        .run(&body, |(content_type, bytes)| {
            let (status, body) = h.post(content_type, bytes);
            tally.add(check_answer(status, &body)?);
            Ok(())
        })
        .unwrap();
    tally.report("random bodies");
    h.still_serves();
}

#[test]
fn random_variables_get_coded_errors() {
    let h = Harness::new();
    let tally = Tally::default();
    let operations = [
        "mutation($i: SendMessageInput!) { sendMessage(input: $i) { seq body } }",
        "query($r: ID!, $f: Int, $a: String, $l: Int, $b: String) { messages(roomId: $r, first: $f, after: $a, last: $l, before: $b) { edges { node { seq } } pageInfo { hasNextPage } } }",
        "query($f: Int, $a: String) { rooms(first: $f, after: $a) { edges { cursor } } }",
        "mutation($i: CreateRoomInput!) { createRoom(input: $i) { id } }",
        "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
        "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
        "query($id: ID!) { room(id: $id) { name } }",
    ];
    let room = h.room.clone();
    let variables = (
        prop::sample::select(operations.to_vec()),
        prop::collection::btree_map(
            prop::sample::select(vec!["i", "r", "f", "a", "l", "b", "id", "x"])
                .prop_map(str::to_owned),
            prop_oneof![
                3 => json_value(),
                1 => Just(Value::from(room.clone())),
                1 => (json_value(), json_value(), prop::option::of("[a-z0-9-]{0,80}")).prop_map(move |(body, name, key)| {
                    json!({ "roomId": room, "body": body, "clientMsgId": key, "name": name, "login": name, "password": body })
                }),
            ],
            0..5,
        ),
    );
    runner(1000)
        .run(&variables, |(query, vars)| {
            let vars: serde_json::Map<String, Value> = vars.into_iter().collect();
            let (status, body) = h.post_json(&json!({ "query": query, "variables": vars }));
            tally.add(check_answer(status, &body)?);
            Ok(())
        })
        .unwrap();
    tally.report("random variables");
    h.still_serves();
}

/// A frame a client might send, well-formed or not.
fn frame(token: String, room: String) -> impl Strategy<Value = Frame> {
    let kind = prop_oneof![
        6 => prop::sample::select(vec!["subscribe", "start", "ping", "complete", "stop"]).prop_map(Value::from),
        3 => prop::sample::select(vec![
            "connection_init", "pong", "connection_terminate", "next", "error", "connection_ack",
            "ka", "", "bogus",
        ])
        .prop_map(Value::from),
        1 => json_value(),
    ];
    let id = prop_oneof![
        3 => prop::sample::select(vec!["1", "2", "3"]).prop_map(|s| Some(Value::from(s))),
        1 => Just(None),
        1 => prop::sample::select(vec!["", "a-very-long-id-that-keeps-going-and-going"]).prop_map(|s| Some(Value::from(s))),
        1 => json_value().prop_map(Some),
    ];
    let documents = {
        let room = room.clone();
        document()
            .prop_map(move |doc| doc.replace("ROOM_ID", &room))
            .boxed()
    };
    let subscription = format!("subscription {{ messageAdded(roomId: \"{room}\") {{ seq }} }}");
    let payload = prop_oneof![
        1 => Just(None),
        1 => Just(Some(json!({ "token": token }))),
        1 => Just(Some(json!({ "Authorization": format!("Bearer {token}") }))),
        2 => Just(Some(json!({ "query": subscription }))),
        1 => Just(Some(json!({ "query": "{ me { username } }" }))),
        3 => documents.clone().prop_map(|doc| Some(json!({ "query": doc }))),
        1 => (documents, json_value()).prop_map(|(doc, vars)| Some(json!({ "query": doc, "variables": vars }))),
        1 => json_value().prop_map(Some),
    ];
    prop_oneof![
        8 => (kind, id, payload).prop_map(|(kind, id, payload)| {
            let mut message = serde_json::Map::new();
            message.insert("type".into(), kind);
            if let Some(id) = id {
                message.insert("id".into(), id);
            }
            if let Some(payload) = payload {
                message.insert("payload".into(), payload);
            }
            Frame::Text(Value::Object(message).to_string().into())
        }),
        1 => any::<String>().prop_map(|s| Frame::Text(s.into())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Frame::Binary(b.into())),
        1 => (60_000usize..80_000).prop_map(|n| Frame::Text("x".repeat(n).into())),
    ]
}

#[test]
fn random_websocket_frames_end_in_answers_or_close_codes() {
    let h = Harness::new();
    let tally = Tally::default();
    let token = h.account.access_token.clone();
    let init = json!({ "type": "connection_init", "payload": { "token": token } }).to_string();
    let session = (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(frame(token.clone(), h.room.clone()), 1..6),
    );
    runner(400)
        .run(&session, |(legacy, init_first, frames)| {
            let protocol = if legacy { LEGACY_WS } else { TRANSPORT_WS };
            let outcome = h.rt.block_on(async {
                let ws = h.app.ws_with(Some(protocol)).await;
                let mut stream = ws.into_inner();
                if init_first {
                    stream.send(Frame::Text(init.clone().into())).await.unwrap();
                }
                for frame in frames {
                    // The server may close while we are still sending.
                    if stream.send(frame).await.is_err() {
                        break;
                    }
                }
                // Read what comes back until the server closes or goes quiet.
                loop {
                    match tokio::time::timeout(Duration::from_millis(40), stream.next()).await {
                        Err(_) => return Ok("open".to_owned()),
                        Ok(Some(Ok(Frame::Close(Some(close))))) => {
                            let code = u16::from(close.code);
                            return if CLOSE_CODES.contains(&code) {
                                Ok(format!("closed {code}"))
                            } else {
                                Err(format!("close code {code} ({})", close.reason))
                            };
                        }
                        Ok(Some(Ok(Frame::Text(text)))) => {
                            let message: Value = serde_json::from_str(&text)
                                .map_err(|_| format!("not JSON: {text}"))?;
                            let kind = message["type"].as_str().unwrap_or_default();
                            let known = [
                                "connection_ack",
                                "ping",
                                "pong",
                                "ka",
                                "next",
                                "data",
                                "error",
                                "complete",
                                "connection_error",
                            ];
                            if !known.contains(&kind) {
                                return Err(format!("unknown message {message}"));
                            }
                            for error in message["payload"]["errors"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .chain(
                                    message["payload"]
                                        .as_array()
                                        .into_iter()
                                        .flatten()
                                        .filter(|_| kind == "error"),
                                )
                            {
                                let code = error["extensions"]["code"].as_str().unwrap_or("none");
                                if !CLIENT_CODES.contains(&code) {
                                    return Err(format!("code {code} in {message}"));
                                }
                            }
                        }
                        Ok(None | Some(Err(_)) | Some(Ok(Frame::Close(None)))) => {
                            return Err("the socket ended without a close code".to_owned());
                        }
                        Ok(Some(Ok(_))) => {}
                    }
                }
            });
            let outcome = outcome.map_err(TestCaseError::fail)?;
            tally.add(format!("{protocol} {outcome}"));
            Ok(())
        })
        .unwrap();
    tally.report("random WebSocket sessions");
    h.still_serves();
}
