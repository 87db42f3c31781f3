//! Refresh-token rotation, reuse detection, logout, logoutAll, and revocation of access tokens.
use std::time::Duration;

use chat_server::entity::{email_token, refresh_token, session};
use futures_util::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::{db_tests, helpers::*};

db_tests! {
    async fn refresh_rotates_the_refresh_token(db) {
        let app = spawn_app(&db).await;
        let first = app.register("mia").await;
        let second = app.refresh(&first).await;
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_ne!(second.access_token, first.access_token);
        // Same session, same user.
        assert_eq!(claims_of(&second.access_token)["sid"], claims_of(&first.access_token)["sid"]);
        assert_eq!(second.id, first.id);
        let third = app.refresh(&second).await;
        app.me(&third.access_token).await.ok();
        // Access tokens of the session stay valid while it lives.
        app.me(&first.access_token).await.ok();
    }

    async fn reusing_a_refresh_token_revokes_the_session(db) {
        let app = spawn_app_with(&db, |c| c.auth.refresh_reuse_interval = Duration::ZERO).await;
        let stolen = app.register("nick").await;
        let rotated = app.refresh(&stolen).await;
        let other_session = app.login(&stolen).await;

        // The copy is presented again: the whole session ends.
        let reuse = app.refresh_raw(&stolen.refresh_token).await;
        reuse.expect_code("UNAUTHENTICATED");
        assert_eq!(reuse.message(), Some("refresh token already used; session revoked"));

        // Both the newest refresh token and every access token of that session are dead...
        app.refresh_raw(&rotated.refresh_token).await.expect_code("UNAUTHENTICATED");
        for token in [&stolen.access_token, &rotated.access_token] {
            let me = app.me(token).await;
            me.expect_code("UNAUTHENTICATED");
            assert_eq!(me.message(), Some("session revoked"));
        }
        // ...but not the user's other sessions.
        app.me(&other_session.access_token).await.ok();
        app.refresh(&other_session).await;
    }

    async fn without_a_reuse_interval_concurrent_refreshes_cannot_fork_the_session(db) {
        let app = spawn_app_with(&db, |c| c.auth.refresh_reuse_interval = Duration::ZERO).await;
        let olga = app.register("olga").await;
        let (a, b) = tokio::join!(
            app.refresh_raw(&olga.refresh_token),
            app.refresh_raw(&olga.refresh_token)
        );
        let winners: Vec<_> = [&a, &b].into_iter().filter(|r| r.body.get("errors").is_none()).collect();
        assert!(winners.len() <= 1, "two refreshes with one token both succeeded: {a:?} {b:?}");
        // The loser counts as reuse, so whatever the winner got is revoked as well.
        for winner in winners {
            let token = winner.data()["refresh"]["accessToken"].as_str().unwrap();
            app.me(token).await.expect_code("UNAUTHENTICATED");
        }
        app.me(&olga.access_token).await.expect_code("UNAUTHENTICATED");
    }

    async fn concurrent_refreshes_with_one_token_get_the_same_pair(db) {
        let app = spawn_app(&db).await;
        let olga = app.register("olga").await;
        // Two tabs, or a retry whose first answer was lost: all within the reuse interval.
        let answers = join_all((0..4).map(|_| app.refresh_raw(&olga.refresh_token))).await;
        let pairs: Vec<_> = answers
            .iter()
            .map(|a| (a.ok()["refresh"]["accessToken"].clone(), a.ok()["refresh"]["refreshToken"].clone()))
            .collect();
        assert!(pairs.iter().all(|pair| *pair == pairs[0]), "{pairs:?}");
        assert_ne!(pairs[0].1, json!(olga.refresh_token));
        // The session lives on, and its chain goes on from the one successor.
        let (access, refresh) = (pairs[0].0.as_str().unwrap(), pairs[0].1.as_str().unwrap());
        app.me(access).await.ok();
        app.me(&olga.access_token).await.ok();
        let next = app.refresh_raw(refresh).await;
        assert!(next.ok()["refresh"]["refreshToken"].is_string());
    }

    async fn after_the_reuse_interval_a_used_refresh_token_revokes_the_session(db) {
        let app = spawn_app_with(&db, |c| c.auth.refresh_reuse_interval = Duration::from_secs(1)).await;
        let pia = app.register("pia").await;
        let first = app.refresh(&pia).await;
        let again = app.refresh(&pia).await;
        assert_eq!(
            (&again.access_token, &again.refresh_token),
            (&first.access_token, &first.refresh_token),
            "within the interval: the same pair"
        );
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let reuse = app.refresh_raw(&pia.refresh_token).await;
        assert_eq!(reuse.message(), Some("refresh token already used; session revoked"));
        assert_eq!(app.me(&first.access_token).await.message(), Some("session revoked"));
        app.refresh_raw(&first.refresh_token).await.expect_code("UNAUTHENTICATED");
    }

    async fn a_login_racing_account_deletion_leaves_no_live_session(db) {
        let app = spawn_app(&db).await;
        let delete = "mutation($p: String!) { deleteAccount(password: $p) }";
        for round in 0..6 {
            let account = app.register(&format!("racer{round}")).await;
            let (_, deleted) = tokio::join!(
                app.login_raw(&account.username, PASSWORD),
                app.gql(Some(&account.access_token), delete, json!({ "p": PASSWORD })),
            );
            assert_eq!(deleted.ok()["deleteAccount"], true);
            // Whichever went first, no session of the deleted account is left open.
            let conn = sea_orm::Database::connect(app.db.url.as_str()).await.unwrap();
            let user_id: uuid::Uuid = account.id.parse().unwrap();
            let live = session::Entity::find()
                .filter(session::Column::UserId.eq(user_id))
                .filter(session::Column::RevokedAt.is_null())
                .count(&conn)
                .await
                .unwrap();
            conn.close().await.ok();
            assert_eq!(live, 0, "round {round}");
        }
    }

    async fn finished_sessions_and_expired_refresh_tokens_are_purged(db) {
        let app = spawn_app_with(&db, |c| {
            c.auth.purge_interval = Duration::from_millis(500);
            // The verification links that registering mails expire with them.
            c.auth.verification_ttl = Duration::from_secs(2);
            c.auth.refresh_token_ttl = Duration::from_secs(3);
            // A revoked session is kept while its access tokens could live: 1 s + 5 s leeway.
            c.auth.access_token_ttl = Duration::from_secs(1);
        })
        .await;
        let mut live = app.register("live").await;
        let revoked = app.register("revoked").await;
        let expired = app.register("expired").await;
        app.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": revoked.refresh_token }))
            .await
            .ok();
        let conn = sea_orm::Database::connect(app.db.url.as_str()).await.unwrap();
        let session_of = |account: &Account| -> uuid::Uuid {
            claims_of(&account.access_token)["sid"].as_str().unwrap().parse().unwrap()
        };
        let (live_id, revoked_id, expired_id) = (session_of(&live), session_of(&revoked), session_of(&expired));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            // The live session refreshes within its tokens' lifetime, as a client does.
            live = app.refresh(&live).await;
            let sessions: Vec<uuid::Uuid> = session::Entity::find().all(&conn).await.unwrap().iter().map(|s| s.id).collect();
            let expired_tokens = refresh_token::Entity::find()
                .filter(refresh_token::Column::ExpiresAt.lte(chrono::Utc::now() - chrono::Duration::seconds(2)))
                .count(&conn)
                .await
                .unwrap();
            let mail_tokens = email_token::Entity::find().count(&conn).await.unwrap();
            if !sessions.contains(&revoked_id) && !sessions.contains(&expired_id) && expired_tokens == 0 && mail_tokens == 0 {
                assert!(sessions.contains(&live_id), "the live session stays: {sessions:?}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "not purged: {sessions:?}, {expired_tokens} expired tokens, {mail_tokens} mail tokens");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        conn.close().await.ok();
        app.me(&live.access_token).await.ok();
        app.refresh(&live).await;
    }

    async fn unknown_refresh_tokens_are_refused(db) {
        let app = spawn_app(&db).await;
        let answer = app.refresh_raw("no-such-token").await;
        answer.expect_code("UNAUTHENTICATED");
        assert_eq!(answer.message(), Some("invalid refresh token"));
        app.refresh_raw("").await.expect_code("UNAUTHENTICATED");
    }

    async fn expired_refresh_tokens_are_refused(db) {
        let app = spawn_app_with(&db, |c| c.auth.refresh_token_ttl = Duration::from_secs(1)).await;
        let pam = app.register("pam").await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let answer = app.refresh_raw(&pam.refresh_token).await;
        answer.expect_code("UNAUTHENTICATED");
        assert_eq!(answer.message(), Some("refresh token expired"));
    }

    async fn logout_ends_the_session_at_once(db) {
        let app = spawn_app(&db).await;
        let quinn = app.register("quinn").await;
        let other = app.login(&quinn).await;
        let logout = app
            .gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": quinn.refresh_token }))
            .await;
        assert_eq!(logout.ok()["logout"], true);
        let me = app.me(&quinn.access_token).await;
        assert_eq!(me.message(), Some("session revoked"));
        app.refresh_raw(&quinn.refresh_token).await.expect_code("UNAUTHENTICATED");
        app.me(&other.access_token).await.ok();
        // Nothing left to end; unknown tokens likewise.
        for token in [quinn.refresh_token.as_str(), "unknown"] {
            let again = app
                .gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": token }))
                .await;
            assert_eq!(again.ok()["logout"], false);
        }
    }

    async fn logout_all_ends_every_session_of_the_viewer(db) {
        let app = spawn_app(&db).await;
        let rob = app.register("rob").await;
        let rob2 = app.login(&rob).await;
        let rob3 = app.login(&rob).await;
        let sue = app.register("sue").await;
        app.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": rob3.refresh_token }))
            .await
            .ok();

        let answer = app.gql(Some(&rob2.access_token), "mutation { logoutAll }", json!({})).await;
        assert_eq!(answer.ok()["logoutAll"], 2, "two live sessions; the third had ended");
        for account in [&rob, &rob2, &rob3] {
            app.me(&account.access_token).await.expect_code("UNAUTHENTICATED");
            app.refresh_raw(&account.refresh_token).await.expect_code("UNAUTHENTICATED");
        }
        app.me(&sue.access_token).await.ok();
        app.gql(None, "mutation { logoutAll }", json!({})).await.expect_code("UNAUTHENTICATED");
    }

    async fn revocations_survive_a_restart(db) {
        let app = spawn_app(&db).await;
        let tess = app.register("tess").await;
        app.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": tess.refresh_token }))
            .await
            .ok();
        let database = app.stop().await;
        // A new instance learns recent revocations from the database.
        let restarted = spawn_on(database, |_| {}).await;
        let me = restarted.me(&tess.access_token).await;
        assert_eq!(me.message(), Some("session revoked"));
    }

    async fn tokens_we_did_not_issue_are_refused(db) {
        let app = spawn_app(&db).await;
        let uma = app.register("uma").await;
        let claims = claims_of(&uma.access_token);
        let sign = |claims: &serde_json::Value| forge_token(claims, SECRET.as_bytes(), jsonwebtoken::Algorithm::HS256);

        // alg: none, with the payload of a real token.
        let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = uma.access_token.split('.').nth(1).unwrap();
        for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
            assert_eq!(app.me(&token).await.message(), Some("invalid access token"));
        }
        // A tampered payload under the original signature.
        let mut tampered = claims.clone();
        tampered["role"] = json!("ADMIN");
        let parts: Vec<&str> = uma.access_token.split('.').collect();
        let token = format!("{}.{}.{}", parts[0], base64_url(tampered.to_string().as_bytes()), parts[2]);
        assert_eq!(app.me(&token).await.message(), Some("invalid access token"));
        // HS384 with the right secret: only the configured algorithm is accepted.
        let hs384 = forge_token(&claims, SECRET.as_bytes(), jsonwebtoken::Algorithm::HS384);
        assert_eq!(app.me(&hs384).await.message(), Some("invalid access token"));
        // Wrong issuer.
        let mut wrong_issuer = claims.clone();
        wrong_issuer["iss"] = json!("someone-else");
        assert_eq!(app.me(&sign(&wrong_issuer)).await.message(), Some("invalid access token"));
        // Not yet valid (beyond the leeway).
        let now = chrono::Utc::now().timestamp();
        let mut future = claims.clone();
        future["nbf"] = json!(now + 120);
        future["iat"] = json!(now + 120);
        future["exp"] = json!(now + 1000);
        assert_eq!(app.me(&sign(&future)).await.message(), Some("invalid access token"));
        // Missing claims.
        for claim in ["exp", "sid", "sub", "iss"] {
            let mut partial = claims.clone();
            partial.as_object_mut().unwrap().remove(claim);
            assert_eq!(app.me(&sign(&partial)).await.message(), Some("invalid access token"), "without {claim}");
        }
        // Clock skew is allowed for `nbf` (another instance may run a little ahead)...
        let mut skewed = claims.clone();
        skewed["nbf"] = json!(now + 2);
        app.me(&sign(&skewed)).await.ok();
        // ...but `exp` is exact: a token that expired a moment ago is refused, as a socket
        // closes at that moment.
        let mut just_expired = claims.clone();
        just_expired["exp"] = json!(now - 1);
        assert_eq!(app.me(&sign(&just_expired)).await.message(), Some("access token expired"));
    }

    async fn deleted_accounts_lose_every_token_at_once(db) {
        let app = spawn_app_with(&db, |c| c.limits.login_per_account = 5).await;
        let vera = app.register("vera").await;
        let other_session = app.login(&vera).await;
        let room = app.create_room(&vera, "kept", false).await;
        let wim = app.register("wim").await;
        app.join_room(&wim, &room).await.ok();
        app.send_message(&vera, &room, "still here").await;
        let mut ws = app.ws_ready(&other_session.access_token).await;
        let delete = "mutation($p: String!) { deleteAccount(password: $p) }";

        // The password is asked for: a stolen access token is not enough.
        let wrong = app.gql(Some(&vera.access_token), delete, json!({ "p": "not her password" })).await;
        wrong.expect_code("BAD_USER_INPUT");
        assert_eq!(wrong.field(), Some("password"));
        app.me(&vera.access_token).await.ok();

        let deleted = app.gql(Some(&vera.access_token), delete, json!({ "p": PASSWORD })).await;
        assert_eq!(deleted.ok()["deleteAccount"], true);
        // Every session's tokens are refused, and its sockets closed, at once.
        assert_eq!(ws.closed().await, Closed { code: 4403, reason: "session revoked".into() });
        for token in [&vera.access_token, &other_session.access_token] {
            app.me(token).await.expect_code("UNAUTHENTICATED");
        }
        for refresh in [&vera.refresh_token, &other_session.refresh_token] {
            app.refresh_raw(refresh).await.expect_code("UNAUTHENTICATED");
        }
        // Logging in finds no such account, with the answer an unknown user gets.
        let login = app.login_raw("vera", PASSWORD).await;
        assert_eq!(login.body, app.login_raw("nobody", PASSWORD).await.body);

        // The room keeps her message, by a renamed author; her name and email are free.
        let history = app
            .gql(Some(&wim.access_token), "query($r: ID!) { messages(roomId: $r) { edges { node { seq body author { id username } } } } }", json!({ "r": room }))
            .await;
        let node = &history.ok()["messages"]["edges"][0]["node"];
        assert_eq!(node["body"], "still here");
        assert_eq!(node["author"]["id"], vera.id.as_str());
        assert!(node["author"]["username"].as_str().unwrap().starts_with("deleted_"), "{node}");
        let again = app.register("vera").await;
        assert_ne!(again.id, vera.id);
        // Nobody may take a deleted account's name.
        let name = node["author"]["username"].as_str().unwrap();
        app.register_raw("x@example.com", name, PASSWORD).await.expect_code("BAD_USER_INPUT");
    }

}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
