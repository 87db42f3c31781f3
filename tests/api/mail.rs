//! Mail, through a real SMTP server the test starts: verifying an address, resetting a
//! forgotten password, and `REQUIRE_VERIFIED_EMAIL`; without SMTP, mails as `.eml` files.
use std::time::Duration;

use serde_json::json;

use crate::{db_tests, helpers::*, postgres_tests};

const VERIFY: &str = "mutation($t: String!) { verifyEmail(token: $t) { username emailVerified } }";
const RESEND: &str = "mutation { resendVerification }";
const REQUEST: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";
const RESET: &str =
    "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
const ME: &str = "{ me { email emailVerified } }";
const NEW_PASSWORD: &str = "a password from the mail";

async fn verified(app: &TestApp, account: &Account) -> serde_json::Value {
    app.gql(Some(&account.access_token), ME, json!({}))
        .await
        .ok()["me"]["emailVerified"]
        .clone()
}

db_tests! {
    async fn registering_mails_a_link_that_verifies_the_address_once(db) {
        let mailbox = Mailbox::start();
        let app = spawn_app_with(&db, |c| c.mail.smtp_url = Some(mailbox.url.as_str().into())).await;
        let ann = app.register("ann").await;
        assert_eq!(verified(&app, &ann).await, false);
        let mail = mailbox.wait_for("ann@example.com", 1).await.remove(0);
        assert!(mail.data.contains("Subject: Confirm your email address"), "{}", mail.data);
        // Others see nothing of it.
        let bob = app.register("bob").await;
        let seen = app.gql(Some(&bob.access_token), "query { user(username: \"ann\") { email emailVerified } }", json!({})).await;
        assert_eq!(seen.ok()["user"], json!({ "email": null, "emailVerified": null }));

        // No sign-in needed: the link may be opened anywhere.
        let answer = app.gql(None, VERIFY, json!({ "t": mail.token() })).await;
        assert_eq!(answer.ok()["verifyEmail"], json!({ "username": "ann", "emailVerified": true }));
        assert_eq!(verified(&app, &ann).await, true);

        // Once only; nothing else is a token; nothing long is even looked at.
        for token in [mail.token(), "not a token".to_owned(), "x".repeat(1_280), "x".repeat(128_000)] {
            let again = app.gql(None, VERIFY, json!({ "t": token })).await;
            again.expect_code("BAD_USER_INPUT");
            assert_eq!(again.field(), Some("token"));
        }
        // Verified: nothing more to mail.
        let resent = app.gql(Some(&ann.access_token), RESEND, json!({})).await;
        assert_eq!(resent.ok()["resendVerification"], false);
        assert_eq!(mailbox.wait_for("ann@example.com", 1).await.len(), 1);
    }

    async fn a_new_verification_link_replaces_none_and_is_rate_limited(db) {
        let mailbox = Mailbox::start();
        let app = spawn_app_with(&db, |c| {
            c.mail.smtp_url = Some(mailbox.url.as_str().into());
            c.limits.verification_per_user = 2;
        })
        .await;
        let cyd = app.register("cyd").await;
        for _ in 0..2 {
            let resent = app.gql(Some(&cyd.access_token), RESEND, json!({})).await;
            assert_eq!(resent.ok()["resendVerification"], true);
        }
        app.gql(Some(&cyd.access_token), RESEND, json!({})).await.expect_code("RATE_LIMITED");
        let mails = mailbox.wait_for("cyd@example.com", 3).await;
        // Any of them works; once one has, the others have nothing left to prove.
        app.gql(None, VERIFY, json!({ "t": mails[1].token() })).await.ok();
        app.gql(None, VERIFY, json!({ "t": mails[2].token() })).await.expect_code("BAD_USER_INPUT");
        app.gql(None, RESEND, json!({})).await.expect_code("UNAUTHENTICATED");
    }

    async fn a_password_reset_answers_alike_for_anyone_and_ends_every_session(db) {
        let mailbox = Mailbox::start();
        let app = spawn_app_with(&db, |c| c.mail.smtp_url = Some(mailbox.url.as_str().into())).await;
        let dee = app.register("dee").await;
        let mut socket = app.ws_ready(&dee.access_token).await;
        let known = app.gql(None, REQUEST, json!({ "e": "DEE@example.com" })).await;
        let unknown = app.gql(None, REQUEST, json!({ "e": "nobody@example.com" })).await;
        assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
        assert_eq!(known.ok()["requestPasswordReset"], true);
        app.gql(None, REQUEST, json!({ "e": "not an address" })).await.expect_code("BAD_USER_INPUT");

        let mails = mailbox.wait_for("dee@example.com", 2).await;
        let reset = mails.iter().find(|m| m.data.contains("Subject: Reset your password")).unwrap();
        assert!(mailbox.all().iter().all(|m| m.to != ["nobody@example.com"]), "no mail to an address without an account");

        // A password that does not pass spends nothing.
        let weak = app.gql(None, RESET, json!({ "t": reset.token(), "p": "short" })).await;
        assert_eq!((weak.code(), weak.field()), (Some("BAD_USER_INPUT"), Some("newPassword")));
        let done = app.gql(None, RESET, json!({ "t": reset.token(), "p": NEW_PASSWORD })).await;
        assert_eq!(done.ok()["resetPassword"], 1);
        let closed = socket.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        app.refresh_raw(&dee.refresh_token).await.expect_code("UNAUTHENTICATED");
        app.login_raw("dee", PASSWORD).await.expect_code("UNAUTHENTICATED");
        let back = app.login_raw("dee", NEW_PASSWORD).await;
        back.ok();
        // The reset proved the mailbox too; and the link is spent.
        assert_eq!(back.ok()["login"]["user"]["email"], "dee@example.com");
        let again = app.gql(None, RESET, json!({ "t": reset.token(), "p": NEW_PASSWORD })).await;
        assert_eq!((again.code(), again.field()), (Some("BAD_USER_INPUT"), Some("token")));
        let token = back.ok()["login"]["accessToken"].as_str().unwrap().to_owned();
        let me = app.gql(Some(&token), ME, json!({})).await;
        assert_eq!(me.ok()["me"]["emailVerified"], true);
    }

    async fn password_reset_requests_are_limited_per_address_and_per_client(db) {
        let mailbox = Mailbox::start();
        let app = spawn_app_with(&db, |c| {
            c.mail.smtp_url = Some(mailbox.url.as_str().into());
            c.limits.password_reset_per_email = 2;
            c.limits.password_reset_per_ip = 5;
        })
        .await;
        for _ in 0..2 {
            app.gql(None, REQUEST, json!({ "e": "eve@example.com" })).await.ok();
        }
        // The same for an address with an account or without: nothing shows which.
        app.gql(None, REQUEST, json!({ "e": "eve@example.com" })).await.expect_code("RATE_LIMITED");
        app.gql(None, REQUEST, json!({ "e": "fay@example.com" })).await.ok();
        app.gql(None, REQUEST, json!({ "e": "gus@example.com" })).await.ok();
        app.gql(None, REQUEST, json!({ "e": "hal@example.com" })).await.expect_code("RATE_LIMITED");
    }

    async fn links_expire(db) {
        let mailbox = Mailbox::start();
        let app = spawn_app_with(&db, |c| {
            c.mail.smtp_url = Some(mailbox.url.as_str().into());
            c.auth.verification_ttl = Duration::from_secs(1);
            c.auth.password_reset_ttl = Duration::from_secs(1);
        })
        .await;
        app.register("ivy").await;
        app.gql(None, REQUEST, json!({ "e": "ivy@example.com" })).await.ok();
        let mails = mailbox.wait_for("ivy@example.com", 2).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        for mail in mails {
            let expired = if mail.data.contains("Subject: Reset") {
                app.gql(None, RESET, json!({ "t": mail.token(), "p": NEW_PASSWORD })).await
            } else {
                app.gql(None, VERIFY, json!({ "t": mail.token() })).await
            };
            assert_eq!((expired.code(), expired.field()), (Some("BAD_USER_INPUT"), Some("token")));
        }
        app.login_raw("ivy", PASSWORD).await.ok();
    }

    async fn a_deleted_account_is_not_reset_by_an_old_link(db) {
        let mailbox = Mailbox::start();
        let app = spawn_app_with(&db, |c| c.mail.smtp_url = Some(mailbox.url.as_str().into())).await;
        let joy = app.register("joy").await;
        app.gql(None, REQUEST, json!({ "e": "joy@example.com" })).await.ok();
        let mails = mailbox.wait_for("joy@example.com", 2).await;
        app.gql(Some(&joy.access_token), "mutation($p: String!) { deleteAccount(password: $p) }", json!({ "p": PASSWORD })).await.ok();
        for mail in &mails {
            let reset = app.gql(None, RESET, json!({ "t": mail.token(), "p": NEW_PASSWORD })).await;
            reset.expect_code("BAD_USER_INPUT");
            app.gql(None, VERIFY, json!({ "t": mail.token() })).await.expect_code("BAD_USER_INPUT");
        }
    }

    async fn unverified_users_cannot_send_where_verification_is_required(db) {
        let mailbox = Mailbox::start();
        let app = spawn_app_with(&db, |c| {
            c.mail.smtp_url = Some(mailbox.url.as_str().into());
            c.chat.require_verified_email = true;
        })
        .await;
        let kit = app.register("kit").await;
        let room = app.create_room(&kit, "quiet", false).await;
        let refused = app.send_message_raw(&kit, &room, "hello", None).await;
        refused.expect_code("FORBIDDEN");
        let mail = mailbox.wait_for("kit@example.com", 1).await.remove(0);
        app.gql(None, VERIFY, json!({ "t": mail.token() })).await.ok();
        app.send_message(&kit, &room, "hello").await;
    }

    async fn mail_the_server_turns_away_for_a_while_is_sent_again(db) {
        let mailbox = Mailbox::start();
        mailbox.refuse_next(2);
        let app = spawn_app_with(&db, |c| c.mail.smtp_url = Some(mailbox.url.as_str().into())).await;
        app.register("lou").await;
        // Refused twice (451), then sent: after 1 s and 2 s more.
        let mails = mailbox.wait_for("lou@example.com", 1).await;
        assert_eq!(mails.len(), 1);
    }

    async fn without_smtp_mails_are_files_in_the_outbox(db) {
        let app = spawn_app_with(&db, |c| c.mail.app_url = Some("https://chat.example".into())).await;
        app.register("max").await;
        let dir = app.db.outbox.path().to_owned();
        let mut found = None;
        for _ in 0..100 {
            let files: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
            if let Some(file) = files.into_iter().find(|p| p.to_string_lossy().ends_with("-verify.eml") || p.to_string_lossy().contains("-verify-")) {
                found = Some(file);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let file = found.expect("a .eml file in the outbox");
        let eml = std::fs::read_to_string(file).unwrap();
        assert!(eml.contains("To: max@example.com"), "{eml}");
        // Quoted-printable may fold the long line; unfolded, it is the link.
        let unfolded = eml.replace("=\r\n", "").replace("=3D", "=");
        assert!(unfolded.contains("https://chat.example/verify-email?token="), "{eml}");
        let token = Received { to: vec![], data: unfolded }.token();
        app.gql(None, VERIFY, json!({ "t": token })).await.ok();
    }
}

const CHANGE_EMAIL: &str =
    "mutation($p: String!, $e: String!) { changeEmail(currentPassword: $p, newEmail: $e) }";
const RENAME: &str = "mutation($u: String!) { changeUsername(username: $u) { username email } }";

db_tests! {
    async fn an_address_changes_once_the_new_one_is_verified(db) {
        let mailbox = Mailbox::start();
        let app = spawn_app_with(&db, |c| c.mail.smtp_url = Some(mailbox.url.as_str().into())).await;
        let (nia, _oli) = (app.register("nia").await, app.register("oli").await);
        let change = |password: &str, email: &str| app.gql(Some(&nia.access_token), CHANGE_EMAIL, json!({ "p": password, "e": email }));
        let wrong = change("not the password", "nia@new.example").await;
        assert_eq!((wrong.code(), wrong.field()), (Some("BAD_USER_INPUT"), Some("currentPassword")));
        let taken = change(PASSWORD, "oli@example.com").await;
        assert_eq!((taken.code(), taken.field()), (Some("CONFLICT"), Some("newEmail")));
        let same = change(PASSWORD, "NIA@example.com").await;
        assert_eq!((same.code(), same.field()), (Some("BAD_USER_INPUT"), Some("newEmail")));
        assert_eq!(change(PASSWORD, "nia@new.example").await.ok()["changeEmail"], true);

        // The old address hears of it; it stays the account's until the new one is confirmed.
        let notice = mailbox.wait_for("nia@example.com", 2).await;
        assert!(notice.iter().any(|m| m.data.contains("Subject: Your address is being changed")));
        let link = mailbox.wait_for("nia@new.example", 1).await.remove(0);
        let me = app.gql(Some(&nia.access_token), ME, json!({})).await;
        assert_eq!(me.ok()["me"]["email"], "nia@example.com");
        let moved = app.gql(None, "mutation($t: String!) { verifyEmail(token: $t) { email emailVerified } }", json!({ "t": link.token() })).await;
        assert_eq!(moved.ok()["verifyEmail"], json!({ "email": "nia@new.example", "emailVerified": true }));
        let me = app.gql(Some(&nia.access_token), ME, json!({})).await;
        assert_eq!(me.ok()["me"], json!({ "email": "nia@new.example", "emailVerified": true }));
        app.login_raw("nia@new.example", PASSWORD).await.ok();
        app.login_raw("nia@example.com", PASSWORD).await.expect_code("UNAUTHENTICATED");
        // The first verification link went to the old address: it proves nothing now.
        let old_link = notice.iter().find(|m| m.data.contains("Subject: Confirm your email address")).unwrap();
        app.gql(None, VERIFY, json!({ "t": old_link.token() })).await.expect_code("BAD_USER_INPUT");
    }

    async fn a_username_changes_at_once_and_stays_unique(db) {
        let app = spawn_app(&db).await;
        let (pia, _quin) = (app.register("pia").await, app.register("quin").await);
        let room = app.create_room(&pia, "names", false).await;
        app.send_message(&pia, &room, "hello").await;
        let rename = |name: &str| app.gql(Some(&pia.access_token), RENAME, json!({ "u": name }));
        let taken = rename("QUIN").await;
        assert_eq!((taken.code(), taken.field()), (Some("CONFLICT"), Some("username")));
        for bad in ["x", "deleted_pia", &"p".repeat(330), &"p".repeat(33_000)] {
            let refused = rename(bad).await;
            assert_eq!((refused.code(), refused.field()), (Some("BAD_USER_INPUT"), Some("username")), "{bad:.40}");
        }
        assert_eq!(rename("pia_2").await.ok()["changeUsername"], json!({ "username": "pia_2", "email": "pia@example.com" }));
        let me = app.gql(Some(&pia.access_token), "{ me { username } }", json!({})).await;
        assert_eq!(me.ok()["me"]["username"], "pia_2");
        let history = app.gql(Some(&pia.access_token), "query($r: ID!) { messages(roomId: $r) { edges { node { author { username } } } } }", json!({ "r": room })).await;
        assert_eq!(history.ok()["messages"]["edges"][0]["node"]["author"]["username"], "pia_2");
        app.login_raw("pia_2", PASSWORD).await.ok();
    }
}

postgres_tests! {
    async fn a_new_name_reaches_every_instance_at_once(db) {
        let a = spawn_app(&db).await;
        let b = spawn_on(a.db.clone(), |_| {}).await;
        let rae = a.register("rae").await;
        let me = async |app: &TestApp| app.gql(Some(&rae.access_token), "{ me { username } }", json!({})).await;
        // b has rae in its cache, which would otherwise keep the old name for a minute.
        assert_eq!(me(&b).await.ok()["me"]["username"], "rae");
        a.gql(Some(&rae.access_token), RENAME, json!({ "u": "rae_renamed" })).await.ok();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while me(&b).await.ok()["me"]["username"] != "rae_renamed" {
            assert!(tokio::time::Instant::now() < deadline, "b still says rae");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
