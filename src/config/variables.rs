//! The one list of environment variables: each one's name, how its value is read into a
//! `Config`, and what `Config::validate` checks of the field it sets. Adding a variable is
//! adding an entry here and a row to README.md's Configuration table (a test holds the two
//! equal).
use std::{path::PathBuf, str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use super::{
    BrokerConfig, Config, Environment, ExternalTokensConfig, LogFormat, MAX_NESTING_LIMIT,
    MIN_SECRET_BYTES, SigningConfig,
};

pub(super) struct Variable {
    pub name: &'static str,
    pub read: Read,
    pub check: Option<Check>,
}

/// Reads a value into the config: `None` when the variable is unset or blank, which keeps the
/// default for all but a few. Every entry is read, in the table's order, so an entry may depend
/// on one above it. An `Err` is the reason, which the caller prefixes with the variable's name.
pub(super) type Read = fn(&mut Config, Option<&str>) -> Result<(), String>;

/// What `Config::validate` requires of the variable's field, however the config was built;
/// an `Err` as for `Read`.
pub(super) type Check = fn(&Config) -> Result<(), String>;

const fn var(name: &'static str, read: Read) -> Variable {
    Variable {
        name,
        read,
        check: None,
    }
}

impl Variable {
    const fn checked(self, check: Check) -> Self {
        Self {
            check: Some(check),
            ..self
        }
    }
}

/// Read in this order, then checked in it: of several bad values, the first here is reported.
/// A table, so laid out by hand: one line for each plain variable.
#[rustfmt::skip]
pub(super) const VARIABLES: &[Variable] = &[
    var("APP_ENV", |c, v| {
        let choices = [
            (&["development", "dev"][..], Environment::Development),
            (&["production", "prod"], Environment::Production),
        ];
        choose(&mut c.environment, v, &choices)
    }),
    var("BIND_ADDR", |c, v| set(&mut c.bind_addr, v)),
    var("DATABASE_URL", |c, v| set_with(&mut c.database.url, v, |v| Ok(v.into()))),
    var("DATABASE_MAX_CONNECTIONS", |c, v| set(&mut c.database.max_connections, v))
        .checked(|c| positive(&c.database.max_connections)),
    var("DATABASE_MIN_CONNECTIONS", |c, v| set(&mut c.database.min_connections, v))
        .checked(|c| match c.database.min_connections > c.database.max_connections {
            true => Err("must not exceed DATABASE_MAX_CONNECTIONS".into()),
            false => Ok(()),
        }),
    var("DATABASE_LISTEN_HEARTBEAT_SECONDS", |c, v| seconds(&mut c.database.listen_heartbeat, v))
        .checked(|c| positive(&c.database.listen_heartbeat)),
    var("BROKER_URL", |c, v| set_with(&mut c.broker.url, v, nats_urls))
        .checked(|c| match (&c.broker.url, c.database.url.expose_secret().starts_with("postgres")) {
            (Some(_), false) => Err("needs a Postgres DATABASE_URL: a cluster shares one database".into()),
            _ => Ok(()),
        }),
    var("BROKER_NATS_CREDENTIALS_FILE", |c, v| nats_option(c, v, |b, v| b.nats_credentials = Some(v.into()))),
    var("BROKER_NATS_CA_FILE", |c, v| nats_option(c, v, |b, v| b.nats_ca = Some(v.into()))),
    var("BROKER_NATS_BUFFER", |c, v| set(&mut c.broker.nats_buffer, v))
        .checked(|c| positive(&c.broker.nats_buffer)),
    var("BROKER_NATS_SUBJECT_PREFIX", |c, v| set_with(&mut c.broker.subject_prefix, v, subject_prefix)),
    // The algorithm decides which of the three below apply: the secret with HS256, the key
    // files with EdDSA. The others are ignored.
    var("JWT_ALGORITHM", |c, v| {
        c.auth.signing = match v.unwrap_or("HS256") {
            "HS256" => SigningConfig::Hs256(None),
            // Placeholders, each filled in by its entry below or refused there.
            "EdDSA" => SigningConfig::EdDsa {
                private_key: PathBuf::new(),
                public_key: PathBuf::new(),
            },
            _ => return Err("expected HS256 or EdDSA".into()),
        };
        Ok(())
    }),
    var("JWT_SECRET", |c, v| {
        if let SigningConfig::Hs256(secret) = &mut c.auth.signing {
            *secret = v.map(SecretString::from);
        }
        Ok(())
    })
    .checked(|c| match &c.auth.signing {
        SigningConfig::Hs256(None) if c.environment == Environment::Production => {
            Err("required when APP_ENV=production".into())
        }
        SigningConfig::Hs256(Some(s)) if s.expose_secret().len() < MIN_SECRET_BYTES => {
            Err(format!("must be at least {MIN_SECRET_BYTES} bytes"))
        }
        _ => Ok(()),
    }),
    var("JWT_PRIVATE_KEY_FILE", |c, v| match &mut c.auth.signing {
        SigningConfig::EdDsa { private_key, .. } => key_file(private_key, v),
        SigningConfig::Hs256(_) => Ok(()),
    }),
    var("JWT_PUBLIC_KEY_FILE", |c, v| match &mut c.auth.signing {
        SigningConfig::EdDsa { public_key, .. } => key_file(public_key, v),
        SigningConfig::Hs256(_) => Ok(()),
    }),
    var("JWT_ISSUER", |c, v| set_with(&mut c.auth.issuer, v, |v| Ok(v.into()))),
    // An identity provider: the URL turns it on, and then both others are required.
    var("JWT_JWKS_URL", |c, v| {
        set_with(&mut c.auth.external, v, |v| match v.trim() {
            url if url.starts_with("https://") || url.starts_with("http://") => {
                Ok(Some(ExternalTokensConfig::new(url.into())))
            }
            _ => Err("expected an http:// or https:// URL".into()),
        })
    }),
    var("JWT_EXTERNAL_ISSUER", |c, v| external(c, v, |e| &mut e.issuer))
        .checked(|c| match &c.auth.external {
            Some(e) if e.issuer.is_empty() => Err("required with JWT_JWKS_URL".into()),
            // Tokens go to the provider's keys or ours by their `iss`.
            Some(e) if e.issuer == c.auth.issuer => Err("must differ from JWT_ISSUER".into()),
            _ => Ok(()),
        }),
    var("JWT_EXTERNAL_AUDIENCE", |c, v| external(c, v, |e| &mut e.audience))
        .checked(|c| match &c.auth.external {
            Some(e) if e.audience.is_empty() => Err("required with JWT_JWKS_URL".into()),
            _ => Ok(()),
        }),
    var("JWT_JWKS_REFETCH_SECONDS", |c, v| match (&mut c.auth.external, v) {
        (Some(e), v) => seconds(&mut e.refetch_after, v),
        (None, None) => Ok(()),
        (None, Some(_)) => Err("needs JWT_JWKS_URL".into()),
    })
    .checked(|c| c.auth.external.as_ref().map_or(Ok(()), |e| positive(&e.refetch_after))),
    var("ACCESS_TOKEN_TTL_SECONDS", |c, v| seconds(&mut c.auth.access_token_ttl, v))
        .checked(|c| positive(&c.auth.access_token_ttl)),
    var("REFRESH_TOKEN_TTL_SECONDS", |c, v| seconds(&mut c.auth.refresh_token_ttl, v))
        .checked(|c| positive(&c.auth.refresh_token_ttl)),
    var("REFRESH_TOKEN_REUSE_INTERVAL_SECONDS", |c, v| {
        seconds(&mut c.auth.refresh_reuse_interval, v)
    }),
    var("SESSION_PURGE_INTERVAL_SECONDS", |c, v| seconds(&mut c.auth.purge_interval, v))
        .checked(|c| positive(&c.auth.purge_interval)),
    var("PASSWORD_HASH_CONCURRENCY", |c, v| set(&mut c.auth.hash_concurrency, v))
        .checked(|c| positive(&c.auth.hash_concurrency)),
    var("EMAIL_VERIFICATION_TTL_SECONDS", |c, v| seconds(&mut c.auth.verification_ttl, v))
        .checked(|c| positive(&c.auth.verification_ttl)),
    var("PASSWORD_RESET_TTL_SECONDS", |c, v| seconds(&mut c.auth.password_reset_ttl, v))
        .checked(|c| positive(&c.auth.password_reset_ttl)),
    var("SMTP_URL", |c, v| set_with(&mut c.mail.smtp_url, v, |v| Ok(Some(v.into()))))
        .checked(|c| match &c.mail.smtp_url {
            Some(url) => lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(
                url.expose_secret(),
            )
            .map(drop)
            // Not the URL itself: it may hold a password.
            .map_err(|_| "expected smtp://[user:password@]host[:port][?tls=required] or smtps://…".into()),
            None => Ok(()),
        }),
    var("MAIL_FROM", |c, v| set_with(&mut c.mail.from, v, |v| Ok(v.into())))
        .checked(|c| match c.mail.from.parse::<lettre::message::Mailbox>() {
            Ok(_) => Ok(()),
            Err(err) => Err(format!("expected `Name <address>` or an address: {err}")),
        }),
    var("MAIL_OUTBOX_DIR", |c, v| set_with(&mut c.mail.outbox_dir, v, |v| Ok(v.into()))),
    var("APP_URL", |c, v| set_with(&mut c.mail.app_url, v, |v| Ok(Some(v.trim().into()))))
        .checked(|c| match &c.mail.app_url {
            Some(url) if !url.starts_with("https://") && !url.starts_with("http://") => {
                Err("expected an http:// or https:// URL".into())
            }
            _ => Ok(()),
        }),
    // Rate limits: 0 disables one.
    var("LOGIN_RATE_PER_ACCOUNT_IP", |c, v| set(&mut c.limits.login_per_account_ip, v)),
    var("LOGIN_RATE_PER_ACCOUNT", |c, v| set(&mut c.limits.login_per_account, v)),
    var("LOGIN_RATE_PER_IP", |c, v| set(&mut c.limits.login_per_ip, v)),
    var("REGISTER_RATE_PER_IP", |c, v| set(&mut c.limits.register_per_ip, v)),
    var("REFRESH_RATE_PER_IP", |c, v| set(&mut c.limits.refresh_per_ip, v)),
    var("REFRESH_RATE_PER_USER", |c, v| set(&mut c.limits.refresh_per_user, v)),
    var("SEND_RATE_PER_USER", |c, v| set(&mut c.limits.send_per_user, v)),
    var("SEND_RATE_PER_IP", |c, v| set(&mut c.limits.send_per_ip, v)),
    var("WRITE_RATE_PER_USER", |c, v| set(&mut c.limits.write_per_user, v)),
    var("WRITE_RATE_PER_IP", |c, v| set(&mut c.limits.write_per_ip, v)),
    var("SEARCH_RATE_PER_USER", |c, v| set(&mut c.limits.search_per_user, v)),
    var("MESSAGE_SEARCH_RATE_PER_USER", |c, v| set(&mut c.limits.message_search_per_user, v)),
    var("PASSWORD_RESET_RATE_PER_EMAIL", |c, v| set(&mut c.limits.password_reset_per_email, v)),
    var("PASSWORD_RESET_RATE_PER_IP", |c, v| set(&mut c.limits.password_reset_per_ip, v)),
    var("VERIFICATION_MAIL_RATE_PER_USER", |c, v| set(&mut c.limits.verification_per_user, v)),
    // A list, or `*` for any origin (as when unset).
    var("CORS_ALLOWED_ORIGINS", |c, v| {
        set_with(&mut c.http.cors_origins, v, |v| {
            Ok(match v.trim() {
                "*" => None,
                list => Some(list.split(',').map(|o| o.trim().to_owned()).collect()),
            })
        })
    }),
    var("AUTH_COOKIES", |c, v| set(&mut c.http.auth_cookies, v)),
    var("MAX_BODY_BYTES", |c, v| set(&mut c.http.max_body_bytes, v)),
    var("TRUST_FORWARDED_FOR", |c, v| set(&mut c.http.trust_forwarded_for, v)),
    var("METRICS_ADDR", |c, v| set_with(&mut c.http.metrics_addr, v, |v| parse(v).map(Some))),
    // A page for people to try the API in; production serves clients, not people.
    var("PLAYGROUND", |c, v| {
        c.http.playground = match v {
            Some(v) => parse(v)?,
            None => c.environment == Environment::Development,
        };
        Ok(())
    }),
    var("WS_INIT_TIMEOUT_SECONDS", |c, v| seconds(&mut c.ws.init_timeout, v))
        .checked(|c| positive(&c.ws.init_timeout)),
    var("WS_KEEPALIVE_SECONDS", |c, v| seconds(&mut c.ws.keepalive, v))
        .checked(|c| positive(&c.ws.keepalive)),
    var("WS_MAX_SUBSCRIPTIONS", |c, v| set(&mut c.ws.max_subscriptions, v)),
    var("WS_SUBSCRIBER_BUFFER", |c, v| set(&mut c.ws.subscriber_buffer, v))
        .checked(|c| positive(&c.ws.subscriber_buffer)),
    var("WS_MAX_SOCKETS_PER_USER", |c, v| set(&mut c.ws.max_sockets_per_user, v)),
    var("WS_SEND_TIMEOUT_SECONDS", |c, v| seconds(&mut c.ws.send_timeout, v))
        .checked(|c| positive(&c.ws.send_timeout)),
    var("TYPING_TIMEOUT_SECONDS", |c, v| seconds(&mut c.chat.typing_timeout, v))
        .checked(|c| positive(&c.chat.typing_timeout)),
    var("PRESENCE_TTL_SECONDS", |c, v| seconds(&mut c.chat.presence_ttl, v))
        .checked(|c| positive(&c.chat.presence_ttl)),
    var("READ_RECEIPTS_MAX_MEMBERS", |c, v| {
        set(&mut c.chat.receipts_max_members, v)
    }),
    var("REQUIRE_VERIFIED_EMAIL", |c, v| set(&mut c.chat.require_verified_email, v)),
    var("GRAPHQL_MAX_NESTING", |c, v| set(&mut c.graphql.max_nesting, v))
        .checked(|c| {
            positive(&c.graphql.max_nesting)?;
            if c.graphql.max_nesting > MAX_NESTING_LIMIT {
                return Err(format!("must be at most {MAX_NESTING_LIMIT}"));
            }
            // A document `max_depth` fields deep nests at least that deep.
            if c.graphql.max_nesting < c.graphql.max_depth {
                return Err("must be at least GRAPHQL_MAX_DEPTH".into());
            }
            Ok(())
        }),
    var("GRAPHQL_MAX_TOKENS", |c, v| set(&mut c.graphql.max_tokens, v))
        .checked(|c| positive(&c.graphql.max_tokens)),
    var("GRAPHQL_MAX_DEPTH", |c, v| set(&mut c.graphql.max_depth, v))
        .checked(|c| positive(&c.graphql.max_depth)),
    var("GRAPHQL_MAX_COMPLEXITY", |c, v| set(&mut c.graphql.max_complexity, v))
        .checked(|c| positive(&c.graphql.max_complexity)),
    var("GRAPHQL_MAX_ALIASES", |c, v| set(&mut c.graphql.max_aliases, v)),
    var("GRAPHQL_MAX_DIRECTIVES", |c, v| set(&mut c.graphql.max_directives, v)),
    var("GRAPHQL_MAX_BATCH", |c, v| set(&mut c.graphql.max_batch, v))
        .checked(|c| positive(&c.graphql.max_batch)),
    // Production hides the schema unless asked: clients there are built from schema.graphql,
    // and a browsable schema helps attackers more than them.
    var("GRAPHQL_INTROSPECTION", |c, v| {
        c.graphql.introspection = match v {
            Some(v) => parse(v)?,
            None => c.environment == Environment::Development,
        };
        Ok(())
    }),
    var("GRAPHQL_DOCUMENT_CACHE", |c, v| set(&mut c.graphql.document_cache, v)),
    // Read, and each entry checked, at start (`startup`): a bad file stops the server there.
    var("PERSISTED_OPERATIONS_FILE", |c, v| {
        set_with(&mut c.graphql.persisted_operations, v, |v| Ok(Some(v.into())))
    }),
    var("SHUTDOWN_GRACE_SECONDS", |c, v| seconds(&mut c.shutdown_grace, v)),
    var("LOG_FORMAT", |c, v| {
        let choices = [(&["pretty"][..], LogFormat::Pretty), (&["json"], LogFormat::Json)];
        choose(&mut c.log_format, v, &choices)
    }),
];

/// A set value replaces the default; `read` turns it into the field's type.
fn set_with<T>(
    field: &mut T,
    value: Option<&str>,
    read: impl FnOnce(&str) -> Result<T, String>,
) -> Result<(), String> {
    if let Some(v) = value {
        *field = read(v)?;
    }
    Ok(())
}

/// A set value, surrounding whitespace ignored, replaces the default.
fn set<T: FromStr>(field: &mut T, value: Option<&str>) -> Result<(), String>
where
    T::Err: std::fmt::Display,
{
    set_with(field, value, parse)
}

fn seconds(field: &mut Duration, value: Option<&str>) -> Result<(), String> {
    set_with(field, value, |v| parse(v).map(Duration::from_secs))
}

/// One of a few words, in any case; the error names the first word of each choice.
fn choose<T: Copy>(
    field: &mut T,
    value: Option<&str>,
    choices: &[(&[&str], T)],
) -> Result<(), String> {
    set_with(field, value, |v| {
        let v = v.to_ascii_lowercase();
        let found = choices
            .iter()
            .find(|(words, _)| words.contains(&v.as_str()));
        found.map(|(_, choice)| *choice).ok_or_else(|| {
            let words: Vec<_> = choices.iter().map(|(words, _)| words[0]).collect();
            format!("expected {}", words.join(" or "))
        })
    })
}

/// A setting of the identity provider, which `JWT_JWKS_URL` turns on.
fn external(
    c: &mut Config,
    value: Option<&str>,
    field: fn(&mut ExternalTokensConfig) -> &mut String,
) -> Result<(), String> {
    match (&mut c.auth.external, value) {
        (_, None) => Ok(()),
        (Some(external), Some(v)) => {
            *field(external) = v.trim().into();
            Ok(())
        }
        (None, Some(_)) => Err("needs JWT_JWKS_URL".into()),
    }
}

/// NATS server URLs, separated by commas. The error does not repeat the value: it may hold a
/// password.
fn nats_urls(value: &str) -> Result<Option<SecretString>, String> {
    let urls: Vec<&str> = value.split(',').map(str::trim).collect();
    let valid = |url: &str| {
        ["nats://", "tls://"]
            .iter()
            .any(|scheme| url.len() > scheme.len() && url.starts_with(scheme))
    };
    match urls.iter().all(|url| valid(url)) {
        true => Ok(Some(urls.join(",").into())),
        false => Err("expected nats:// or tls:// URLs, separated by commas".into()),
    }
}

/// A setting of the NATS broker, which `BROKER_URL` turns on.
fn nats_option(
    c: &mut Config,
    value: Option<&str>,
    set: fn(&mut BrokerConfig, &str),
) -> Result<(), String> {
    match (&c.broker.url, value) {
        (_, None) => Ok(()),
        (Some(_), Some(v)) => {
            set(&mut c.broker, v.trim());
            Ok(())
        }
        (None, Some(_)) => Err("needs BROKER_URL".into()),
    }
}

/// Tokens of a subject: letters, digits, `-` and `_`, separated by dots.
fn subject_prefix(value: &str) -> Result<String, String> {
    let value = value.trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match value.split('.').all(token) {
        true => Ok(value.into()),
        false => Err("expected tokens of letters, digits, - and _, separated by dots".into()),
    }
}

/// A key file's path: EdDSA cannot sign without it.
fn key_file(path: &mut PathBuf, value: Option<&str>) -> Result<(), String> {
    *path = value.ok_or("required with EdDSA")?.into();
    Ok(())
}

fn parse<T: FromStr>(value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| e.to_string())
}

