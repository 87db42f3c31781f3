//! The broker of a single instance (the SQLite default): events go to the local hub once the
//! transaction that made them true has committed.
use std::sync::Arc;

use sea_orm::{DatabaseTransaction, DbErr};

use super::{Broker, Event, Hub};

pub struct MemoryBroker {
    hub: Arc<Hub>,
}

impl MemoryBroker {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

#[async_trait::async_trait]
impl Broker for MemoryBroker {
    async fn stage(&self, _txn: &DatabaseTransaction, _event: &Event) -> Result<(), DbErr> {
        Ok(())
    }

    fn committed(&self, event: Event) {
        self.hub.dispatch(event);
    }

    async fn publish(&self, event: Event) -> Result<(), DbErr> {
        self.hub.dispatch(event);
        Ok(())
    }
}
