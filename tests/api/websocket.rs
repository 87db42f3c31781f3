//! GraphQL over WebSocket: the handshake, every close code, both subprotocols, keep-alive,
//! token expiry and re-auth, and sockets closing when their session is revoked.
use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{db_tests, helpers::*};

fn closed(code: u16, reason: &str) -> Closed {
    Closed {
        code,
        reason: reason.into(),
    }
}

db_tests! {
    async fn every_documented_init_payload_is_accepted(db) {
        let app = spawn_app(&db).await;
        let amy = app.register("amy").await;
        let token = amy.access_token.as_str();
        for payload in [
            json!({ "Authorization": format!("Bearer {token}") }),
            json!({ "authorization": format!("Bearer {token}") }),
            json!({ "token": token }),
            json!({ "authToken": token }),
            json!({ "headers": { "Authorization": format!("Bearer {token}") } }),
        ] {
            let mut ws = app.ws().await;
            ws.init(payload.clone()).await;
            ws.subscribe("q", "{ me { username } }", json!({})).await;
            assert_eq!(ws.next("q").await["data"]["me"]["username"], "amy", "{payload}");
        }
        // A client that names no subprotocol gets graphql-transport-ws.
        let mut ws = app.ws_with(None).await;
        ws.init(json!({ "token": token })).await;
    }

    async fn init_without_a_good_token_closes_4403(db) {
        let app = spawn_app(&db).await;
        let bob = app.register("bob").await;
        let mut expired = claims_of(&bob.access_token);
        let now = chrono::Utc::now().timestamp();
        expired["iat"] = json!(now - 600);
        expired["nbf"] = json!(now - 600);
        expired["exp"] = json!(now - 60);
        let expired = forge_token(&expired, SECRET.as_bytes(), jsonwebtoken::Algorithm::HS256);
        let cases = [
            (json!({}), "missing token"),
            (json!(null), "missing token"),
            (json!({ "token": "garbage" }), "invalid token"),
            (json!({ "Authorization": format!("Basic {}", bob.access_token) }), "missing token"),
            (json!({ "token": expired }), "token expired"),
        ];
        for (payload, reason) in cases {
            let mut ws = app.ws().await;
            ws.send(json!({ "type": "connection_init", "payload": payload })).await;
            assert_eq!(ws.closed().await, closed(4403, reason), "{payload}");
        }
        // No payload at all.
        let mut ws = app.ws().await;
        ws.send(json!({ "type": "connection_init" })).await;
        assert_eq!(ws.closed().await, closed(4403, "missing token"));

        // A revoked session.
        app.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": bob.refresh_token }))
            .await
            .ok();
        let mut ws = app.ws().await;
        ws.send(json!({ "type": "connection_init", "payload": { "token": bob.access_token } })).await;
        assert_eq!(ws.closed().await, closed(4403, "session revoked"));
    }

    async fn protocol_violations_close_with_their_codes(db) {
        let app = spawn_app(&db).await;
        let cy = app.register("cyd").await;

        // 4401: subscribe before connection_ack.
        let mut ws = app.ws().await;
        ws.subscribe("1", "{ __typename }", json!({})).await;
        assert_eq!(ws.closed().await, closed(4401, "Unauthorized"));

        // 4429: a second connection_init.
        let mut ws = app.ws_ready(&cy.access_token).await;
        ws.send(json!({ "type": "connection_init", "payload": { "token": cy.access_token } })).await;
        assert_eq!(ws.closed().await, closed(4429, "Too many initialisation requests"));

        // 4409: a subscription id that is still in use.
        let room = app.create_room(&cy, "r", false).await;
        let mut ws = app.ws_ready(&cy.access_token).await;
        ws.message_added("dup", &room, None).await;
        ws.message_added("dup", &room, None).await;
        assert_eq!(ws.closed().await, closed(4409, "Subscriber for dup already exists"));
        // Whatever the id (at most 128 bytes), the reason fits in a close frame (123 bytes).
        let long_id = "😀".repeat(32);
        let mut ws = app.ws_ready(&cy.access_token).await;
        ws.message_added(&long_id, &room, None).await;
        ws.message_added(&long_id, &room, None).await;
        let refused = ws.closed().await;
        assert_eq!(refused.code, 4409);
        assert!(refused.reason.len() <= 123 && refused.reason.starts_with("Subscriber for 😀"), "{refused:?}");

        // 4400: anything the protocol does not define.
        let malformed = [
            Message::Text("not json".into()),
            Message::Text("{}".into()),
            Message::Text(r#"{"type":"subscribe","id":"1"}"#.into()),
            Message::Text(r#"{"type":"subscribe","payload":{"query":"{ __typename }"}}"#.into()),
            Message::Text(r#"{"type":"subscribe","id":"1","payload":{"variables":{}}}"#.into()),
            Message::Text(r#"{"type":"start","id":"1","payload":{"query":"{ __typename }"}}"#.into()),
            Message::Text(r#"{"type":"complete"}"#.into()),
            Message::Text(r#"{"type":"bogus"}"#.into()),
            Message::Binary(vec![1, 2, 3].into()),
        ];
        for frame in malformed {
            let mut ws = app.ws_ready(&cy.access_token).await;
            ws.send_raw(frame.clone()).await;
            let closed = ws.closed().await;
            assert_eq!(closed.code, 4400, "{frame:?}: {closed:?}");
        }
    }

    async fn no_init_in_time_closes_4408(db) {
        let app = spawn_app_with(&db, |c| c.ws.init_timeout = Duration::from_millis(300)).await;
        let mut ws = app.ws().await;
        assert_eq!(ws.closed().await, closed(4408, "Connection initialisation timeout"));
        // Pings do not count as an init.
        let mut ws = app.ws().await;
        ws.sync().await;
        assert_eq!(ws.closed().await.code, 4408);
    }

    async fn an_id_is_free_again_once_complete(db) {
        let app = spawn_app(&db).await;
        let di = app.register("dia").await;
        let room = app.create_room(&di, "r", false).await;
        // From a cursor: the send is replayed if it beats the subscription's start.
        let before = app.send_message(&di, &room, "before").await;
        let after = before["cursor"].as_str();
        let mut ws = app.ws_ready(&di.access_token).await;
        ws.message_added("a", &room, after).await;
        ws.send(json!({ "type": "complete", "id": "a" })).await;
        ws.message_added("a", &room, after).await;
        ws.sync().await;
        app.send_message(&di, &room, "once").await;
        let payload = ws.next("a").await;
        assert_eq!(payload["data"]["messageAdded"]["body"], "once");
        // The completed one delivers nothing more.
        ws.sync().await;
    }

    async fn queries_and_mutations_run_over_the_socket(db) {
        let app = spawn_app(&db).await;
        let eve = app.register("eve").await;
        let mut ws = app.ws_ready(&eve.access_token).await;
        ws.subscribe(
            "m",
            "mutation($i: CreateRoomInput!) { createRoom(input: $i) { name isPrivate } }",
            json!({ "i": { "name": "over ws" } }),
        )
        .await;
        let payload = ws.next("m").await;
        assert_eq!(payload["data"]["createRoom"], json!({ "name": "over ws", "isPrivate": false }));
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "m" }));
    }

    async fn operations_are_chosen_as_over_http(db) {
        let app = spawn_app(&db).await;
        let ida = app.register("ida").await;
        let room = app.create_room(&ida, "named", false).await;
        // From a cursor, so that the message below arrives whenever each subscription starts.
        let first = app.send_message(&ida, &room, "first").await;
        let mut ws = app.ws_ready(&ida.access_token).await;
        let sub = "messageAdded(roomId: $r, after: $a) { body }";
        let vars = json!({ "r": room, "a": first["cursor"] });
        let both = format!(
            "query Q {{ me {{ username }} }} subscription S($r: ID!, $a: String) {{ {sub} }}"
        );
        // A subscription however it is named streams; a query chosen from the same document
        // answers once.
        let cases = [
            ("anonymous", format!("subscription($r: ID!, $a: String) {{ {sub} }}"), None),
            ("named", format!("subscription S($r: ID!, $a: String) {{ {sub} }}"), None),
            ("chosen", both.clone(), Some("S")),
        ];
        for (id, query, name) in &cases {
            ws.send(json!({ "type": "subscribe", "id": id,
                "payload": { "query": query, "variables": vars, "operationName": name } }))
                .await;
        }
        ws.send(json!({ "type": "subscribe", "id": "q",
            "payload": { "query": both, "variables": vars, "operationName": "Q" } }))
            .await;
        assert_eq!(ws.next("q").await["data"]["me"]["username"], "ida");
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "q" }));
        ws.sync().await;
        app.send_message(&ida, &room, "to all three").await;
        let mut got: Vec<String> = Vec::new();
        for _ in &cases {
            let message = ws.recv().await;
            assert_eq!(message["type"], "next", "{message}");
            assert_eq!(message["payload"]["data"]["messageAdded"]["body"], "to all three");
            got.push(message["id"].as_str().unwrap().to_owned());
        }
        got.sort();
        assert_eq!(got, ["anonymous", "chosen", "named"]);
        // Two operations and no name: the same request error as over HTTP.
        ws.send(json!({ "type": "subscribe", "id": "none",
            "payload": { "query": both, "variables": vars } }))
            .await;
        let message = ws.recv().await;
        assert_eq!(message["type"], "error", "{message}");
        let http = app.gql(Some(&ida.access_token), &both, vars.clone()).await;
        assert_eq!(message["payload"][0]["message"].as_str(), http.message(), "{}", http.body);
    }

    async fn request_errors_are_error_messages_without_complete(db) {
        let app = spawn_app(&db).await;
        let fay = app.register("fay").await;
        let mut ws = app.ws_ready(&fay.access_token).await;
        let cases = [
            ("subscription { nope }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
            ("subscription {", json!({}), "GRAPHQL_PARSE_FAILED"),
            ("subscription($r: ID!) { messageAdded(roomId: $r) { id } }", json!({}), "BAD_USER_INPUT"),
        ];
        for (i, (query, variables, code)) in cases.into_iter().enumerate() {
            let id = format!("e{i}");
            ws.subscribe(&id, query, variables).await;
            let message = ws.recv().await;
            assert_eq!(message["type"], "error", "{message}");
            assert_eq!(message["id"], id);
            assert_eq!(message["payload"][0]["extensions"]["code"], code, "{message}");
        }
        // No `complete` followed any of them; the socket is still fine.
        ws.sync().await;
    }

    async fn resolver_errors_are_next_then_complete(db) {
        let app = spawn_app(&db).await;
        let gus = app.register("gus").await;
        let hal = app.register("hal").await;
        let room = app.create_room(&gus, "gus only", true).await;
        let mut ws = app.ws_ready(&hal.access_token).await;
        ws.message_added("s", &room, None).await;
        let payload = ws.next("s").await;
        assert_eq!(payload["errors"][0]["extensions"]["code"], "FORBIDDEN", "{payload}");
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "s" }));
        let unknown = uuid::Uuid::now_v7().to_string();
        ws.message_added("u", &unknown, None).await;
        assert_eq!(ws.next("u").await["errors"][0]["extensions"]["code"], "NOT_FOUND");
    }

    async fn the_server_pings_idle_sockets(db) {
        let app = spawn_app_with(&db, |c| c.ws.keepalive = Duration::from_millis(200)).await;
        let ivy = app.register("ivy").await;
        let mut ws = app.ws_ready(&ivy.access_token).await;
        assert_eq!(ws.recv_any().await, json!({ "type": "ping" }));
        ws.send(json!({ "type": "pong" })).await;
        assert_eq!(ws.recv_any().await, json!({ "type": "ping" }));
    }

    async fn pings_are_answered(db) {
        let app = spawn_app(&db).await;
        let jo = app.register("joy").await;
        let mut ws = app.ws_ready(&jo.access_token).await;
        ws.send(json!({ "type": "ping", "payload": { "note": "hi" } })).await;
        assert_eq!(ws.recv().await, json!({ "type": "pong" }));
    }

    async fn sockets_close_when_their_token_expires(db) {
        let app = spawn_app_with(&db, |c| c.auth.access_token_ttl = Duration::from_secs(2)).await;
        let kai = app.register("kai").await;
        let mut ws = app.ws_ready(&kai.access_token).await;
        assert_eq!(ws.closed().await, closed(4403, "token expired"));
    }

    async fn a_ping_with_a_fresh_token_keeps_the_socket(db) {
        let app = spawn_app_with(&db, |c| c.auth.access_token_ttl = Duration::from_secs(3)).await;
        let lee = app.register("lee").await;
        let mut ws = app.ws_ready(&lee.access_token).await;
        let issued = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let fresh = app.refresh(&lee).await;
        ws.send(json!({ "type": "ping", "payload": { "Authorization": format!("Bearer {}", fresh.access_token) } }))
            .await;
        assert_eq!(ws.recv().await, json!({ "type": "pong" }));
        // Past the first token's expiry, the socket still serves.
        tokio::time::sleep(Duration::from_secs(3).saturating_sub(issued.elapsed()) + Duration::from_millis(500)).await;
        ws.subscribe("q", "{ me { username } }", json!({})).await;
        assert_eq!(ws.next("q").await["data"]["me"]["username"], "lee");
        assert_eq!(ws.recv().await["type"], "complete");
        // Until the fresh one runs out.
        assert_eq!(ws.closed().await, closed(4403, "token expired"));
    }

    async fn a_ping_with_a_bad_token_closes_the_socket(db) {
        let app = spawn_app(&db).await;
        let max = app.register("max").await;
        let ned = app.register("ned").await;
        let mut ws = app.ws_ready(&max.access_token).await;
        ws.send(json!({ "type": "ping", "payload": { "token": ned.access_token } })).await;
        assert_eq!(ws.closed().await, closed(4403, "token is for another user"));
        let mut ws = app.ws_ready(&max.access_token).await;
        ws.send(json!({ "type": "ping", "payload": { "token": "garbage" } })).await;
        assert_eq!(ws.closed().await, closed(4403, "invalid token"));
    }

    async fn logout_closes_the_sessions_sockets(db) {
        let app = spawn_app(&db).await;
        let ola = app.register("ola").await;
        let other = app.login(&ola).await;
        let mut ws = app.ws_ready(&ola.access_token).await;
        let mut kept = app.ws_ready(&other.access_token).await;
        app.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": ola.refresh_token }))
            .await
            .ok();
        assert_eq!(ws.closed().await, closed(4403, "session revoked"));
        // Another session of the same user keeps its socket.
        kept.sync().await;
    }

    async fn logout_all_closes_every_socket_of_the_user(db) {
        let app = spawn_app(&db).await;
        let pia = app.register("pia").await;
        let pia2 = app.login(&pia).await;
        let mut sockets = vec![
            app.ws_ready(&pia.access_token).await,
            app.ws_ready(&pia2.access_token).await,
            app.ws_ready(&pia2.access_token).await,
        ];
        app.gql(Some(&pia.access_token), "mutation { logoutAll }", json!({})).await.ok();
        for ws in &mut sockets {
            assert_eq!(ws.closed().await, closed(4403, "session revoked"));
        }
    }

    async fn refresh_token_reuse_closes_the_sessions_sockets(db) {
        let app = spawn_app_with(&db, |c| c.auth.refresh_reuse_interval = Duration::ZERO).await;
        let quin = app.register("quin").await;
        let rotated = app.refresh(&quin).await;
        let mut ws = app.ws_ready(&rotated.access_token).await;
        app.refresh_raw(&quin.refresh_token).await.expect_code("UNAUTHENTICATED");
        assert_eq!(ws.closed().await, closed(4403, "session revoked"));
    }

    async fn legacy_graphql_ws_protocol(db) {
        let app = spawn_app(&db).await;
        let rex = app.register("rex").await;
        let room = app.create_room(&rex, "legacy", false).await;
        let start = app.send_message(&rex, &room, "start").await;
        let mut ws = app.ws_with(Some(LEGACY_WS)).await;
        ws.send(json!({ "type": "connection_init", "payload": { "authToken": rex.access_token } })).await;
        assert_eq!(ws.recv_any().await, json!({ "type": "connection_ack" }));
        assert_eq!(ws.recv_any().await, json!({ "type": "ka" }));
        ws.send(json!({
            "type": "start",
            "id": "1",
            "payload": {
                "query": "subscription($r: ID!, $a: String) { messageAdded(roomId: $r, after: $a) { body } }",
                "variables": { "r": room, "a": start["cursor"] },
            },
        }))
        .await;
        // `start` is handled before anything sent after it.
        ws.send(json!({ "type": "start", "id": "q", "payload": { "query": "{ me { username } }" } })).await;
        let data = ws.recv().await;
        assert_eq!(data, json!({ "type": "data", "id": "q", "payload": { "data": { "me": { "username": "rex" } } } }));
        assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "q" }));
        app.send_message(&rex, &room, "old school").await;
        let data = ws.recv().await;
        assert_eq!(data["type"], "data");
        assert_eq!(data["payload"]["data"]["messageAdded"]["body"], "old school");
        ws.send(json!({ "type": "stop", "id": "1" })).await;
        ws.send(json!({ "type": "connection_terminate" })).await;
        assert_eq!(ws.closed().await.code, 1000);

        // A refused init is explained before the close.
        let mut ws = app.ws_with(Some(LEGACY_WS)).await;
        ws.send(json!({ "type": "connection_init", "payload": {} })).await;
        let error = ws.recv_any().await;
        assert_eq!(error["type"], "connection_error", "{error}");
        assert_eq!(ws.closed().await, closed(4403, "missing token"));
    }
}
