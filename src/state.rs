//! `AppState`: what every request works with (config, database, services). Cheap to clone.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{config::Config, service::auth::Auth};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub auth: Arc<Auth>,
}

impl AppState {
    pub async fn new(config: Config, db: DatabaseConnection) -> anyhow::Result<Self> {
        let auth = Auth::new(db.clone(), &config.auth).await?;
        Ok(Self {
            config: Arc::new(config),
            db,
            auth: Arc::new(auth),
        })
    }
}
