//! The admin-only `users` listing, and `chat-server promote`.
use std::process::Command;

use serde_json::json;

use crate::{db_tests, helpers::*};

const USERS: &str = "query($first: Int, $after: String) {
    users(first: $first, after: $after) {
        edges { cursor node { username email } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
}";

/// Runs the real binary against the test database.
fn promote(app: &TestApp, username: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["promote", username])
        .env("DATABASE_URL", &app.db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run chat-server promote")
}

db_tests! {
    async fn users_listing_is_for_admins_only(db) {
        let app = spawn_app(&db).await;
        let vic = app.register("vic").await;
        app.gql(None, USERS, json!({})).await.expect_code("UNAUTHENTICATED");
        let denied = app.gql(Some(&vic.access_token), USERS, json!({})).await;
        denied.expect_code("FORBIDDEN");
        assert!(denied.body["data"].is_null());
    }

    async fn promoted_admins_page_through_users(db) {
        let app = spawn_app(&db).await;
        let admin = app.register("wendy").await;
        for name in ["xavier", "yolanda", "zed"] {
            app.register(name).await;
        }
        let out = promote(&app, "WENDY");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The role travels in the token: it applies from the next one.
        app.gql(Some(&admin.access_token), USERS, json!({})).await.expect_code("FORBIDDEN");
        let admin = app.refresh(&admin).await;
        assert_eq!(claims_of(&admin.access_token)["role"], "ADMIN");
        assert_eq!(app.me(&admin.access_token).await.ok()["me"]["role"], "ADMIN");

        let page = app.gql(Some(&admin.access_token), USERS, json!({ "first": 3 })).await;
        let users = &page.ok()["users"];
        let names: Vec<&str> = users["edges"].as_array().unwrap().iter()
            .map(|e| e["node"]["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["wendy", "xavier", "yolanda"], "sign-up order");
        // Admins see everyone's email.
        assert_eq!(users["edges"][1]["node"]["email"], "xavier@example.com");
        assert_eq!(users["pageInfo"]["hasNextPage"], true);
        assert_eq!(users["pageInfo"]["hasPreviousPage"], false);
        assert_eq!(users["pageInfo"]["startCursor"], users["edges"][0]["cursor"]);
        assert_eq!(users["pageInfo"]["endCursor"], users["edges"][2]["cursor"]);

        let next = app
            .gql(Some(&admin.access_token), USERS, json!({ "first": 3, "after": users["pageInfo"]["endCursor"] }))
            .await;
        let rest = &next.ok()["users"];
        assert_eq!(rest["edges"].as_array().unwrap().len(), 1);
        assert_eq!(rest["edges"][0]["node"]["username"], "zed");
        assert_eq!(rest["pageInfo"]["hasNextPage"], false);
        assert_eq!(rest["pageInfo"]["hasPreviousPage"], true);

        // Default page size, and the limits.
        let all = app.gql(Some(&admin.access_token), USERS, json!({})).await;
        assert_eq!(all.ok()["users"]["edges"].as_array().unwrap().len(), 4);
        let too_many = app.gql(Some(&admin.access_token), USERS, json!({ "first": 101 })).await;
        too_many.expect_code("BAD_USER_INPUT");
        assert_eq!(too_many.field(), Some("first"));
        let bad_cursor = app.gql(Some(&admin.access_token), USERS, json!({ "after": "bm9wZQ" })).await;
        bad_cursor.expect_code("BAD_USER_INPUT");
        assert_eq!(bad_cursor.field(), Some("after"));
    }

    async fn promoting_an_unknown_user_fails(db) {
        let app = spawn_app(&db).await;
        let out = promote(&app, "ghost");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("not found")
            || String::from_utf8_lossy(&out.stderr).contains("not found"));
    }
}
