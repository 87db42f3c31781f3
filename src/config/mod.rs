//! Typed settings, read once from the environment (and an optional `.env`) by `main` and passed
//! down. Nothing deeper in the crate reads environment variables; tests build a `Config` directly.
//!
//! `variables::VARIABLES` is the one list of variables: each name with how it is read and
//! checked. `from_lookup` and `validate` walk it; README.md's Configuration table must list the
//! same names (a test in `variables` compares them).
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::SecretString;

mod variables;
use variables::VARIABLES;

/// `APP_ENV`: production refuses to start with a generated or weak secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub bind_addr: SocketAddr,
    pub database: DatabaseConfig,
    pub broker: BrokerConfig,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub ws: WsConfig,
    pub chat: ChatConfig,
    pub mail: MailConfig,
    pub graphql: GraphqlConfig,
    pub limits: RateLimits,
    pub log_format: LogFormat,
    /// On SIGTERM/SIGINT: how long in-flight requests and closing sockets get before exit.
    pub shutdown_grace: Duration,
}

/// What one GraphQL document may ask for. The defaults are far above what the playground
/// and real clients send (GraphiQL's introspection query: depth 14, nesting 16, complexity
/// under 300, about 300 tokens, no aliases or directives).
#[derive(Debug, Clone)]
pub struct GraphqlConfig {
    /// The deepest `{`, `[` and `(` may nest in a document's text, or its selections once
    /// fragments are expanded. Checked before parsing: the parser recurses once per level.
    pub max_nesting: usize,
    /// Tokens in one document: bounds parsing and every walk over the parsed document.
    pub max_tokens: usize,
    pub max_depth: usize,
    /// Each field costs 1; a paginated field costs its page size times its selection.
    pub max_complexity: usize,
    pub max_aliases: usize,
    /// Directives in one document (each repeated one is an error of its own).
    pub max_directives: usize,
    /// Operations in one batch (a JSON array body).
    pub max_batch: usize,
    /// `__schema` and `__type` (`__typename` always works). Off by default in production.
    pub introspection: bool,
    /// Distinct documents kept parsed, by the sha256 of their text: the store that automatic
    /// persisted queries find a hash in. 0 keeps none, which turns them off.
    pub document_cache: usize,
    /// An allow-list (`PERSISTED_OPERATIONS_FILE`): a JSON object of sha256 → document, read
    /// and checked at start. With it, no other document runs.
    pub persisted_operations: Option<PathBuf>,
}

/// Requests per minute, per key, in a burst or spread out; 0 disables a limit.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Password tries per account from one client address (IPv6: one /64).
    pub login_per_account_ip: u32,
    /// Password tries per account from everywhere: looser, against guessing from many places.
    pub login_per_account: u32,
    pub login_per_ip: u32,
    pub register_per_ip: u32,
    pub refresh_per_ip: u32,
    pub refresh_per_user: u32,
    pub send_per_user: u32,
    pub send_per_ip: u32,
    /// Mutation fields executed (every write, whatever it is) per user and per address.
    pub write_per_user: u32,
    pub write_per_ip: u32,
    /// `searchUsers` calls per user.
    pub search_per_user: u32,
    /// `searchMessages` calls (each page) per user.
    pub message_search_per_user: u32,
    /// `requestPasswordReset` calls per address asked about, and per client address.
    pub password_reset_per_email: u32,
    pub password_reset_per_ip: u32,
    /// Verification mails (`register` aside) per user.
    pub verification_per_user: u32,
}

