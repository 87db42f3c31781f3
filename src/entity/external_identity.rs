use sea_orm::entity::prelude::*;

/// A user of the identity provider (`JWT_JWKS_URL`), by the provider's `iss` and `sub`, and
/// the local user they are.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "external_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub issuer: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    pub user_id: Uuid,
    /// The session its tokens act in; `None` once that is gone (a new one opens).
    pub session_id: Option<Uuid>,
    /// Its tokens issued before this are refused: when its session was last revoked.
    pub not_before: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
