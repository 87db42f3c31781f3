use sea_orm::entity::prelude::*;

/// One login. Access tokens carry its id (`sid`), so revoking the session revokes them.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// Its last refresh; `None` until the first.
    pub last_used_at: Option<DateTimeUtc>,
    /// The `User-Agent` of the login that opened it.
    pub user_agent: Option<String>,
    /// The client's address at that login.
    pub client_ip: Option<String>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(has_many)]
    pub refresh_tokens: HasMany<super::refresh_token::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
