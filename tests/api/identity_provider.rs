//! Tokens of an identity provider (`JWT_JWKS_URL`): signed with the keys a test JWKS server
//! publishes (RS256, ES256, EdDSA), accepted over HTTP and in `connection_init`, mapped to a
//! local user on first sight, and revoked like ours.
use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chat_server::config::ExternalTokensConfig;
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::{db_tests, helpers::*};

const ISSUER: &str = "https://idp.example/";
const AUDIENCE: &str = "chat-api";
const ME: &str = "{ me { id username email emailVerified } }";

/// A JWKS endpoint serving a chosen part of `tests/fixtures/idp/jwks.json`, counting fetches.
struct Provider {
    url: String,
    published: Arc<Mutex<Vec<&'static str>>>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    async fn start(kids: &[&'static str]) -> Self {
        let all: Value = serde_json::from_slice(&std::fs::read(idp("jwks.json")).unwrap()).unwrap();
        let published = Arc::new(Mutex::new(kids.to_vec()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (shown, counted) = (published.clone(), fetches.clone());
        let route = axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let kids = shown.lock().unwrap().clone();
            let keys: Vec<Value> = all["keys"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|key| kids.contains(&key["kid"].as_str().unwrap()))
                .cloned()
                .collect();
            async move { axum::Json(json!({ "keys": keys })) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let app = axum::Router::new().route("/.well-known/jwks.json", route);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            published,
            fetches,
        }
    }

    fn publish(&self, kid: &'static str) {
        self.published.lock().unwrap().push(kid);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn idp(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/idp")
        .join(file)
}

/// A token of the provider, signed with the fixture key `kid`; `claims` add to or replace
/// the usual ones.
fn provider_token(kid: &str, claims: Value) -> String {
    let (algorithm, key) = match kid {
        "rsa-1" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&std::fs::read(idp("rs256-private.pem")).unwrap()),
        ),
        "ec-1" => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&std::fs::read(idp("es256-private.pem")).unwrap()),
        ),
        _ => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&std::fs::read(idp("ed25519-private.pem")).unwrap()),
        ),
    };
    let now = chrono::Utc::now().timestamp();
    let mut all =
        json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "idp|alice", "iat": now, "exp": now + 600 });
    for (name, value) in claims.as_object().unwrap() {
        all[name] = value.clone();
    }
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &all, &key.unwrap()).unwrap()
}

async fn app_trusting(db: &Backend, provider: &Provider) -> TestApp {
    let url = provider.url.clone();
    spawn_app_with(db, move |c| {
        let mut external = ExternalTokensConfig::new(url);
        external.issuer = ISSUER.into();
        external.audience = AUDIENCE.into();
        external.refetch_after = Duration::from_secs(1);
        c.auth.external = Some(external);
    })
    .await
}

