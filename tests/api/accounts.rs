//! register, login, me: validation, uniqueness, credentials and rate limits.
use serde_json::json;

use crate::{db_tests, helpers::*};

db_tests! {
    async fn register_signs_the_user_in(db) {
        let app = spawn_app(&db).await;
        let answer = app.register_raw("Alice@Example.COM", "Alice_1", PASSWORD).await;
        let payload = &answer.ok()["register"];
        assert_eq!(payload["tokenType"], "Bearer");
        assert_eq!(payload["expiresIn"], 900);
        assert_eq!(payload["user"]["username"], "Alice_1");
        // Stored lower-cased, and shown to its owner.
        assert_eq!(payload["user"]["email"], "alice@example.com");
        assert_eq!(payload["user"]["role"], "USER");
        let claims = claims_of(payload["accessToken"].as_str().unwrap());
        assert_eq!(claims["sub"], payload["user"]["id"]);
        assert_eq!(claims["role"], "USER");
        assert_eq!(claims["iss"], "chat-server");
        assert!(claims["sid"].is_string());
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);

        let me = app.me(payload["accessToken"].as_str().unwrap()).await;
        let me = &me.ok()["me"];
        assert_eq!(me["id"], payload["user"]["id"]);
        assert_eq!(me["email"], "alice@example.com");
        // The timestamp reads back exactly as register returned it.
        assert_eq!(me["createdAt"], payload["user"]["createdAt"]);
    }

    async fn register_validates_each_field(db) {
        let app = spawn_app(&db).await;
        let cases = [
            ("not-an-email", "alice", PASSWORD, "email"),
            ("alice@example", "alice", PASSWORD, "email"),
            ("alice@example.com", "al", PASSWORD, "username"),
            ("alice@example.com", &"a".repeat(33), PASSWORD, "username"),
            ("alice@example.com", "ali ce", PASSWORD, "username"),
            ("alice@example.com", "alice!", PASSWORD, "username"),
            ("alice@example.com", "alice", "short", "password"),
            ("alice@example.com", "alice", &"p".repeat(129), "password"),
        ];
        for (email, username, password, field) in cases {
            let answer = app.register_raw(email, username, password).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some(field), "{email} {username}: {}", answer.body);
            assert_eq!(answer.status, 200, "a field error, not a request error");
        }
        // Limits are inclusive, and counted in characters.
        app.try_register("a@example.com", &"a".repeat(32), &"é".repeat(128)).await;
        app.try_register("b@example.com", "bob", "12345678").await;
    }

    async fn email_and_username_are_unique_ignoring_case(db) {
        let app = spawn_app(&db).await;
        app.try_register("carol@example.com", "Carol", PASSWORD).await;
        let answer = app.register_raw("CAROL@example.com", "carol2", PASSWORD).await;
        answer.expect_code("CONFLICT");
        assert_eq!(answer.field(), Some("email"));
        let answer = app.register_raw("other@example.com", "cAROL", PASSWORD).await;
        answer.expect_code("CONFLICT");
        assert_eq!(answer.field(), Some("username"));
    }

    async fn racing_registrations_get_one_conflict(db) {
        let app = spawn_app(&db).await;
        let attempts = (0..6).map(|i| {
            let email = format!("racer{i}@example.com");
            let app = &app;
            async move { app.register_raw(&email, "racer", PASSWORD).await }
        });
        let answers = futures_util::future::join_all(attempts).await;
        let won = answers.iter().filter(|a| a.body.get("errors").is_none()).count();
        assert_eq!(won, 1, "{answers:#?}");
        for answer in answers.iter().filter(|a| a.body.get("errors").is_some()) {
            answer.expect_code("CONFLICT");
        }
    }

    async fn login_by_email_or_username(db) {
        let app = spawn_app(&db).await;
        let dave = app.try_register("dave@example.com", "Dave", PASSWORD).await;
        for login in ["dave@example.com", "DAVE@EXAMPLE.COM", "Dave", "dave", "  dave  "] {
            let answer = app.login_raw(login, PASSWORD).await;
            let payload = &answer.ok()["login"];
            assert_eq!(payload["user"]["id"].as_str(), Some(dave.id.as_str()), "{login}");
            assert_eq!(payload["user"]["email"], "dave@example.com");
        }
        // Each login is a session of its own.
        let a = app.login(&dave).await;
        let b = app.login(&dave).await;
        assert_ne!(claims_of(&a.access_token)["sid"], claims_of(&b.access_token)["sid"]);
    }

    async fn unknown_user_and_wrong_password_look_the_same(db) {
        let app = spawn_app(&db).await;
        app.register("erin").await;
        let wrong = app.login_raw("erin", "not the password").await;
        let unknown = app.login_raw("nobody", "not the password").await;
        let unknown_email = app.login_raw("nobody@example.com", "not the password").await;
        for answer in [&wrong, &unknown, &unknown_email] {
            answer.expect_code("UNAUTHENTICATED");
            assert_eq!(answer.message(), Some("invalid login or password"));
        }
        assert_eq!(wrong.body, unknown.body);
        for bad_login in ["", "er\0in"] {
            let answer = app.login_raw(bad_login, PASSWORD).await;
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("login"), "{bad_login:?}");
        }
    }

    async fn login_is_rate_limited_per_account_and_address(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.login_per_account_ip = 3;
            c.limits.login_per_account = 100;
            c.limits.login_per_ip = 100;
        })
        .await;
        let frank = app.register("frank").await;
        for _ in 0..3 {
            app.login_raw("frank", "wrong password").await.expect_code("UNAUTHENTICATED");
        }
        // Case and address form do not make a new account key.
        let limited = app.login_raw("FRANK", PASSWORD).await;
        limited.expect_code("RATE_LIMITED");
        let retry_after = limited.body["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap();
        assert!((1..=60).contains(&retry_after), "retryAfter {retry_after}");
        // Another account from the same address is not affected.
        let grace = app.register("grace").await;
        app.login(&grace).await;
        drop(frank);
    }

    async fn a_stranger_cannot_lock_the_owner_out(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.login_per_account_ip = 3;
            c.limits.login_per_account = 8;
            c.http.trust_forwarded_for = true;
        })
        .await;
        let hal = app.register("hal").await;
        let login = |from: &'static str, password: &'static str| {
            let app = &app;
            async move {
                let query = format!("mutation($i: LoginInput!) {{ login(input: $i) {{ {AUTH_FIELDS} }} }}");
                let request = app
                    .client
                    .post(app.graphql_url())
                    .header("x-forwarded-for", from)
                    .json(&json!({ "query": query, "variables": { "i": { "login": "hal", "password": password } } }));
                into_gql(request.send().await.unwrap()).await
            }
        };
        // A stranger guessing from one address uses up that address's tries only...
        for _ in 0..3 {
            login("203.0.113.66", "guess").await.expect_code("UNAUTHENTICATED");
        }
        login("203.0.113.66", "guess").await.expect_code("RATE_LIMITED");
        login("203.0.113.66", PASSWORD).await.expect_code("RATE_LIMITED");
        // ...and the owner, elsewhere, signs in as ever.
        login("198.51.100.1", PASSWORD).await.ok();
        // Guessing spread over many addresses meets the looser limit on the account, which
        // holds for everyone (the owner included) while it lasts.
        for from in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"] {
            login(from, "guess").await.expect_code("UNAUTHENTICATED");
        }
        login("192.0.2.5", "guess").await.expect_code("RATE_LIMITED");
        login("198.51.100.1", PASSWORD).await.expect_code("RATE_LIMITED");
        drop(hal);
    }

    async fn login_is_rate_limited_per_address(db) {
        let app = spawn_app_with(&db, |c| {
            c.limits.login_per_account = 100;
            c.limits.login_per_ip = 3;
        })
        .await;
        for name in ["heidi", "ivan", "judy"] {
            app.login_raw(name, PASSWORD).await.expect_code("UNAUTHENTICATED");
        }
        app.login_raw("mallory", PASSWORD).await.expect_code("RATE_LIMITED");
    }

    async fn me_requires_a_valid_token(db) {
        let app = spawn_app(&db).await;
        let kim = app.register("kim").await;
        let missing = app.gql(None, "{ me { id } }", json!({})).await;
        missing.expect_code("UNAUTHENTICATED");
        assert_eq!(missing.message(), Some("missing access token"));
        assert_eq!(missing.status, 200);
        assert!(missing.body["data"].is_null(), "data is present and null: {}", missing.body);

        let garbage = app.me("not-a-jwt").await;
        garbage.expect_code("UNAUTHENTICATED");
        assert_eq!(garbage.message(), Some("invalid access token"));

        // A token the server did not sign, with the right shape.
        let mut claims = claims_of(&kim.access_token);
        let forged = forge_token(&claims, b"another-secret-another-secret-!!", jsonwebtoken::Algorithm::HS256);
        assert_eq!(app.me(&forged).await.message(), Some("invalid access token"));

        // Signed by us, but expired beyond the leeway.
        let now = chrono::Utc::now().timestamp();
        claims["iat"] = json!(now - 1000);
        claims["nbf"] = json!(now - 1000);
        claims["exp"] = json!(now - 60);
        let expired = forge_token(&claims, SECRET.as_bytes(), jsonwebtoken::Algorithm::HS256);
        assert_eq!(app.me(&expired).await.message(), Some("access token expired"));

        // Another scheme is no token at all.
        let basic = app
            .client
            .post(app.graphql_url())
            .header("authorization", "Basic a2ltOnB3")
            .json(&json!({ "query": "{ me { id } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(into_gql(basic).await.message(), Some("missing access token"));
    }

    async fn public_operations_ignore_a_bad_token(db) {
        let app = spawn_app(&db).await;
        let liz = app.register("liz").await;
        // A stale token in a client's default headers must not block signing in again.
        let answer = app
            .gql(
                Some("stale.token.here"),
                &format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {AUTH_FIELDS} }} }}"),
                json!({ "input": { "login": liz.username, "password": PASSWORD } }),
            )
            .await;
        answer.ok();
    }
}
