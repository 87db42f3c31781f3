//! Two-factor login with an authenticator app's codes (TOTP), computed here as an app would
//! from the secret `enableTotp` hands out.
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret};

use crate::{db_tests, helpers::*};

const ENABLE: &str = "mutation { enableTotp { secret uri } }";
const CONFIRM: &str = "mutation($c: String!) { confirmTotp(code: $c) }";
const DISABLE: &str = "mutation($p: String!, $c: String!) { disableTotp(password: $p, code: $c) }";
const VERIFY: &str = "mutation($ch: String!, $c: String!) { verifyLogin(challenge: $ch, code: $c) { accessToken user { username totpEnabled } } }";

/// The code an authenticator app shows for `secret` at `offset` steps from now.
fn code(secret: &str, offset: i64) -> String {
    let secret = Secret::try_from_base32(secret).unwrap();
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(secret)
        .build()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp.generate((now + offset * 30) as u64).to_string()
}

/// Turns TOTP on for `account`; returns the secret and the recovery codes.
async fn turn_on(app: &TestApp, account: &Account) -> (String, Vec<String>) {
    let setup = app
        .gql(Some(&account.access_token), ENABLE, json!({}))
        .await;
    let secret = setup.ok()["enableTotp"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = setup.ok()["enableTotp"]["uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    // The code of one step back: the next login's (this step) is then still unused.
    let confirmed = app
        .gql(
            Some(&account.access_token),
            CONFIRM,
            json!({ "c": code(&secret, -1) }),
        )
        .await;
    let codes: Vec<String> = serde_json::from_value(confirmed.ok()["confirmTotp"].clone()).unwrap();
    (secret, codes)
}

/// `login` with the right password: MFA_REQUIRED, and its challenge.
async fn challenge(app: &TestApp, account: &Account) -> String {
    let answer = app.login_raw(&account.username, PASSWORD).await;
    answer.expect_code("MFA_REQUIRED");
    assert!(answer.data().is_null(), "no tokens: {}", answer.body);
    assert_eq!(answer.body["errors"][0]["extensions"]["expiresIn"], 300);
    answer.body["errors"][0]["extensions"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn bad_code(answer: &Gql) {
    assert_eq!(
        (answer.code(), answer.field()),
        (Some("BAD_USER_INPUT"), Some("code")),
        "{}",
        answer.body
    );
}

db_tests! {
    async fn a_second_factor_is_asked_for_once_turned_on_and_each_code_works_once(db) {
        let app = spawn_app(&db).await;
        let sam = app.register("sam").await;
        let (secret, recovery) = turn_on(&app, &sam).await;
        assert_eq!(recovery.len(), 10);
        let me = app.gql(Some(&sam.access_token), "{ me { totpEnabled } }", json!({})).await;
        assert_eq!(me.ok()["me"]["totpEnabled"], true);
        // A wrong password is still just that.
        app.login_raw("sam", "not the password").await.expect_code("UNAUTHENTICATED");

        let first = challenge(&app, &sam).await;
        for wrong in ["000000", "12345", "abcdef", &"9".repeat(640), &"9".repeat(64_000)] {
            bad_code(&app.gql(None, VERIFY, json!({ "ch": first, "c": wrong })).await);
        }
        let now = code(&secret, 0);
        let done = app.gql(None, VERIFY, json!({ "ch": first, "c": now })).await;
        assert_eq!(done.ok()["verifyLogin"]["user"], json!({ "username": "sam", "totpEnabled": true }));
        let token = done.ok()["verifyLogin"]["accessToken"].as_str().unwrap().to_owned();
        app.gql(Some(&token), "{ me { username } }", json!({})).await.ok();

        // The same code again, even with a new challenge, within its window: refused.
        let second = challenge(&app, &sam).await;
        bad_code(&app.gql(None, VERIFY, json!({ "ch": second, "c": now })).await);
        // A recovery code works, once, in any case and without its dashes.
        let typed = recovery[3].replace('-', "").to_uppercase();
        app.gql(None, VERIFY, json!({ "ch": second, "c": typed })).await.ok();
        let third = challenge(&app, &sam).await;
        bad_code(&app.gql(None, VERIFY, json!({ "ch": third, "c": recovery[3] })).await);

        // Challenges are the server's own, and say whose they are.
        for forged in ["", "not a challenge", &third[..third.len() - 2], &"A".repeat(10_000)] {
            let refused = app.gql(None, VERIFY, json!({ "ch": forged, "c": recovery[4] })).await;
            refused.expect_code("UNAUTHENTICATED");
        }
        app.gql(None, VERIFY, json!({ "ch": third, "c": recovery[4] })).await.ok();
    }

    async fn turning_it_on_needs_a_code_and_off_needs_the_password_and_a_code(db) {
        let app = spawn_app(&db).await;
        let tia = app.register("tia").await;
        let me = async || app.gql(Some(&tia.access_token), "{ me { totpEnabled } }", json!({})).await.ok()["me"]["totpEnabled"].clone();
        // Not before a secret exists, and not with a wrong code.
        app.gql(Some(&tia.access_token), CONFIRM, json!({ "c": "123456" })).await.expect_code("FORBIDDEN");
        let setup = app.gql(Some(&tia.access_token), ENABLE, json!({})).await;
        let secret = setup.ok()["enableTotp"]["secret"].as_str().unwrap().to_owned();
        let wrong = if code(&secret, 0) == "000000" { "000001" } else { "000000" };
        bad_code(&app.gql(Some(&tia.access_token), CONFIRM, json!({ "c": wrong })).await);
        assert_eq!(me().await, Value::Bool(false));
        app.login_raw("tia", PASSWORD).await.ok();

        let confirmed = app.gql(Some(&tia.access_token), CONFIRM, json!({ "c": code(&secret, 0) })).await;
        confirmed.ok();
        app.gql(Some(&tia.access_token), ENABLE, json!({})).await.expect_code("FORBIDDEN");
        let disable = |password: &str, c: String| app.gql(Some(&tia.access_token), DISABLE, json!({ "p": password, "c": c }));
        let wrong_password = disable("not the password", code(&secret, 1)).await;
        assert_eq!((wrong_password.code(), wrong_password.field()), (Some("BAD_USER_INPUT"), Some("password")));
        bad_code(&disable(PASSWORD, "111111".into()).await);
        assert_eq!(disable(PASSWORD, code(&secret, 1)).await.ok()["disableTotp"], true);
        assert_eq!(me().await, Value::Bool(false));
        app.login_raw("tia", PASSWORD).await.ok();
    }

    async fn codes_count_against_the_login_limits(db) {
        let app = spawn_app_with(&db, |c| c.limits.login_per_account_ip = 4).await;
        let uma = app.register("uma").await;
        let (_, recovery) = turn_on(&app, &uma).await;
        let ch = challenge(&app, &uma).await;
        let mut limited = false;
        for _ in 0..6 {
            let answer = app.gql(None, VERIFY, json!({ "ch": ch, "c": "000000" })).await;
            if answer.code() == Some("RATE_LIMITED") {
                limited = true;
                break;
            }
            bad_code(&answer);
        }
        assert!(limited, "guessing codes is rate limited");
        // The right code waits too: the limit is on tries, not on failures.
        app.gql(None, VERIFY, json!({ "ch": ch, "c": recovery[0] })).await.expect_code("RATE_LIMITED");
    }
}