impl RateLimits {
    /// No limits at all (load tests from one address).
    pub fn unlimited() -> Self {
        Self {
            login_per_account_ip: 0,
            login_per_account: 0,
            login_per_ip: 0,
            register_per_ip: 0,
            refresh_per_ip: 0,
            refresh_per_user: 0,
            send_per_user: 0,
            send_per_ip: 0,
            write_per_user: 0,
            write_per_ip: 0,
            search_per_user: 0,
            message_search_per_user: 0,
            password_reset_per_email: 0,
            password_reset_per_ip: 0,
            verification_per_user: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WsConfig {
    /// How long a new socket has to send `connection_init` (then 4408).
    pub init_timeout: Duration,
    /// How often the server pings an idle socket, so that proxies keep it open.
    pub keepalive: Duration,
    /// Subscriptions one socket may hold at once (0: no limit).
    pub max_subscriptions: usize,
    /// Messages a subscriber may fall behind its room before its socket is closed (1013) and
    /// its client resumes with `after`: what the server buffers per room for slow readers.
    pub subscriber_buffer: usize,
    /// Sockets one user may hold at once on this instance (0: no limit).
    pub max_sockets_per_user: usize,
    /// A write to a socket that takes longer than this means the client stopped reading:
    /// the socket is dropped rather than left holding the server's memory.
    pub send_timeout: Duration,
}

/// What conversations cost and how long what is live lasts.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// How long "typing" lasts without a renewal (`setTyping`) before it ends by itself.
    pub typing_timeout: Duration,
    /// How long a user stays online after their instance last renewed it (every third of
    /// this): the longest an instance that died leaves its users online.
    pub presence_ttl: Duration,
    /// Rooms with more members than this answer `readBy` with null: receipts cost a row per
    /// member, and in a large room nobody reads the list.
    pub receipts_max_members: u64,
    /// Users who have not verified their email address cannot send messages.
    pub require_verified_email: bool,
}

/// Outgoing mail (see `mail`).
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://`, `smtps://` (TLS) or `smtp://…?tls=required` (STARTTLS), with credentials
    /// in the URL; `None` writes mails to `outbox_dir` instead. Kept out of `Debug` output.
    pub smtp_url: Option<SecretString>,
    /// The sender, as `Name <address>` or a bare address.
    pub from: String,
    pub outbox_dir: PathBuf,
    /// Where the app that opens mailed links lives: links are `{app_url}/verify-email?token=…`
    /// and `{app_url}/reset-password?token=…`. Without it, mails carry the bare token.
    pub app_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// May hold a password, so it is kept out of `Debug` output.
    pub url: SecretString,
    pub max_connections: u32,
    /// Connections kept open even when idle: opening one costs tens of milliseconds, which
    /// a request should not wait for.
    pub min_connections: u32,
    /// Postgres: after this long without a notification the listening connection checks
    /// itself, and one that does not answer within as long again is replaced.
    pub listen_heartbeat: Duration,
}

/// How instances tell each other what happened. Unset, Postgres's LISTEN/NOTIFY (or, on
/// SQLite, nothing: one instance).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `nats://host:4222` (or `tls://`), several separated by commas, credentials in the URL
    /// allowed: NATS carries events, each instance hearing only the rooms and users it serves.
    /// Kept out of `Debug` output.
    pub url: Option<SecretString>,
    /// A NATS `.creds` file (a user JWT and its NKey seed).
    pub nats_credentials: Option<PathBuf>,
    /// A PEM file of the CAs that sign the NATS servers' certificates (else the system's).
    pub nats_ca: Option<PathBuf>,
    /// Announcements held per followed subject for an instance that is busy; past that NATS
    /// drops them and the instance catches up from the database.
    pub nats_buffer: usize,
    /// The first token of every subject: deployments sharing a NATS cluster do not hear
    /// each other.
    pub subject_prefix: String,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub signing: SigningConfig,
    pub issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long after a refresh the token it used still gets the same answer (two tabs
    /// refreshing at once, an answer lost on the way) instead of revoking the session.
    pub refresh_reuse_interval: Duration,
    /// How often expired refresh tokens and finished sessions are deleted.
    pub purge_interval: Duration,
    /// Concurrent Argon2 computations; each takes a core for ~20 ms and 19 MiB.
    pub hash_concurrency: usize,
    /// How long a mailed verification link works.
    pub verification_ttl: Duration,
    /// How long a mailed password-reset link works.
    pub password_reset_ttl: Duration,
    /// An identity provider whose access tokens are accepted too.
    pub external: Option<ExternalTokensConfig>,
}

/// An identity provider (`JWT_JWKS_URL`): its tokens are verified with the keys it publishes,
/// and must name it (`iss`) and us (`aud`).
#[derive(Debug, Clone)]
pub struct ExternalTokensConfig {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    /// The least time between two fetches of its keys, however many unknown key ids come.
    pub refetch_after: Duration,
}

impl ExternalTokensConfig {
    pub fn new(jwks_url: String) -> Self {
        Self {
            jwks_url,
            issuer: String::new(),
            audience: String::new(),
            refetch_after: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub enum SigningConfig {
    /// HS256 with this secret; `None` means "generate one for this run" (development only).
    Hs256(Option<SecretString>),
    /// EdDSA (Ed25519) with PEM key files.
    EdDsa {
        private_key: PathBuf,
        public_key: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `None` allows any origin, without credentials: a page of another origin can only use
    /// bearer tokens, which it must hold already, so a permissive policy lends it nothing.
    /// With a list and `auth_cookies`, those origins (only) may send the cookie.
    pub cors_origins: Option<Vec<String>>,
    /// Browser sessions: the refresh token also in an `HttpOnly` cookie (see `http::cookie`).
    pub auth_cookies: bool,
    pub max_body_bytes: usize,
    /// Take the client address from the last `X-Forwarded-For` hop (behind one trusted proxy).
    pub trust_forwarded_for: bool,
    /// Serve `/metrics` on this address instead of beside the API (a private interface that
    /// Prometheus scrapes).
    pub metrics_addr: Option<SocketAddr>,
    /// The GraphiQL playground on `GET /graphql` and its files under `/playground/`. Off by
    /// default in production.
    pub playground: bool,
}

/// The most `GRAPHQL_MAX_NESTING` may be set to. Parsing and validating a document take stack
/// in proportion to its nesting: about 7 KiB a level in a debug build and 2 KiB in a release
/// build (nested input objects, the costliest form, measured), so 256 levels take under
/// 2 MiB of a runtime thread's 8 MiB (see `main`).
pub const MAX_NESTING_LIMIT: usize = 256;

/// The shortest HS256 secret we accept: 256 bits, the size of the HMAC-SHA256 key.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Default for Config {
    /// Development defaults: what `cargo run` uses on a fresh machine.
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database: DatabaseConfig {
                url: SecretString::from("sqlite://chat.db?mode=rwc"),
                max_connections: 16,
                min_connections: 2,
                listen_heartbeat: Duration::from_secs(5),
            },
            broker: BrokerConfig {
                url: None,
                nats_credentials: None,
                nats_ca: None,
                nats_buffer: 8192,
                subject_prefix: "chat".into(),
            },
            auth: AuthConfig {
                signing: SigningConfig::Hs256(None),
                issuer: "chat-server".into(),
                access_token_ttl: Duration::from_secs(900),
                refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
                refresh_reuse_interval: Duration::from_secs(10),
                purge_interval: Duration::from_secs(3600),
                hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
                verification_ttl: Duration::from_secs(24 * 3600),
                password_reset_ttl: Duration::from_secs(3600),
                external: None,
            },
            http: HttpConfig {
                cors_origins: None,
                auth_cookies: false,
                max_body_bytes: 1024 * 1024,
                trust_forwarded_for: false,
                metrics_addr: None,
                playground: true,
            },
            ws: WsConfig {
                init_timeout: Duration::from_secs(10),
                keepalive: Duration::from_secs(15),
                max_subscriptions: 100,
                subscriber_buffer: 1024,
                max_sockets_per_user: 20,
                send_timeout: Duration::from_secs(10),
            },
            chat: ChatConfig {
                typing_timeout: Duration::from_secs(6),
                presence_ttl: Duration::from_secs(30),
                receipts_max_members: 100,
                require_verified_email: false,
            },
            mail: MailConfig {
                smtp_url: None,
                from: "chat-server <no-reply@localhost>".into(),
                outbox_dir: PathBuf::from("mail"),
                app_url: None,
            },
            graphql: GraphqlConfig {
                max_nesting: 64,
                max_tokens: 10_000,
                max_depth: 20,
                max_complexity: 5000,
                max_aliases: 50,
                max_directives: 50,
                max_batch: 16,
                introspection: true,
                document_cache: 1024,
                persisted_operations: None,
            },
            limits: RateLimits {
                login_per_account_ip: 10,
                login_per_account: 100,
                login_per_ip: 60,
                register_per_ip: 20,
                refresh_per_ip: 120,
                refresh_per_user: 60,
                send_per_user: 120,
                send_per_ip: 600,
                write_per_user: 300,
                write_per_ip: 1200,
                search_per_user: 60,
                message_search_per_user: 30,
                password_reset_per_email: 3,
                password_reset_per_ip: 20,
                verification_per_user: 3,
            },
            log_format: LogFormat::Pretty,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Defaults, overridden by `.env` (if present), overridden by the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is the normal case; a malformed one is worth failing on.
        if let Err(err) = dotenvy::dotenv()
            && !err.not_found()
        {
            return Err(invalid(".env", err.to_string()));
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The parsing behind `from_env`, over any source of variables.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        for variable in VARIABLES {
            // Empty or only whitespace counts as unset.
            let value = var(variable.name).filter(|v| !v.trim().is_empty());
            (variable.read)(&mut config, value.as_deref())
                .map_err(|reason| invalid(variable.name, reason))?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks that hold however the config was built; `startup` calls it before serving.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for variable in VARIABLES {
            if let Some(check) = variable.check {
                check(self).map_err(|reason| invalid(variable.name, reason))?;
            }
        }
        Ok(())
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_development_on_sqlite() {
        let config = from(&[]).unwrap();
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
        assert_eq!(
            config.auth.refresh_token_ttl,
            Duration::from_secs(2_592_000)
        );
        assert!(matches!(config.auth.signing, SigningConfig::Hs256(None)));
        assert!(config.graphql.introspection);
    }

    #[test]
    fn production_hides_the_schema_unless_asked() {
        let secret = "x".repeat(32);
        let prod = [("APP_ENV", "production"), ("JWT_SECRET", secret.as_str())];
        assert!(!from(&prod).unwrap().graphql.introspection);
        let with = [prod[0], prod[1], ("GRAPHQL_INTROSPECTION", "true")];
        assert!(from(&with).unwrap().graphql.introspection);
    }

    #[test]
    fn production_has_no_playground_unless_asked() {
        assert!(from(&[]).unwrap().http.playground);
        assert!(!from(&[("PLAYGROUND", "false")]).unwrap().http.playground);
        let secret = "x".repeat(32);
        let prod = [("APP_ENV", "production"), ("JWT_SECRET", secret.as_str())];
        assert!(!from(&prod).unwrap().http.playground);
        let with = [prod[0], prod[1], ("PLAYGROUND", "true")];
        assert!(from(&with).unwrap().http.playground);
        let err = from(&[("PLAYGROUND", "yes please")]).unwrap_err();
        assert!(err.to_string().starts_with("PLAYGROUND: "), "{err}");
    }

    #[test]
    fn rate_limits_and_query_limits_are_read() {
        let config = from(&[("SEND_RATE_PER_USER", "0"), ("GRAPHQL_MAX_DEPTH", "7")]).unwrap();
        assert_eq!(config.limits.send_per_user, 0);
        assert_eq!(config.graphql.max_depth, 7);
        let err = from(&[("GRAPHQL_MAX_DEPTH", "0")]).unwrap_err();
        assert!(err.to_string().starts_with("GRAPHQL_MAX_DEPTH"), "{err}");
    }

    #[test]
    fn nesting_is_bounded_on_both_sides() {
        assert_eq!(
            from(&[("GRAPHQL_MAX_NESTING", "256")])
                .unwrap()
                .graphql
                .max_nesting,
            256
        );
        for (vars, wanted) in [
            (vec![("GRAPHQL_MAX_NESTING", "257")], "must be at most 256"),
            (vec![("GRAPHQL_MAX_NESTING", "0")], "must be positive"),
            (
                vec![("GRAPHQL_MAX_NESTING", "30"), ("GRAPHQL_MAX_DEPTH", "31")],
                "must be at least GRAPHQL_MAX_DEPTH",
            ),
        ] {
            let err = from(&vars).unwrap_err().to_string();
            assert_eq!(err, format!("GRAPHQL_MAX_NESTING: {wanted}"));
        }
    }

    #[test]
    fn documents_are_cached_unless_asked_not_to_and_an_allow_list_is_a_path() {
        let config = from(&[]).unwrap();
        assert_eq!(config.graphql.document_cache, 1024);
        assert_eq!(config.graphql.persisted_operations, None);
        let config = from(&[
            ("GRAPHQL_DOCUMENT_CACHE", "0"),
            ("PERSISTED_OPERATIONS_FILE", "web/persisted-documents.json"),
        ])
        .unwrap();
        assert_eq!(config.graphql.document_cache, 0);
        // The file is read at start (`startup`), not here: this one need not exist.
        assert_eq!(
            config.graphql.persisted_operations,
            Some(PathBuf::from("web/persisted-documents.json"))
        );
        let err = from(&[("GRAPHQL_DOCUMENT_CACHE", "-1")]).unwrap_err();
        assert!(
            err.to_string().starts_with("GRAPHQL_DOCUMENT_CACHE: "),
            "{err}"
        );
    }

    #[test]
    fn production_requires_a_secret() {
        let err = from(&[("APP_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        let ok = from(&[("APP_ENV", "production"), ("JWT_SECRET", &"x".repeat(32))]);
        assert!(ok.is_ok());
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = from(&[("JWT_SECRET", "short")]).unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
    }

    #[test]
    fn cors_list_is_split() {
        let config = from(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, https://b.example",
        )])
        .unwrap();
        assert_eq!(
            config.http.cors_origins,
            Some(vec!["https://a.example".into(), "https://b.example".into()])
        );
    }
}
