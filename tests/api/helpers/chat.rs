//! Rooms and messages, as tests set them up.
use super::*;

impl TestApp {
    /// Creates a room as `owner`; returns its id.
    pub async fn create_room(&self, owner: &Account, name: &str, private: bool) -> String {
        let answer = self
            .gql(
                Some(&owner.access_token),
                "mutation($i: CreateRoomInput!) { createRoom(input: $i) { id } }",
                json!({ "i": { "name": name, "isPrivate": private } }),
            )
            .await;
        answer.ok()["createRoom"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn join_room(&self, account: &Account, room_id: &str) -> Gql {
        self.gql(
            Some(&account.access_token),
            "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
            json!({ "r": room_id }),
        )
        .await
    }

    pub async fn send_message_raw(
        &self,
        account: &Account,
        room_id: &str,
        body: &str,
        client_msg_id: Option<&str>,
    ) -> Gql {
        self.gql(
            Some(&account.access_token),
            &format!("mutation($i: SendMessageInput!) {{ sendMessage(input: $i) {{ {MESSAGE_FIELDS} }} }}"),
            json!({ "i": { "roomId": room_id, "body": body, "clientMsgId": client_msg_id } }),
        )
        .await
    }

    /// Every room `account` is a member of (`id` and `createdAt`), page by page.
    pub async fn all_rooms(&self, account: &Account) -> Vec<Value> {
        let mut rooms = Vec::new();
        let mut after = Value::Null;
        loop {
            let page = self
                .gql(
                    Some(&account.access_token),
                    "query($a: String) { rooms(first: 100, after: $a) { edges { node { id createdAt } } pageInfo { hasNextPage endCursor } } }",
                    json!({ "a": after }),
                )
                .await;
            let page = &page.ok()["rooms"];
            rooms.extend(
                page["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["node"].clone()),
            );
            if page["pageInfo"]["hasNextPage"] != true {
                return rooms;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
    }

    /// POSTs a batch of requests as `account`; returns the answers, one per request.
    pub async fn batch(&self, account: &Account, requests: &[Value]) -> Vec<Value> {
        let response = self
            .client
            .post(self.graphql_url())
            .bearer_auth(&account.access_token)
            .json(requests)
            .send()
            .await
            .expect("request");
        let answer = into_gql(response).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body.as_array().expect("a batch answer").clone()
    }

    /// Sends a message; returns it as the server stored it.
    /// `addMembers`: `owner` adds `members` to `room_id`.
    pub async fn add_members(&self, owner: &Account, room_id: &str, members: &[&Account]) -> Gql {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        self.gql(
            Some(&owner.access_token),
            "mutation($r: ID!, $u: [ID!]!) { addMembers(roomId: $r, userIds: $u) { id } }",
            json!({ "r": room_id, "u": ids }),
        )
        .await
    }

    /// A socket of `account`'s subscribed (as `s`) to `room_id`'s messages after `after`, a
    /// message (say, the one `send_message` returned).
    pub async fn watching(&self, account: &Account, room_id: &str, after: &Value) -> Ws {
        let mut ws = self.ws_ready(&account.access_token).await;
        ws.message_added("s", room_id, after["cursor"].as_str())
            .await;
        ws.sync().await;
        ws
    }

    pub async fn send_message(&self, account: &Account, room_id: &str, body: &str) -> Value {
        let answer = self.send_message_raw(account, room_id, body, None).await;
        answer.ok()["sendMessage"].clone()
    }
}
