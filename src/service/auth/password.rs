//! Argon2id hashing, off the async runtime, bounded, in reused memory.
//!
//! A hash costs ~17 ms of one core and 19 MiB on purpose (OWASP: m=19456 KiB, t=2, p=1). Run
//! on a runtime worker it would stall every other request on that worker, so it runs on a
//! small pool of blocking threads of its own (`PASSWORD_HASH_CONCURRENCY`, by default one
//! per core) fed by a bounded queue: a login storm queues instead of taking every thread.
//! Each hashing thread takes its next job the moment it finishes one; with `spawn_blocking`
//! behind a semaphore, every hand-over went through the async scheduler first, and on cores
//! busy hashing that left them idle for milliseconds (87% of the Argon2 ceiling, measured).
//! Each thread owns one 19 MiB work area, reused hash after hash: a fresh allocation per hash
//! would be zeroed page by page every time, and a burst of logins would have the allocator
//! hold (for a while) a block per hash. Each area is used once at start, so the pool's memory
//! is resident from the start, as it is after the first logins anyway: what the server holds
//! does not step up by 19 MiB under its first concurrent logins.
use std::sync::Arc;

use anyhow::{Context, anyhow};
use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};

use crate::{domain::Password, error::AppResult};

/// OWASP's first recommended Argon2id configuration.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(32)).expect("constant Argon2 parameters are valid")
}

/// Argon2's working memory: `m_cost` blocks of 1 KiB.
type WorkArea = Box<[Block]>;

fn work_area(params: &Params) -> WorkArea {
    vec![Block::new(); params.block_count()].into_boxed_slice()
}

/// Hashes waiting for a thread, per thread, before callers wait to queue theirs.
const QUEUED_PER_THREAD: usize = 64;

type Job = Box<dyn FnOnce(&mut WorkArea) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    jobs: flume::Sender<Job>,
    /// A real hash of a random password, verified against when the user does not exist, so an
    /// unknown login costs the same time as a wrong password and cannot be told apart.
    dummy_hash: Arc<str>,
}

/// Hashes with a fresh random salt; returns the PHC string (algorithm, params, salt, hash).
fn hash_with(password: &str, area: &mut [Block]) -> anyhow::Result<String> {
    let params = params();
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, area)
        .map_err(|e| anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow!("params: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow!("salt: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the hash with the stored algorithm, parameters and salt (so hashes made under
/// older parameters keep verifying) and compares in constant time.
fn verify_with(password: &str, phc: &str, area: &mut WorkArea) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow!("stored hash: {e}"))?;
    let params = Params::try_from(&parsed).map_err(|e| anyhow!("stored params: {e}"))?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str())
        .map_err(|e| anyhow!("stored algorithm: {e}"))?;
    let version = Version::try_from(parsed.version.unwrap_or(Version::V0x13.into()))
        .map_err(|e| anyhow!("stored version: {e}"))?;
    let (salt, expected) = parsed
        .salt
        .zip(parsed.hash)
        .context("stored hash has no salt or output")?;
    let mut out = vec![0u8; expected.len()];
    // Hashes made with other parameters get memory of their own, sized for them.
    let mut other;
    let memory: &mut [Block] = if area.len() == params.block_count() {
        area
    } else {
        other = work_area(&params);
        &mut other
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, memory)
        .map_err(|e| anyhow!("argon2: {e}"))?;
    let computed = Output::new(&out).map_err(|e| anyhow!("output: {e}"))?;
    Ok(computed == expected)
}

impl PasswordHasher {
    /// Starts `threads` hashing threads. They end when the last `PasswordHasher` is dropped.
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let mut area = work_area(&params());
        let random: [u8; 16] = rand::random();
        let dummy_hash = hash_with(&hex::encode(random), &mut area)?.into();
        let (jobs, queue) = flume::bounded::<Job>(threads * QUEUED_PER_THREAD);
        let mut first_area = Some(area);
        for n in 0..threads {
            let queue = queue.clone();
            let mut area = first_area.take();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    let area = area.get_or_insert_with(|| {
                        let mut area = work_area(&params());
                        // Used once now, like the dummy hash's: see the module's comment.
                        let _ = hash_with(&hex::encode(random), &mut area);
                        area
                    });
                    while let Ok(job) = queue.recv() {
                        // A panicking job fails its caller (its result is never sent), not
                        // the thread: the pool keeps its size.
                        let run = std::panic::AssertUnwindSafe(|| job(area));
                        if std::panic::catch_unwind(run).is_err() {
                            tracing::error!("a password hashing job panicked");
                        }
                    }
                })
                .context("start a hashing thread")?;
        }
        Ok(Self { jobs, dummy_hash })
    }

    pub async fn hash(&self, password: &Password) -> AppResult<String> {
        let password = password.clone();
        let hash = self
            .run(move |area| hash_with(password.expose(), area))
            .await?
            .context("hash password")?;
        Ok(hash)
    }

    /// A hash that no password is known for: the dummy's, whose password was random and is
    /// gone. For accounts that sign in elsewhere (an identity provider) until they set one.
    pub fn unknowable(&self) -> String {
        self.dummy_hash.to_string()
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
            .run(move |area| verify_with(password.expose(), &phc, area))
            .await?
            .context("verify password")?;
        Ok(real && matched)
    }

    /// Runs `work` on a hashing thread, in its work area.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut WorkArea) -> T + Send + 'static,
    ) -> AppResult<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |area| {
            let _ = done.send(work(area));
        });
        self.jobs
            .send_async(job)
            .await
            .map_err(|_| anyhow!("hashing threads stopped"))?;
        Ok(result.await.context("hashing thread failed")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_carry_their_parameters() {
        let mut area = work_area(&params());
        let phc = hash_with("correct horse", &mut area).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_with("correct horse", &phc, &mut area).unwrap());
        assert!(!verify_with("wrong horse", &phc, &mut area).unwrap());
        // Two hashes of one password differ (random salt).
        assert_ne!(phc, hash_with("correct horse", &mut area).unwrap());
    }

    #[test]
    fn hashes_made_with_other_parameters_still_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let small = Params::new(1024, 1, 1, None).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, small)
            .hash_password(b"old password")
            .unwrap()
            .to_string();
        let mut area = work_area(&params());
        assert!(verify_with("old password", &phc, &mut area).unwrap());
        assert!(!verify_with("new password", &phc, &mut area).unwrap());
    }
}
