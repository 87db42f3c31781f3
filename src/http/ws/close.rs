//! Why a socket is closed, and with which code: decided here, once. The 44xx codes are those
//! of the graphql-transport-ws protocol (API.md); both subprotocols use them.
use axum::extract::ws::{CloseFrame, Message};

use crate::service::auth::{AuthError, TokenError};

#[derive(Debug)]
pub enum Close {
    /// A message the protocol does not define, or a malformed one.
    BadMessage(String),
    /// `subscribe` before `connection_ack`.
    Unauthorized,
    /// No usable token, or its session ended.
    Auth(AuthError),
    /// A re-auth `ping` carried another user's token.
    OtherUser,
    InitTimeout,
    DuplicateId(String),
    TooManyInits,
    /// The server is shutting down: reconnect elsewhere.
    GoingAway,
    /// The client said goodbye (legacy `connection_terminate`).
    Terminated,
}

impl Close {
    pub fn code(&self) -> u16 {
        match self {
            Self::BadMessage(_) => 4400,
            Self::Unauthorized => 4401,
            Self::Auth(_) | Self::OtherUser => 4403,
            Self::InitTimeout => 4408,
            Self::DuplicateId(_) => 4409,
            Self::TooManyInits => 4429,
            Self::GoingAway => 1001,
            Self::Terminated => 1000,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Self::BadMessage(reason) => reason.clone(),
            Self::Unauthorized => "Unauthorized".into(),
            Self::Auth(AuthError::Missing) => "missing token".into(),
            Self::Auth(AuthError::Token(TokenError::Expired)) => "token expired".into(),
            Self::Auth(AuthError::Token(TokenError::Invalid)) => "invalid token".into(),
            Self::Auth(AuthError::Revoked) => "session revoked".into(),
            Self::OtherUser => "token is for another user".into(),
            Self::InitTimeout => "Connection initialisation timeout".into(),
            Self::DuplicateId(id) => {
                let id: String = id.chars().take(64).collect();
                format!("Subscriber for {id} already exists")
            }
            Self::TooManyInits => "Too many initialisation requests".into(),
            Self::GoingAway => "server shutting down".into(),
            Self::Terminated => String::new(),
        }
    }

    pub fn frame(&self) -> Message {
        Message::Close(Some(CloseFrame {
            code: self.code(),
            reason: self.reason().into(),
        }))
    }
}