/// Not zero (a number, or a duration).
fn positive<T: Default + PartialEq>(value: &T) -> Result<(), String> {
    if *value == T::default() {
        return Err("must be positive".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::config::ConfigError;

    /// Read by `telemetry` (through `EnvFilter`), not by `Config`, but documented beside it.
    const NOT_IN_CONFIG: &[&str] = &["RUST_LOG"];

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        Config::from_lookup(|name| map.get(name).map(|v| v.to_string()))
    }

    fn names() -> BTreeSet<&'static str> {
        VARIABLES.iter().map(|v| v.name).collect()
    }

    #[test]
    fn every_name_is_unique() {
        let mut seen = BTreeSet::new();
        let twice: Vec<_> = VARIABLES
            .iter()
            .filter(|v| !seen.insert(v.name))
            .map(|v| v.name)
            .collect();
        assert!(twice.is_empty(), "listed more than once: {twice:?}");
    }

    /// The variable names in README.md's Configuration table, whose rows start
    /// "| `NAME` |" or "| `NAME`, `OTHER` |".
    fn readme_names() -> BTreeSet<&'static str> {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Configuration\n"))
            .expect("README.md has a \"## Configuration\" section");
        let mut names = BTreeSet::new();
        for row in section.lines().filter(|l| l.starts_with('|')) {
            let first = row.split('|').nth(1).unwrap_or_default().trim();
            if first == "variable" || first.starts_with("---") {
                continue; // the header and the line under it
            }
            let before = names.len();
            // The quoted words: every other piece between backticks.
            names.extend(first.split('`').skip(1).step_by(2));
            assert!(names.len() > before, "no `NAME` in README row: {row}");
        }
        names
    }

    #[test]
    fn readme_lists_every_variable_and_no_others() {
        let readme = readme_names();
        let table = names();
        let undocumented: Vec<_> = table.difference(&readme).collect();
        let unknown: Vec<_> = readme
            .difference(&table)
            .filter(|n| !NOT_IN_CONFIG.contains(n))
            .collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "missing from README.md's Configuration table: {undocumented:?}; \
             in that table but not in VARIABLES: {unknown:?}"
        );
        for name in NOT_IN_CONFIG {
            assert!(readme.contains(name), "{name} is no longer in README.md");
        }
    }

    #[test]
    fn a_value_that_does_not_parse_names_its_variable() {
        let mut accepted = BTreeSet::new();
        for name in names() {
            match from(&[(name, "?")]) {
                Ok(_) => {
                    accepted.insert(name);
                }
                Err(err) => assert!(err.to_string().starts_with(&format!("{name}: ")), "{err}"),
            }
        }
        // Free text, and key files that only EdDSA reads.
        let free = [
            "CORS_ALLOWED_ORIGINS",
            "DATABASE_URL",
            "JWT_ISSUER",
            "JWT_PRIVATE_KEY_FILE",
            "JWT_PUBLIC_KEY_FILE",
            "MAIL_OUTBOX_DIR",
            "PERSISTED_OPERATIONS_FILE",
        ];
        assert_eq!(accepted, BTreeSet::from(free));
    }

    #[test]
    fn nats_needs_postgres_and_its_options_need_nats() {
        let pg = ("DATABASE_URL", "postgres://chat@db/chat");
        let config = from(&[
            pg,
            ("BROKER_URL", "nats://chat:hunter2@a:4222, tls://b:4222"),
        ]);
        let config = config.unwrap();
        let url = config
            .broker
            .url
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        assert_eq!(url, "nats://chat:hunter2@a:4222,tls://b:4222");
        for (vars, wanted) in [
            (
                vec![("BROKER_URL", "nats://a:4222")],
                "BROKER_URL: needs a Postgres DATABASE_URL: a cluster shares one database",
            ),
            (
                vec![pg, ("BROKER_URL", "redis://chat:hunter2@a")],
                "BROKER_URL: expected nats:// or tls:// URLs, separated by commas",
            ),
            (
                vec![pg, ("BROKER_NATS_CREDENTIALS_FILE", "chat.creds")],
                "BROKER_NATS_CREDENTIALS_FILE: needs BROKER_URL",
            ),
            (
                vec![
                    pg,
                    ("BROKER_URL", "nats://a"),
                    ("BROKER_NATS_SUBJECT_PREFIX", "chat.*"),
                ],
                "BROKER_NATS_SUBJECT_PREFIX: expected tokens of letters, digits, - and _, \
                 separated by dots",
            ),
        ] {
            assert_eq!(from(&vars).unwrap_err().to_string(), wanted);
        }
        let prefixed = from(&[
            pg,
            ("BROKER_URL", "nats://a"),
            ("BROKER_NATS_SUBJECT_PREFIX", "eu-1.chat"),
        ]);
        assert_eq!(prefixed.unwrap().broker.subject_prefix, "eu-1.chat");
    }

    #[test]
    fn a_bad_smtp_url_is_refused_without_repeating_it() {
        let err = from(&[("SMTP_URL", "ftp://mailer:hunter2@mail.example")]).unwrap_err();
        let err = err.to_string();
        assert!(err.starts_with("SMTP_URL: "), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(from(&[("SMTP_URL", "smtps://mailer:hunter2@mail.example:465")]).is_ok());
        assert!(from(&[("MAIL_FROM", "Chat <chat@example.com>")]).is_ok());
        assert!(from(&[("MAIL_FROM", "not an address")]).is_err());
    }

    #[test]
    fn zero_is_refused_where_it_cannot_mean_anything() {
        let refused: BTreeSet<_> = names()
            .into_iter()
            .filter(|name| {
                from(&[(name, "0")])
                    .is_err_and(|e| e.to_string() == format!("{name}: must be positive"))
            })
            .collect();
        let wanted = [
            "ACCESS_TOKEN_TTL_SECONDS",
            "BROKER_NATS_BUFFER",
            "DATABASE_LISTEN_HEARTBEAT_SECONDS",
            "DATABASE_MAX_CONNECTIONS",
            "EMAIL_VERIFICATION_TTL_SECONDS",
            "GRAPHQL_MAX_BATCH",
            "GRAPHQL_MAX_COMPLEXITY",
            "GRAPHQL_MAX_DEPTH",
            "GRAPHQL_MAX_NESTING",
            "GRAPHQL_MAX_TOKENS",
            "PASSWORD_HASH_CONCURRENCY",
            "PASSWORD_RESET_TTL_SECONDS",
            "PRESENCE_TTL_SECONDS",
            "REFRESH_TOKEN_TTL_SECONDS",
            "SESSION_PURGE_INTERVAL_SECONDS",
            "TYPING_TIMEOUT_SECONDS",
            "WS_INIT_TIMEOUT_SECONDS",
            "WS_KEEPALIVE_SECONDS",
            "WS_SEND_TIMEOUT_SECONDS",
            "WS_SUBSCRIBER_BUFFER",
        ];
        assert_eq!(refused, BTreeSet::from(wanted));
    }

    #[test]
    fn blank_values_are_unset() {
        let config = from(&[
            ("BIND_ADDR", "  "),
            ("JWT_ALGORITHM", ""),
            ("LOG_FORMAT", "\t"),
        ])
        .unwrap();
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8000");
        assert!(matches!(config.auth.signing, SigningConfig::Hs256(None)));
        assert_eq!(config.log_format, LogFormat::Pretty);
        let secret = "x".repeat(32);
        let prod = [
            ("APP_ENV", "prod"),
            ("JWT_SECRET", &secret),
            ("GRAPHQL_INTROSPECTION", " "),
        ];
        assert!(!from(&prod).unwrap().graphql.introspection);
    }

    #[test]
    fn an_identity_provider_needs_its_issuer_and_audience() {
        let url = ("JWT_JWKS_URL", "https://idp.example/.well-known/jwks.json");
        let issuer = ("JWT_EXTERNAL_ISSUER", "https://idp.example/");
        let audience = ("JWT_EXTERNAL_AUDIENCE", "chat-api");
        for (vars, wanted) in [
            (vec![url], "JWT_EXTERNAL_ISSUER: required with JWT_JWKS_URL"),
            (
                vec![url, issuer],
                "JWT_EXTERNAL_AUDIENCE: required with JWT_JWKS_URL",
            ),
            (
                vec![issuer, audience],
                "JWT_EXTERNAL_ISSUER: needs JWT_JWKS_URL",
            ),
            (
                vec![url, ("JWT_EXTERNAL_ISSUER", "chat-server"), audience],
                "JWT_EXTERNAL_ISSUER: must differ from JWT_ISSUER",
            ),
            (
                vec![("JWT_JWKS_URL", "idp.example/jwks"), issuer, audience],
                "JWT_JWKS_URL: expected an http:// or https:// URL",
            ),
            (
                vec![url, issuer, audience, ("JWT_JWKS_REFETCH_SECONDS", "0")],
                "JWT_JWKS_REFETCH_SECONDS: must be positive",
            ),
        ] {
            assert_eq!(from(&vars).unwrap_err().to_string(), wanted);
        }
        let external = from(&[url, issuer, audience])
            .unwrap()
            .auth
            .external
            .unwrap();
        assert_eq!(
            (
                external.issuer.as_str(),
                external.audience.as_str(),
                external.refetch_after
            ),
            ("https://idp.example/", "chat-api", Duration::from_secs(30))
        );
        assert!(from(&[]).unwrap().auth.external.is_none());
    }

    #[test]
    fn eddsa_needs_both_key_files_and_ignores_the_secret() {
        let eddsa = ("JWT_ALGORITHM", "EdDSA");
        let private = ("JWT_PRIVATE_KEY_FILE", "private.pem");
        let public = ("JWT_PUBLIC_KEY_FILE", "public.pem");
        for (vars, wanted) in [
            (vec![eddsa], "JWT_PRIVATE_KEY_FILE: required with EdDSA"),
            (
                vec![eddsa, public],
                "JWT_PRIVATE_KEY_FILE: required with EdDSA",
            ),
            (
                vec![eddsa, private],
                "JWT_PUBLIC_KEY_FILE: required with EdDSA",
            ),
            (
                vec![("JWT_ALGORITHM", "eddsa")],
                "JWT_ALGORITHM: expected HS256 or EdDSA",
            ),
        ] {
            assert_eq!(from(&vars).unwrap_err().to_string(), wanted);
        }
        let config = from(&[eddsa, private, public, ("JWT_SECRET", "short")]).unwrap();
        match config.auth.signing {
            SigningConfig::EdDsa {
                private_key,
                public_key,
            } => {
                assert_eq!(private_key, PathBuf::from("private.pem"));
                assert_eq!(public_key, PathBuf::from("public.pem"));
            }
            other => panic!("{other:?}"),
        }
        // And HS256 ignores the key files.
        let config = from(&[("JWT_ALGORITHM", "HS256"), private]).unwrap();
        assert!(matches!(config.auth.signing, SigningConfig::Hs256(None)));
    }
}
