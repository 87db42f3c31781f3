//! The one error type of the service layer, and its mapping to `extensions.code`.
//!
//! Resolvers return `Result<T, AppError>`; async-graphql keeps the `AppError` as the error's
//! source, and `graphql::pipeline::codes` turns it into `message` + `extensions` here, once,
//! for every transport. `Internal` causes are logged there and never sent.
use std::sync::Arc;

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

use crate::domain::InvalidInput;

/// The `extensions.code` values of the public contract (API.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    BadUserInput,
    Conflict,
    NotFound,
    RateLimited,
    MfaRequired,
    InternalServerError,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    /// A document asked for by its hash that the server does not hold (Apollo's automatic
    /// persisted queries: the client sends it whole next), or, with an allow-list, any
    /// document not on it.
    PersistedQueryNotFound,
    /// A document asked for by its hash while the server keeps none (`GRAPHQL_DOCUMENT_CACHE=0`).
    PersistedQueryNotSupported,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::NotFound => "NOT_FOUND",
            Self::RateLimited => "RATE_LIMITED",
            Self::MfaRequired => "MFA_REQUIRED",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
        }
    }
}

/// Cloneable because async-graphql requires resolver errors to be (hence the `Arc`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{message}")]
    BadUserInput {
        field: &'static str,
        message: String,
    },
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("too many requests, retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The password was right and the account has two-factor login on: `verifyLogin` with
    /// the challenge and a code finishes the login.
    #[error("a second factor is required: call verifyLogin with this challenge and a code")]
    MfaRequired { challenge: String, expires_in: u64 },
    #[error("internal server error")]
    Internal(Arc<anyhow::Error>),
}

pub type AppResult<T> = Result<T, AppError>;

/// All a client learns of an internal error.
pub const INTERNAL_MESSAGE: &str = "internal server error";

impl AppError {
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field,
            message: message.into(),
        }
    }

    /// This error as a request-level GraphQL error (no path, no position): for answers given
    /// before any resolver runs.
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        let mut error = async_graphql::ServerError::new(self.to_string(), None);
        error.extensions = self.extend().extensions;
        error
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::BadUserInput { .. } => ErrorCode::BadUserInput,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::MfaRequired { .. } => ErrorCode::MfaRequired,
            Self::Internal(_) => ErrorCode::InternalServerError,
        }
    }
}

impl From<InvalidInput> for AppError {
    fn from(err: InvalidInput) -> Self {
        Self::BadUserInput {
            field: err.field,
            message: err.message,
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(Arc::new(err))
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        anyhow::Error::new(err).context("database").into()
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        anyhow::Error::new(err)
            .context("task panicked or was cancelled")
            .into()
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        // Internal details stay in the logs; clients get a fixed message.
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code().as_str());
            match self {
                Self::BadUserInput { field, .. } | Self::Conflict { field, .. } => {
                    ext.set("field", *field)
                }
                Self::RateLimited { retry_after } => ext.set("retryAfter", *retry_after),
                Self::MfaRequired {
                    challenge,
                    expires_in,
                } => {
                    ext.set("challenge", challenge.as_str());
                    ext.set("expiresIn", *expires_in);
                }
                _ => {}
            }
        })
    }
}

/// Whether the database refused a write for a duplicate key (any unique index).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Turns the violation of one of `indexes` (name, column) into a `CONFLICT` on `field`, like
/// realworld-axum-sqlx's `on_constraint`. Postgres names the index in its message; SQLite names
/// `table.column` for a column index and the index itself for an expression index, so we
/// accept either.
pub fn on_unique_violation(err: DbErr, table: &str, indexes: &[(&str, &'static str)]) -> AppError {
    if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
        for (index, column) in indexes {
            if message.contains(index) || message.contains(&format!("{table}.{column}")) {
                return AppError::Conflict {
                    field: column,
                    message: format!("{column} is already taken"),
                };
            }
        }
    }
    err.into()
}
