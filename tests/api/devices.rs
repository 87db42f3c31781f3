//! The sessions a user sees and ends (`sessions`, `revokeSession`, `logoutAll(exceptCurrent)`)
//! and changing the password, which ends every other session.
use serde_json::{Value, json};

use crate::{db_tests, helpers::*, postgres_tests};

const SESSIONS: &str = "{ sessions { id createdAt lastUsedAt userAgent clientAddress current } }";
const REVOKE: &str = "mutation($id: ID!) { revokeSession(id: $id) }";
const CHANGE: &str =
    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
const NEW_PASSWORD: &str = "a brand new passphrase";

async fn sessions(app: &TestApp, account: &Account) -> Vec<Value> {
    let answer = app
        .gql(Some(&account.access_token), SESSIONS, json!({}))
        .await;
    answer.ok()["sessions"].as_array().unwrap().clone()
}

/// Logs in again as `account`, saying it is `user_agent`: a second session.
async fn login_from(app: &TestApp, account: &Account, user_agent: &str) -> Account {
    let response = app
        .client
        .post(app.graphql_url())
        .header("user-agent", user_agent)
        .json(&json!({
            "query": "mutation($l: String!, $p: String!) { login(input: { login: $l, password: $p }) { accessToken refreshToken expiresIn user { id username email } } }",
            "variables": { "l": account.username, "p": PASSWORD },
        }))
        .send()
        .await
        .unwrap();
    let answer = into_gql(response).await;
    Account::from_payload(&answer.ok()["login"], &account.email)
}

db_tests! {
    async fn sessions_say_where_and_when_each_began_and_end_one_by_one(db) {
        let app = spawn_app(&db).await;
        let laptop = app.register("ana").await;
        let phone = login_from(&app, &laptop, "Phone/1.0\t(tab)").await;
        let listed = sessions(&app, &phone).await;
        assert_eq!(listed.len(), 2);
        assert_eq!((&listed[0]["userAgent"], &listed[0]["clientAddress"], &listed[0]["current"]), (&json!("Phone/1.0 (tab)"), &json!("127.0.0.1"), &json!(true)));
        assert_eq!((&listed[1]["userAgent"], &listed[1]["current"]), (&json!(null), &json!(false)));
        assert_eq!(listed[1]["lastUsedAt"], listed[1]["createdAt"], "never refreshed");

        // A refresh is a use: the laptop's session comes first again.
        let laptop = app.refresh(&laptop).await;
        let listed = sessions(&app, &phone).await;
        assert_eq!(listed[0]["current"], false);
        assert!(listed[0]["lastUsedAt"].as_str() > listed[0]["createdAt"].as_str());
        let laptop_session = listed[0]["id"].clone();

        // Ending it closes its sockets and refuses its tokens.
        let mut socket = app.ws_ready(&laptop.access_token).await;
        let revoked = app.gql(Some(&phone.access_token), REVOKE, json!({ "id": laptop_session })).await;
        assert_eq!(revoked.ok()["revokeSession"], true);
        let closed = socket.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        app.refresh_raw(&laptop.refresh_token).await.expect_code("UNAUTHENTICATED");
        assert_eq!(sessions(&app, &phone).await.len(), 1);
        let again = app.gql(Some(&phone.access_token), REVOKE, json!({ "id": laptop_session })).await;
        assert_eq!(again.ok()["revokeSession"], false, "ended already");

        // Nobody ends another's session, or learns that it exists.
        let ben = app.register("ben").await;
        let phone_session = sessions(&app, &phone).await[0]["id"].clone();
        app.gql(Some(&ben.access_token), REVOKE, json!({ "id": phone_session })).await.expect_code("NOT_FOUND");
        app.gql(Some(&ben.access_token), REVOKE, json!({ "id": "not-an-id" })).await.expect_code("BAD_USER_INPUT");
        assert_eq!(app.me(&phone.access_token).await.ok()["me"]["username"], "ana");
        app.gql(None, SESSIONS, json!({})).await.expect_code("UNAUTHENTICATED");
    }

    async fn logout_all_can_spare_the_current_session(db) {
        let app = spawn_app(&db).await;
        let first = app.register("cyd").await;
        let (second, third) = (app.login(&first).await, app.login(&first).await);
        let spared = app.gql(Some(&third.access_token), "mutation { logoutAll(exceptCurrent: true) }", json!({})).await;
        assert_eq!(spared.ok()["logoutAll"], 2);
        for ended in [&first, &second] {
            app.refresh_raw(&ended.refresh_token).await.expect_code("UNAUTHENTICATED");
        }
        assert_eq!(sessions(&app, &third).await.len(), 1);
        let all = app.gql(Some(&third.access_token), "mutation { logoutAll }", json!({})).await;
        assert_eq!(all.ok()["logoutAll"], 1);
        app.me(&third.access_token).await.expect_code("UNAUTHENTICATED");
    }

    async fn changing_the_password_ends_every_other_session(db) {
        let app = spawn_app(&db).await;
        let here = app.register("dot").await;
        let elsewhere = app.login(&here).await;
        let mut socket = app.ws_ready(&elsewhere.access_token).await;
        let change = |current: &str, new: &str| app.gql(Some(&here.access_token), CHANGE, json!({ "c": current, "n": new }));

        let wrong = change("not the password", NEW_PASSWORD).await;
        wrong.expect_code("BAD_USER_INPUT");
        assert_eq!(wrong.field(), Some("currentPassword"));
        let weak = change(PASSWORD, "short").await;
        weak.expect_code("BAD_USER_INPUT");
        assert_eq!(weak.field(), Some("newPassword"));
        let huge = "p".repeat(128 * 1000);
        assert_eq!(change(PASSWORD, &huge).await.field(), Some("newPassword"), "1,000 times the limit");
        app.login_raw("dot", PASSWORD).await.ok();

        assert_eq!(change(PASSWORD, NEW_PASSWORD).await.ok()["changePassword"], 2, "elsewhere, and the login just made");
        let closed = socket.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        app.refresh_raw(&elsewhere.refresh_token).await.expect_code("UNAUTHENTICATED");
        // This session goes on, refreshes and all.
        assert_eq!(app.me(&here.access_token).await.ok()["me"]["username"], "dot");
        app.refresh(&here).await;
        app.login_raw("dot", PASSWORD).await.expect_code("UNAUTHENTICATED");
        app.login_raw("dot", NEW_PASSWORD).await.ok();
    }
}

postgres_tests! {
    async fn revoking_a_session_on_one_instance_closes_its_socket_on_the_other(db) {
        let a = spawn_app(&db).await;
        let b = spawn_on(a.db.clone(), |_| {}).await;
        let here = a.register("eli").await;
        let there = a.login(&here).await;
        let mut socket = a.ws_ready(&there.access_token).await;
        let id = sessions(&b, &here).await.into_iter().find(|s| s["current"] == false).unwrap()["id"].clone();
        let revoked = b.gql(Some(&here.access_token), REVOKE, json!({ "id": id })).await;
        assert_eq!(revoked.ok()["revokeSession"], true);
        let closed = socket.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        a.me(&there.access_token).await.expect_code("UNAUTHENTICATED");
    }
}
