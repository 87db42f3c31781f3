//! SeaORM models, one per table. Rows only: GraphQL types are built from them in `graphql`,
//! never derived on them (the user row holds a password hash).
pub mod email_token;
pub mod external_identity;
pub mod last_seen;
pub mod membership;
pub mod message;
pub mod message_mention;
pub mod presence;
pub mod reaction;
pub mod recovery_code;
pub mod refresh_token;
pub mod room;
pub mod room_ban;
pub mod room_event;
pub mod session;
pub mod user;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision Postgres stores (microseconds), so a timestamp returned
/// right after a write is the one every later read returns.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
