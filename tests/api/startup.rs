//! Start-up: configuration checks, the EdDSA option, and instances migrating side by side.
use std::process::Command;

use chat_server::config::SigningConfig;
use serde_json::json;

use crate::{db_tests, helpers::*};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn production_refuses_to_start_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("serve")
        .current_dir(dir.path())
        .env("APP_ENV", "production")
        .env_remove("JWT_SECRET")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .expect("run chat-server");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
}

#[test]
fn print_schema_needs_no_database() {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("print-schema")
        .env("DATABASE_URL", "postgres://nowhere.invalid/none")
        .output()
        .expect("run chat-server");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        chat_server::graphql::sdl()
    );
}

db_tests! {
    async fn eddsa_tokens_work_and_pin_their_algorithm(db) {
        let app = spawn_app_with(&db, |c| {
            c.auth.signing = SigningConfig::EdDsa {
                private_key: fixture("ed25519-private.pem"),
                public_key: fixture("ed25519-public.pem"),
            };
        })
        .await;
        let amy = app.register("amy").await;
        let header = amy.access_token.split('.').next().unwrap();
        assert!(String::from_utf8(base64_decode(header)).unwrap().contains("EdDSA"));
        app.me(&amy.access_token).await.ok();
        // Algorithm confusion: an HS256 token keyed with the (public) verification key.
        let public = std::fs::read(fixture("ed25519-public.pem")).unwrap();
        let confused = forge_token(&claims_of(&amy.access_token), &public, jsonwebtoken::Algorithm::HS256);
        assert_eq!(app.me(&confused).await.message(), Some("invalid access token"));
    }

    async fn instances_starting_together_migrate_once(db) {
        let database = TestDb::new(&db).await;
        let (a, b, c) = tokio::join!(
            spawn_on(database.clone(), |_| {}),
            spawn_on(database.clone(), |_| {}),
            spawn_on(database.clone(), |_| {}),
        );
        // One database: an account made through one instance signs in through the others.
        let bea = a.register("bea").await;
        b.login(&bea).await;
        let via_c = c.gql(Some(&bea.access_token), "{ me { username } }", json!({})).await;
        assert_eq!(via_c.ok()["me"]["username"], "bea");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
