//! Why a socket is closed, and with which code: decided here, once. The 44xx codes are those
//! of the graphql-transport-ws protocol (API.md); both subprotocols use them.
use axum::extract::ws::{CloseFrame, Message};

use crate::{
    service::auth::{AuthError, TokenError},
    text::cut,
};

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
    /// A message over the size limit.
    TooBig,
    /// A subscription fell further behind its room than the server buffers: reconnect and
    /// resume with `after`.
    FellBehind,
    /// The user already holds as many sockets as allowed.
    TooManySockets,
    /// The client stopped reading: writes do not complete. No close frame can get through.
    Stalled,
    /// A write failed: the connection is gone.
    Lost,
    /// The client said goodbye (legacy `connection_terminate`).
    Terminated,
    /// The server failed (logged where it did); the client may try again. (Also what
    /// `Auth(Unavailable)` becomes: see `From<AuthError>`.)
    Internal,
}

impl From<AuthError> for Close {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unavailable => Self::Internal,
            err => Self::Auth(err),
        }
    }
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
            Self::TooBig => 1009,
            // 1013 "try again later": graphql-ws clients reconnect after it, as they should.
            Self::FellBehind | Self::TooManySockets => 1013,
            Self::Stalled | Self::Lost => 1006,
            Self::Terminated => 1000,
            Self::Internal => 1011,
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
            Self::Auth(AuthError::Unavailable) | Self::Internal => "internal server error".into(),
            Self::OtherUser => "token is for another user".into(),
            Self::InitTimeout => "Connection initialisation timeout".into(),
            Self::DuplicateId(id) => format!("Subscriber for {id} already exists"),
            Self::TooManyInits => "Too many initialisation requests".into(),
            Self::GoingAway => "server shutting down".into(),
            Self::TooBig => "message too big".into(),
            Self::FellBehind => "subscriber fell behind; resume with after".into(),
            Self::TooManySockets => "too many sockets for this user".into(),
            Self::Stalled | Self::Lost => String::new(),
            Self::Terminated => String::new(),
        }
    }

    /// The close frame to send, if one can still get through. Its reason is cut to the 123
    /// bytes a close frame has room for (a longer one breaks the frame), at a character
    /// boundary: a client-chosen id can make it any length.
    pub fn frame(&self) -> Option<Message> {
        (!matches!(self, Self::Stalled | Self::Lost)).then(|| {
            Message::Close(Some(CloseFrame {
                code: self.code(),
                reason: cut(&self.reason(), MAX_REASON_BYTES).into(),
            }))
        })
    }
}

/// A close frame's payload is at most 125 bytes, two of them the code.
pub const MAX_REASON_BYTES: usize = 123;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_a_close_frame_whatever_the_client_sent() {
        for id in [
            "1".to_owned(),
            "😀".repeat(100),
            "é".repeat(200),
            "x".repeat(1000),
        ] {
            let Some(Message::Close(Some(frame))) = Close::DuplicateId(id.clone()).frame() else {
                panic!("a close frame")
            };
            assert!(frame.reason.len() <= MAX_REASON_BYTES, "{id}");
            assert!(frame.reason.starts_with("Subscriber for "));
        }
    }
}
