//! An instance killed with SIGKILL in the middle of a stream: its subscribers reconnect to
//! another instance and resume with `after`, its senders retry there with the same
//! `clientMsgId`, and in the end every subscriber has every message exactly once, and every
//! message is stored once.
use std::time::Duration;

use serde_json::{Value, json};

use crate::{helpers::*, postgres_tests, process::ServerProcess};

const PER_SENDER: usize = 60;
const SEND: &str = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { seq } }";

/// Sends `PER_SENDER` messages, to `first` until a send fails there, then to `then`, each
/// retried with its `clientMsgId` until it is answered.
async fn send_all(first: &TestApp, then: &TestApp, account: &Account, room: &str) {
    let mut target = first;
    for i in 0..PER_SENDER {
        let id = format!("{}-{i}", account.username);
        let input = json!({ "i": { "roomId": room, "body": id, "clientMsgId": id } });
        loop {
            let sent = target
                .client
                .post(target.graphql_url())
                .bearer_auth(&account.access_token)
                .json(&json!({ "query": SEND, "variables": input }))
                .send()
                .await;
            let answer = match sent {
                Ok(response) => response.json::<Value>().await.ok(),
                Err(_) => None,
            };
            if answer.is_some_and(|a| a["data"]["sendMessage"]["seq"].is_i64()) {
                break;
            }
            // The instance is gone (or going): the same message, elsewhere.
            target = then;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads `total` messages after `cursor`, on `ws` until it ends, then on `then`, resuming
/// after the last message it got.
async fn read_all(
    mut ws: Ws,
    then: &TestApp,
    account: &Account,
    room: &str,
    mut cursor: String,
    total: usize,
) -> (Vec<i64>, Ws) {
    let mut seqs = Vec::with_capacity(total);
    while seqs.len() < total {
        match ws.recv_or_closed().await {
            Ok(message) => {
                assert_eq!(message["type"], "next", "{message}");
                let added = &message["payload"]["data"]["messageAdded"];
                seqs.push(added["seq"].as_i64().unwrap());
                cursor = added["cursor"].as_str().unwrap().to_owned();
            }
            Err(_) => {
                ws = then.ws_ready(&account.access_token).await;
                ws.message_added("s", room, Some(&cursor)).await;
            }
        }
    }
    (seqs, ws)
}

postgres_tests! {
    async fn clients_of_a_killed_instance_resume_on_another_and_lose_nothing(db) {
        let survivor = spawn_app(&db).await;
        let unlimited = [
            "SEND_RATE_PER_USER", "SEND_RATE_PER_IP", "WRITE_RATE_PER_USER", "WRITE_RATE_PER_IP",
            "WS_MAX_SOCKETS_PER_USER",
        ]
        .map(|name| (name, "0"));
        let mut env = vec![("DATABASE_URL", survivor.db.url.as_str())];
        env.extend(unlimited);
        let doomed = ServerProcess::start(&env).await;
        let kai = survivor.register("kai").await;
        let lou = survivor.register("lou").await;
        let room = survivor.create_room(&kai, "failover", false).await;
        survivor.join_room(&lou, &room).await.ok();
        let start = survivor.send_message(&kai, &room, "start").await;
        let start = start["cursor"].as_str().unwrap().to_owned();
        let mut readers = Vec::new();
        for account in [&kai, &lou] {
            let mut ws = doomed.app.ws_ready(&account.access_token).await;
            ws.message_added("s", &room, Some(&start)).await;
            ws.sync().await;
            readers.push(ws);
        }
        let (lou_ws, kai_ws) = (readers.pop().unwrap(), readers.pop().unwrap());

        let total = 2 * PER_SENDER;
        let kill = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            doomed.kill();
        };
        let (_, _, _, (kai_seqs, mut kai_ws), (lou_seqs, _)) = tokio::join!(
            kill,
            send_all(&doomed.app, &survivor, &kai, &room),
            send_all(&doomed.app, &survivor, &lou, &room),
            read_all(kai_ws, &survivor, &kai, &room, start.clone(), total),
            read_all(lou_ws, &survivor, &lou, &room, start.clone(), total),
        );
        assert!(!doomed.app.client.get(format!("{}/healthz", doomed.app.url)).send().await.is_ok_and(|r| r.status() == 200));
        let wanted: Vec<i64> = (2..2 + total as i64).collect();
        assert_eq!(kai_seqs, wanted, "every message once, in order");
        assert_eq!(lou_seqs, wanted, "every message once, in order");
        assert!(kai_ws.next_within("s", Duration::from_millis(500)).await.is_none(), "and nothing more");
        // Each retried send was stored once.
        let newest = survivor
            .gql(Some(&kai.access_token), "query($r: ID!) { messages(roomId: $r, last: 1) { edges { node { seq } } } }", json!({ "r": room }))
            .await;
        assert_eq!(newest.ok()["messages"]["edges"][0]["node"]["seq"], json!(1 + total));
    }
}
