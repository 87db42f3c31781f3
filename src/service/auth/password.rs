//! Argon2id hashing, off the async runtime and bounded.
//!
//! A hash costs ~20 ms of one core and 19 MiB on purpose (OWASP: m=19456 KiB, t=2, p=1). Run
//! on a runtime worker it would stall every other request on that worker, so it goes to the
//! blocking pool; a semaphore bounds how many run at once, so a login storm queues instead of
//! taking every core and all that memory.
use std::sync::Arc;

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};
use tokio::sync::Semaphore;

use crate::{domain::Password, error::AppResult};

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the user does not exist, so an
    /// unknown login costs the same time as a wrong password and cannot be told apart.
    dummy_hash: Arc<str>,
}

/// OWASP's first recommended Argon2id configuration.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let hash = argon2()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, phc: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    // Parameters come from the stored PHC string, so old hashes keep verifying after a change.
    Ok(argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let random: [u8; 16] = rand::random();
        let dummy_hash = hash_blocking(&hex::encode(random))?.into();
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: &Password) -> AppResult<String> {
        let password = password.clone();
        let hash = self
            .run(move || hash_blocking(password.expose()))
            .await?
            .context("hash password")?;
        Ok(hash)
    }

    /// Verifies against `stored`, or against the dummy hash when there is no such user, so
    /// both paths do the same work. Returns false for the dummy.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> AppResult<bool> {
        let password = password.clone();
        let (phc, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.to_string(), false),
        };
        let matched = self
            .run(move || verify_blocking(password.expose(), &phc))
            .await?
            .context("verify password")?;
        Ok(real && matched)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hasher closed")?;
        Ok(tokio::task::spawn_blocking(work).await?)
    }
}
