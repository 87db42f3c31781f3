//! Looking up and listing users, and the `promote` admin command.
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, Func},
};
use uuid::Uuid;

use crate::{
    entity::user::{self, Role},
    error::{AppError, AppResult},
};

pub async fn find(db: &DatabaseConnection, id: Uuid) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// Users in sign-up order (ids are UUIDv7, so id order is creation order), after `after`.
pub async fn list(
    db: &DatabaseConnection,
    after: Option<Uuid>,
    limit: u64,
) -> AppResult<Vec<user::Model>> {
    let mut query = user::Entity::find().order_by_asc(user::Column::Id);
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    Ok(query.limit(limit).all(db).await?)
}

/// Makes `username` (any case) an ADMIN. Takes effect on the user's next token.
pub async fn promote(db: &DatabaseConnection, username: &str) -> AppResult<user::Model> {
    let found = user::Entity::find()
        .filter(Func::lower(Expr::col(user::Column::Username)).eq(username.to_lowercase()))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    user::Entity::update_many()
        .col_expr(user::Column::Role, Expr::value(Role::Admin))
        .filter(user::Column::Id.eq(found.id))
        .exec(db)
        .await?;
    Ok(user::Model {
        role: Role::Admin,
        ..found
    })
}
