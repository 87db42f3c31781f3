//! Parse-once newtypes: a value of one of these types is valid by construction, so the layers
//! below never re-check. Each parser names the GraphQL input field it guards.
mod email;
mod password;
mod username;

pub use email::Email;
pub use password::Password;
pub use username::Username;

/// Why an input was refused, and which input field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl From<InvalidInput> for crate::error::AppError {
    fn from(err: InvalidInput) -> Self {
        Self::BadUserInput {
            field: err.field,
            message: err.message,
        }
    }
}
