//! Access tokens: short-lived JWTs. Verification pins the one configured algorithm (so neither
//! `alg: none` nor an HS256 token signed with our public Ed25519 key gets through), requires
//! every claim we rely on, and allows a few seconds of clock skew for `nbf` (a token issued by
//! an instance whose clock is a little ahead works at once everywhere).
//!
//! `exp` is exact, to the millisecond: a token is refused from that instant on, over HTTP and
//! over a socket alike (which closes then, see `http::ws`). A skewed verifier refuses a token
//! a moment early, which clients already handle: they refresh before `expiresIn` runs out.
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    config::{AuthConfig, SigningConfig},
    entity::user::Role,
};

/// Clock skew tolerated between instances for `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 5;

/// Our tokens are about 400 bytes. A longer one is refused before it is decoded: its length
/// is the client's to choose.
pub const MAX_TOKEN_BYTES: usize = 2048;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The session id: revoking the session revokes the token.
    pub sid: Uuid,
    pub role: Role,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    /// Unique per token, so two tokens issued in the same second still differ.
    pub jti: Uuid,
}

/// Why a token was refused; the text is what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("invalid access token")]
    Invalid,
}

pub struct TokenKeys {
    /// SHA-256 of the signing key material: what `derive_key` derives the server's other
    /// secrets from, so that every instance configured alike derives the same ones.
    master: [u8; 32],
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl: Duration,
}

impl TokenKeys {
    /// Builds the keys; with HS256 and no secret, `generated` supplies one for this run.
    pub fn new(config: &AuthConfig, generated: impl FnOnce() -> Vec<u8>) -> anyhow::Result<Self> {
        let (master, algorithm, encoding, decoding) = match &config.signing {
            SigningConfig::Hs256(secret) => {
                let bytes = match secret {
                    Some(s) => s.expose_secret().as_bytes().to_vec(),
                    None => generated(),
                };
                (
                    Sha256::digest(&bytes).into(),
                    Algorithm::HS256,
                    EncodingKey::from_secret(&bytes),
                    DecodingKey::from_secret(&bytes),
                )
            }
            SigningConfig::EdDsa {
                private_key,
                public_key,
            } => {
                let private = std::fs::read(private_key)
                    .with_context(|| format!("read {}", private_key.display()))?;
                let public = std::fs::read(public_key)
                    .with_context(|| format!("read {}", public_key.display()))?;
                (
                    Sha256::digest(&private).into(),
                    Algorithm::EdDSA,
                    EncodingKey::from_ed_pem(&private).context("JWT_PRIVATE_KEY_FILE")?,
                    DecodingKey::from_ed_pem(&public).context("JWT_PUBLIC_KEY_FILE")?,
                )
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        // In whole seconds and with the leeway: checked in `verify` instead, exactly.
        validation.validate_exp = false;
        validation.set_issuer(&[&config.issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "sub"]);
        Ok(Self {
            master,
            algorithm,
            encoding,
            decoding,
            validation,
            issuer: config.issuer.clone(),
            ttl: config.access_token_ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A key of its own for `purpose` (a fixed label), derived from the signing key: secret as
    /// long as that is, and the same on every instance that shares it.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.master).expect("HMAC takes any key");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// An access token issued at `issued_at` with id `jti`. Both come from the refresh token it
    /// is issued with, so issuing again for that refresh token gives the very same token.
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: Role,
        issued_at: i64,
        jti: Uuid,
    ) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id,
            sid: session_id,
            role,
            iat: issued_at,
            nbf: issued_at,
            exp: issued_at + self.ttl.as_secs() as i64,
            iss: self.issuer.clone(),
            jti,
        };
        encode(&Header::new(self.algorithm), &claims, &self.encoding).context("sign access token")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if is_expired(claims.exp) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Whether a token with this `exp` (seconds since the epoch) is refused now: from that very
/// instant, whichever transport asks.
pub fn is_expired(exp: i64) -> bool {
    chrono::Utc::now().timestamp_millis() >= exp.saturating_mul(1000)
}