db_tests! {
    async fn a_providers_tokens_are_accepted_for_one_local_user(db) {
        let provider = Provider::start(&["rsa-1", "ec-1"]).await;
        let app = app_trusting(&db, &provider).await;
        assert_eq!(provider.fetches(), 1, "fetched at start-up");

        let profile = json!({ "email": "alice@idp.example", "email_verified": true, "preferred_username": "alice" });
        let rs256 = provider_token("rsa-1", profile.clone());
        let me = app.gql(Some(&rs256), ME, json!({})).await.ok()["me"].clone();
        assert_eq!((&me["username"], &me["email"], &me["emailVerified"]), (&json!("alice"), &json!("alice@idp.example"), &json!(true)));
        // Another key, another token: the same user.
        let es256 = provider_token("ec-1", json!({}));
        assert_eq!(app.gql(Some(&es256), ME, json!({})).await.ok()["me"]["id"], me["id"]);
        // Over a socket too.
        let mut socket = app.ws_ready(&es256).await;
        socket.subscribe("me", "{ me { id } }", json!({})).await;
        assert_eq!(socket.next("me").await["data"]["me"]["id"], me["id"]);

        // The provider rotates to a new key: a token naming it makes us fetch again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        provider.publish("ed-1");
        let eddsa = provider_token("ed-1", json!({}));
        assert_eq!(app.gql(Some(&eddsa), ME, json!({})).await.ok()["me"]["id"], me["id"]);
        assert_eq!(provider.fetches(), 2);

        // Refused: another audience, an expired token, HMAC with a made-up secret, and one
        // algorithm posing as another's key.
        let refusals = [
            (provider_token("rsa-1", json!({ "aud": "another-api" })), "invalid access token"),
            (provider_token("rsa-1", json!({ "exp": chrono::Utc::now().timestamp() - 1 })), "access token expired"),
            (forge_token(&json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "idp|alice", "iat": 1, "exp": 4_000_000_000_i64 }), b"secret", Algorithm::HS256), "invalid access token"),
        ];
        for (token, message) in refusals {
            let answer = app.me(&token).await;
            assert_eq!((answer.code(), answer.message()), (Some("UNAUTHENTICATED"), Some(message)));
        }
        let mut wrong_alg = Header::new(Algorithm::ES256);
        wrong_alg.kid = Some("rsa-1".into());
        let now = chrono::Utc::now().timestamp();
        let claims = json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "idp|alice", "iat": now, "exp": now + 60 });
        let ec_key = EncodingKey::from_ec_pem(&std::fs::read(idp("es256-private.pem")).unwrap()).unwrap();
        let posing = jsonwebtoken::encode(&wrong_alg, &claims, &ec_key).unwrap();
        app.me(&posing).await.expect_code("UNAUTHENTICATED");
        // Longer than any provider's token (8 KiB): 10 times over HTTP, 100 times in
        // `connection_init` (1,000 times is past the socket's message limit: `bounds`).
        let padded = |times: usize| format!("{rs256}{}", "x".repeat(8192 * times - rs256.len()));
        assert_eq!(app.me(&padded(10)).await.message(), Some("invalid access token"));
        let mut socket = app.ws().await;
        socket.send(json!({ "type": "connection_init", "payload": { "token": padded(100) } })).await;
        assert_eq!(socket.closed().await, Closed { code: 4403, reason: "invalid token".into() });

        // A thousand tokens naming keys nobody published, 10 and 1,000 times what a rotation
        // needs: each refused, and at most one fetch per interval (one second here).
        let ed_key = EncodingKey::from_ed_pem(&std::fs::read(idp("ed25519-private.pem")).unwrap()).unwrap();
        let made_up: Vec<String> = (0..1000)
            .map(|n| {
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some(format!("made-up-{n}"));
                jsonwebtoken::encode(&header, &claims, &ed_key).unwrap()
            })
            .collect();
        let (before, started) = (provider.fetches(), std::time::Instant::now());
        let refused = futures_util::stream::iter(&made_up)
            .map(|token| async { app.me(token).await.code() == Some("UNAUTHENTICATED") })
            .buffer_unordered(32)
            .filter(|refused| std::future::ready(*refused))
            .count()
            .await;
        assert_eq!(refused, 1000);
        let (fetched, seconds) = (provider.fetches() - before, started.elapsed().as_secs());
        assert!(fetched as u64 <= seconds + 1, "{fetched} fetches in {seconds} s");
    }

    async fn names_taken_here_are_not_taken_over(db) {
        let provider = Provider::start(&["rsa-1"]).await;
        let app = app_trusting(&db, &provider).await;
        let bob = app.register("bob").await;
        let token = provider_token("rsa-1", json!({ "sub": "idp|bob", "email": bob.email, "email_verified": true, "preferred_username": "bob" }));
        let me = app.gql(Some(&token), ME, json!({})).await.ok()["me"].clone();
        assert_ne!(me["id"], json!(bob.id));
        assert!(me["username"].as_str().unwrap().starts_with("user_"), "{me}");
        assert!(me["email"].as_str().unwrap().ends_with("@external.invalid"), "{me}");
        assert_eq!(me["emailVerified"], false);
        // Bob's account is his as before.
        app.login(&bob).await;
    }

    async fn revoking_a_provider_session_refuses_its_tokens_until_a_newer_one(db) {
        let provider = Provider::start(&["rsa-1"]).await;
        let app = app_trusting(&db, &provider).await;
        let first = provider_token("rsa-1", json!({}));
        let me = app.me(&first).await.ok()["me"].clone();
        let mut socket = app.ws_ready(&first).await;
        let sessions = app.gql(Some(&first), "{ sessions { id current userAgent } }", json!({})).await;
        let listed = sessions.ok()["sessions"].clone();
        assert_eq!(listed.as_array().unwrap().len(), 1);
        assert_eq!((&listed[0]["current"], &listed[0]["userAgent"]), (&json!(true), &json!("identity provider")));

        let ended = app.gql(Some(&first), "mutation { logoutAll }", json!({})).await;
        assert_eq!(ended.ok()["logoutAll"], 1);
        assert_eq!(socket.closed().await, Closed { code: 4403, reason: "session revoked".into() });
        let answer = app.me(&first).await;
        assert_eq!((answer.code(), answer.message()), (Some("UNAUTHENTICATED"), Some("session revoked")));

        // A token the provider issues afterwards opens a new session, and the old one stays
        // refused.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let second = provider_token("rsa-1", json!({}));
        assert_eq!(app.me(&second).await.ok()["me"]["id"], me["id"]);
        let listed = app.gql(Some(&second), "{ sessions { id current } }", json!({})).await.ok()["sessions"].clone();
        assert_eq!(listed.as_array().unwrap().len(), 1);
        assert_ne!(listed[0]["id"], sessions.ok()["sessions"][0]["id"]);
        app.me(&first).await.expect_code("UNAUTHENTICATED");
        let mut socket = app.ws().await;
        socket.send(json!({ "type": "connection_init", "payload": { "token": first } })).await;
        assert_eq!(socket.closed().await, Closed { code: 4403, reason: "session revoked".into() });
        assert_eq!(app.me(&second).await.ok()["me"]["id"], me["id"]);
    }
}
