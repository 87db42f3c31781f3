//! `myEvents`: one subscription that follows every room of its user (see `broker::inbox`),
//! live only. A client that was away reads its rooms again; nothing is replayed.
use futures_util::{Stream, stream};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
};
use tokio::sync::watch;
use uuid::Uuid;

use super::{Chat, Subscriber, feed::retrying};
use crate::{
    broker::{FellBehind, Inbox, Mine, Topic},
    entity::{membership, room},
    error::AppResult,
    service::auth::Viewer,
};

impl Chat {
    /// What happens in the viewer's rooms that a list of them shows, from now on.
    pub async fn my_events(
        &self,
        viewer: &Viewer,
        subscriber: Subscriber,
    ) -> AppResult<impl Stream<Item = AppResult<Mine>> + use<>> {
        // Opened before the read, like a room's subscription (see `broker::inbox`).
        let inbox = self.hub.inbox(viewer.user_id);
        self.hub.heard(Topic::User(viewer.user_id)).await;
        let resyncs = self.hub.resyncs();
        read_rooms(&self.db, &inbox, viewer.user_id).await?;
        let state = Following {
            db: self.db.clone(),
            user_id: viewer.user_id,
            inbox,
            resyncs,
            subscriber,
        };
        Ok(stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            let item = state.next().await?;
            // After an error, the stream ends: the client subscribes again.
            let state = item.is_ok().then_some(state);
            Some((item, state))
        }))
    }
}

struct Following {
    db: DatabaseConnection,
    user_id: Uuid,
    inbox: Inbox,
    resyncs: watch::Receiver<u64>,
    subscriber: Subscriber,
}

impl Following {
    async fn next(&mut self) -> Option<AppResult<Mine>> {
        loop {
            tokio::select! {
                mine = self.inbox.recv() => match mine {
                    Ok(mine) => return Some(Ok(mine)),
                    // Like a room's feed that falls behind (see `feed`): its connection closes.
                    Err(FellBehind) => {
                        metrics::counter!("chat_feed_lagged_total").increment(1);
                        self.subscriber.fell_behind.cancel();
                        std::future::pending::<()>().await;
                    }
                },
                changed = self.resyncs.changed() => {
                    changed.ok()?;
                    // Events may have been missed: at least the rooms must be right.
                    if let Err(err) = read_rooms(&self.db, &self.inbox, self.user_id).await {
                        return Some(Err(err));
                    }
                }
            }
        }
    }
}

/// Tells `inbox` which rooms its user is in.
async fn read_rooms(db: &DatabaseConnection, inbox: &Inbox, user_id: Uuid) -> AppResult<()> {
    inbox.reading();
    let rooms: Vec<(Uuid, i64)> = retrying(user_id, || async {
        Ok(membership::Entity::find()
            .select_only()
            .column(membership::Column::RoomId)
            .column_as(room::Column::LastEventSeq, "last_event_seq")
            .join(JoinType::InnerJoin, membership::Relation::Room.def())
            .filter(membership::Column::UserId.eq(user_id))
            .into_tuple()
            .all(db)
            .await?)
    })
    .await?;
    inbox.read(rooms);
    Ok(())
}
