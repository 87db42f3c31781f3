use sea_orm::entity::prelude::*;

/// A token mailed to a user, stored as a hash: single use, until `expires_at`.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub user_id: Uuid,
    pub purpose: Purpose,
    /// The address it was mailed to.
    pub email: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Purpose {
    /// Proves the user's address.
    #[sea_orm(string_value = "verify")]
    Verify,
    #[sea_orm(string_value = "reset")]
    Reset,
    /// Proves a new address the user asked to move to; opening it moves them.
    #[sea_orm(string_value = "change")]
    Change,
}
