use sea_orm::entity::prelude::*;

/// A user with at least one socket open on an instance, until `expires_at` unless that
/// instance's heartbeat renews it (`service::chat::presence`).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "presence")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub instance_id: Uuid,
    pub expires_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
