//! Micro-benchmarks of the two costs every authenticated request or login pays: JWT issue and
//! verify (HS256 and EdDSA), and Argon2id hash and verify at the OWASP parameters.
//!
//! `cargo bench --bench auth`
use std::{path::Path, time::Duration};

use chat_server::{
    config::{AuthConfig, Config, SigningConfig},
    domain::Password,
    entity::user::Role,
    service::auth::{PasswordHasher, TokenKeys},
};
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use uuid::Uuid;

fn auth_config(signing: SigningConfig) -> AuthConfig {
    AuthConfig {
        signing,
        ..Config::default().auth
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn tokens(c: &mut Criterion) {
    let algorithms = [
        (
            "HS256",
            SigningConfig::Hs256(Some(SecretString::from(
                "bench-secret-bench-secret-bench!!",
            ))),
        ),
        (
            "EdDSA",
            SigningConfig::EdDsa {
                private_key: fixture("ed25519-private.pem"),
                public_key: fixture("ed25519-public.pem"),
            },
        ),
    ];
    for (name, signing) in algorithms {
        let keys = TokenKeys::new(&auth_config(signing), Vec::new).expect("keys");
        let (user, session, jti) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::new_v4());
        let now = chrono::Utc::now().timestamp();
        let token = keys
            .issue(user, session, Role::User, now, jti)
            .expect("issue");
        let mut group = c.benchmark_group(format!("jwt/{name}"));
        group.bench_function("issue", |b| {
            b.iter(|| {
                keys.issue(user, session, Role::User, now, jti)
                    .expect("issue")
            })
        });
        group.bench_function("verify", |b| {
            b.iter(|| keys.verify(&token).expect("verify"))
        });
        group.finish();
    }
}

fn passwords(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let hasher = PasswordHasher::new(1).expect("hasher");
    let password = Password::parse("password", "correct horse battery").expect("password");
    let stored = runtime.block_on(hasher.hash(&password)).expect("hash");
    let mut group = c.benchmark_group("argon2id/m=19456,t=2,p=1");
    // Each iteration is ~20 ms: fewer samples, more time.
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("hash", |b| {
        b.to_async(&runtime).iter(|| hasher.hash(&password))
    });
    group.bench_function("verify", |b| {
        b.to_async(&runtime)
            .iter(|| hasher.verify(&password, Some(&stored)))
    });
    group.bench_function("verify unknown user", |b| {
        b.to_async(&runtime).iter(|| hasher.verify(&password, None))
    });
    // Two hashes at once on two threads, as during a login storm on two cores: Argon2 is
    // memory-hard, and two 19 MiB work areas compete for cache and memory bandwidth, so
    // this takes longer than one hash. It bounds logins/s more tightly than cores / hash.
    let pair = PasswordHasher::new(2).expect("hasher");
    group.bench_function("2 concurrent hashes", |b| {
        b.to_async(&runtime)
            .iter(|| async { tokio::join!(pair.hash(&password), pair.hash(&password)) })
    });
    group.finish();
}

criterion_group!(benches, tokens, passwords);
criterion_main!(benches);
