//! Access tokens of an identity provider (`JWT_JWKS_URL`): verified with the public keys it
//! publishes as a JWK set, fetched at start-up and again when a token names a key we do not
//! have (the provider rotated), or when ours are an hour old.
//!
//! Each key is used only with its own algorithm, one of RS256, ES256 and EdDSA (from the
//! key's `alg`, or its type and curve): a token cannot choose a weaker one, nor HMAC with a
//! public key as the secret. Unknown key ids make us fetch at most every
//! `JWT_JWKS_REFETCH_SECONDS`, so a stream of made-up ids costs the provider nothing.
use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
};
use serde::Deserialize;

use super::{LEEWAY_SECONDS, TokenError, is_expired};
use crate::config::ExternalTokensConfig;

/// Providers put more claims in a token than we do (groups, scopes, profile).
pub const MAX_EXTERNAL_TOKEN_BYTES: usize = 8192;

/// A provider's key set is a few keys of a few hundred bytes each.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Keys older than this are fetched again at the next token: a key the provider withdrew
/// stops working within the hour.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What we read of a provider's token.
#[derive(Debug, Deserialize)]
pub struct ExternalClaims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    pub preferred_username: Option<String>,
}

pub struct KeySet {
    url: String,
    issuer: String,
    audience: String,
    /// The least time between two fetches of the key set.
    refetch_after: Duration,
    client: reqwest::Client,
    keys: RwLock<Keys>,
    /// One fetch at a time; the others wait for its keys.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Keys {
    by_id: HashMap<String, (DecodingKey, Algorithm)>,
    /// When the set was last asked for (successfully or not).
    fetched_at: Option<Instant>,
}

impl KeySet {
    pub fn new(config: &ExternalTokensConfig) -> anyhow::Result<Self> {
        Ok(Self {
            url: config.jwks_url.clone(),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            refetch_after: config.refetch_after,
            client: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .context("HTTP client for JWT_JWKS_URL")?,
            keys: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Fetches the keys now (at start-up); a failure is logged, and tokens are refused until
    /// a later fetch succeeds.
    pub async fn prefetch(&self) {
        self.refetch(true).await;
    }

    /// Whether the token says it comes from the provider. Read before any check, only to
    /// choose which keys check it.
    pub fn claims_issuer(token: &str) -> Option<String> {
        if token.len() > MAX_EXTERNAL_TOKEN_BYTES {
            return None;
        }
        #[derive(Deserialize)]
        struct Issuer {
            iss: Option<String>,
        }
        jsonwebtoken::dangerous::insecure_decode_claims::<Issuer>(token)
            .ok()
            .and_then(|claims| claims.iss)
    }

    pub async fn verify(&self, token: &str) -> Result<ExternalClaims, TokenError> {
        if token.len() > MAX_EXTERNAL_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        if self.is_stale() {
            self.refetch(false).await;
        }
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refetch(false).await;
                self.key(&kid).ok_or(TokenError::Invalid)?
            }
        };
        let (decoding, algorithm) = key;
        if header.alg != algorithm {
            return Err(TokenError::Invalid);
        }
        let claims = decode::<ExternalClaims>(token, &decoding, &self.validation(algorithm))
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if is_expired(claims.exp) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        // Exact, as for ours (`token::is_expired`).
        validation.validate_exp = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation
    }

    fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.by_id.get(kid).cloned()
    }

    fn is_stale(&self) -> bool {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.fetched_at.is_none_or(|at| at.elapsed() > KEYS_MAX_AGE)
    }

    /// Fetches the set again unless it was asked for within `refetch_after` (or `force`).
    /// A failure keeps the keys we have.
    async fn refetch(&self, force: bool) {
        let _turn = self.fetching.lock().await;
        let recent = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            keys.fetched_at
                .is_some_and(|at| at.elapsed() < self.refetch_after)
        };
        if recent && !force {
            return;
        }
        let fetched = self.fetch().await;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.fetched_at = Some(Instant::now());
        match fetched {
            Ok(by_id) => {
                tracing::info!(keys = by_id.len(), "fetched the identity provider's keys");
                keys.by_id = by_id;
            }
            Err(err) => {
                metrics::counter!("auth_jwks_fetch_failures_total").increment(1);
                tracing::warn!(error = format!("{err:#}"), url = %self.url, "fetching JWT_JWKS_URL failed");
            }
        }
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, (DecodingKey, Algorithm)>> {
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                bail!("the key set is over {MAX_JWKS_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set = serde_json::from_slice(&body).context("not a JWK set")?;
        // A key we cannot use is skipped, not a reason to use none of them.
        let mut by_id = HashMap::new();
        for value in set.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if let (Some(kid), Some(algorithm)) = (&jwk.common.key_id, signing_algorithm(&jwk))
                && let Ok(key) = DecodingKey::from_jwk(&jwk)
            {
                by_id.insert(kid.clone(), (key, algorithm));
            }
        }
        Ok(by_id)
    }
}

/// The one algorithm a key verifies with: its `alg` if it names one we accept, else what its
/// type and curve imply. Encryption keys and symmetric keys are never used.
fn signing_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(named) if named == KeyAlgorithm::from(implied) => Some(implied),
        Some(_) => None,
    }
}
