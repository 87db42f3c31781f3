use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTimeUtc,
    /// When the user proved they read mail at `email` (`verifyEmail`).
    pub email_verified_at: Option<DateTimeUtc>,
    /// Sealed (see `service::auth::totp`); in use once `totp_enabled_at` is set.
    pub totp_secret: Option<String>,
    pub totp_enabled_at: Option<DateTimeUtc>,
    /// The time step of the last code accepted: a code works once.
    pub totp_last_step: Option<i64>,
    /// Set when the account was deleted: the row stays, scrubbed, for its messages' sake.
    pub deleted_at: Option<DateTimeUtc>,
    #[sea_orm(has_many)]
    pub sessions: HasMany<super::session::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}

/// Stored as text; also the `role` claim of an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    #[sea_orm(string_value = "USER")]
    User,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}
