//! Presence: a user is online while any of their sockets is open on any instance.
//!
//! Each instance counts its sockets per user (`http::ws::Sockets`) and tells `Presence` when a
//! user's first socket opens and their last one closes. One task per instance writes that to
//! the database: a `presence` row per user and instance, which the instance's heartbeat renews
//! every third of `PRESENCE_TTL_SECONDS`. An instance that dies renews nothing: its rows expire,
//! and whichever instance sweeps them first (the sweep deletes with RETURNING, so only one
//! does) announces those users offline. So a user is online exactly while they have a row that
//! has not expired, whatever happened to the instances.
//!
//! Coming online and going offline are announced (`Event::Presence`) only when the user's state
//! as a whole changes: a second device coming online is not news. Two instances may both
//! announce the same change (each checks the other's rows before its own write), never neither;
//! an announcement is a state, so hearing it twice changes nothing. Each instance relays what
//! it hears to the rooms the user is a member of that have subscribers there (`roomEvents`).
use std::{
    collections::{HashMap, HashSet},
    mem,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    sea_query::{Alias, Expr, JoinType, OnConflict, Query},
};
use tokio::sync::{Notify, broadcast::error::RecvError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use super::Chat;
use crate::{
    broker::{Event, PresenceChange},
    entity::{self, last_seen, membership, presence},
    error::AppResult,
};

/// Users per statement (and per announcement): well under every database's parameter limit.
const CHUNK: usize = 500;

/// This instance's users whose first socket opened or last socket closed since its task last
/// looked. Written by the socket layer, read by `Chat::keep_presence`.
#[derive(Default)]
pub struct Presence {
    /// By user: online (true) or offline. A user who comes and goes between two looks leaves
    /// only their last state.
    pending: Mutex<HashMap<Uuid, bool>>,
    wake: Notify,
}

impl Presence {
    /// `user_id`'s first socket on this instance opened (`true`), or their last one closed.
    pub fn set(&self, user_id: Uuid, online: bool) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user_id, online);
        self.wake.notify_one();
    }

    fn take(&self) -> HashMap<Uuid, bool> {
        mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts back what could not be written, unless something newer came meanwhile.
    fn retry_later(&self, users: &[Uuid], online: bool) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for user in users {
            pending.entry(*user).or_insert(online);
        }
    }
}

/// What a viewer may learn of a user's presence.
#[derive(Debug, Clone, Copy, Default)]
pub struct PresenceState {
    pub online: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// This instance's presence: its id in the `presence` rows, how long a row holds without a
/// heartbeat, and what its sockets report.
pub(super) struct Instance {
    pub id: Uuid,
    pub ttl: Duration,
    pub local: Arc<Presence>,
}

impl Chat {
    /// What the socket layer reports presence to.
    pub fn presence(&self) -> Arc<Presence> {
        self.instance.local.clone()
    }

    /// Writes presence, renews it, sweeps expired rows and relays what other instances
    /// announce, until `shutdown`; then takes this instance's users offline (tracked by
    /// `tasks`, so that shutdown waits for it).
    pub fn keep_presence(self: Arc<Self>, shutdown: CancellationToken, tasks: &TaskTracker) {
        let mut heard = self.hub.presence_changes();
        tasks.spawn(async move {
            // Users with a row of this instance.
            let mut listed = HashSet::new();
            let mut beat = tokio::time::interval(self.instance.ttl / 3);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = self.instance.local.wake.notified() => self.write_pending(&mut listed).await,
                    _ = beat.tick() => {
                        self.write_pending(&mut listed).await;
                        self.renew(&listed).await;
                        self.sweep().await;
                    }
                    changes = heard.recv() => match changes {
                        Ok(changes) => self.relay(&changes).await,
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => break,
                    },
                }
            }
            let listed: Vec<Uuid> = listed.into_iter().collect();
            for chunk in listed.chunks(CHUNK) {
                if let Err(err) = self.went_offline(chunk).await {
                    tracing::warn!(error = %err, "taking this instance's users offline failed; their presence expires");
                }
            }
        });
    }

    async fn write_pending(&self, listed: &mut HashSet<Uuid>) {
        let pending = self.instance.local.take();
        let (online, offline): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, on)| *on);
        let online: Vec<Uuid> = online
            .into_iter()
            .map(|(user, _)| user)
            .filter(|user| !listed.contains(user))
            .collect();
        let offline: Vec<Uuid> = offline
            .into_iter()
            .map(|(user, _)| user)
            .filter(|user| listed.contains(user))
            .collect();
        for chunk in online.chunks(CHUNK) {
            match self.came_online(chunk).await {
                Ok(()) => listed.extend(chunk),
                Err(err) => {
                    tracing::warn!(error = %err, "recording presence failed; retrying");
                    self.instance.local.retry_later(chunk, true);
                }
            }
        }
        for chunk in offline.chunks(CHUNK) {
            match self.went_offline(chunk).await {
                Ok(()) => chunk.iter().for_each(|user| _ = listed.remove(user)),
                Err(err) => {
                    tracing::warn!(error = %err, "recording absence failed; retrying");
                    self.instance.local.retry_later(chunk, false);
                }
            }
        }
    }

    /// Lists `users` on this instance, and announces those who were online nowhere.
    async fn came_online(&self, users: &[Uuid]) -> AppResult<()> {
        let now = entity::now();
        let already = self.online_among(users, now).await?;
        let expires_at = now + self.ttl();
        presence::Entity::insert_many(users.iter().map(|&user_id| presence::ActiveModel {
            user_id: sea_orm::Set(user_id),
            instance_id: sea_orm::Set(self.instance.id),
            expires_at: sea_orm::Set(expires_at),
        }))
        .on_conflict(
            OnConflict::columns([presence::Column::UserId, presence::Column::InstanceId])
                .update_column(presence::Column::ExpiresAt)
                .to_owned(),
        )
        .exec(&self.writer)
        .await?;
        let arrived: Vec<(Uuid, DateTime<Utc>)> = users
            .iter()
            .filter(|user| !already.contains(user))
            .map(|&user| (user, now))
            .collect();
        self.announce(&arrived, true).await
    }

    /// Unlists `users` from this instance, and announces those now online nowhere.
    async fn went_offline(&self, users: &[Uuid]) -> AppResult<()> {
        let now = entity::now();
        presence::Entity::delete_many()
            .filter(presence::Column::InstanceId.eq(self.instance.id))
            .filter(presence::Column::UserId.is_in(users.iter().copied()))
            .exec(&self.writer)
            .await?;
        let left = self
            .gone_among(users.iter().map(|&user| (user, now)))
            .await?;
        self.announce(&left, false).await
    }

    /// Renews this instance's rows. Fewer than listed means another instance swept some while
    /// this one could not renew them (the database was unreachable, the process stalled): they
    /// are listed again, and announced online again where that was taken back.
    async fn renew(&self, listed: &HashSet<Uuid>) {
        let renewed = presence::Entity::update_many()
            .col_expr(
                presence::Column::ExpiresAt,
                Expr::value(entity::now() + self.ttl()),
            )
            .filter(presence::Column::InstanceId.eq(self.instance.id))
            .exec(&self.writer)
            .await;
        match renewed {
            Ok(renewed) if renewed.rows_affected as usize >= listed.len() => {}
            Ok(_) => {
                let listed: Vec<Uuid> = listed.iter().copied().collect();
                for chunk in listed.chunks(CHUNK) {
                    if let Err(err) = self.came_online(chunk).await {
                        tracing::warn!(error = %err, "listing users again failed");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "renewing presence failed"),
        }
    }

    /// Deletes every expired row (of instances that died, or stalled), and announces offline
    /// the users who have no other.
    async fn sweep(&self) {
        let swept = presence::Entity::delete_many()
            .filter(presence::Column::ExpiresAt.lte(entity::now()))
            .exec_with_returning(&self.writer)
            .await;
        let swept = match swept {
            Ok(swept) => swept,
            Err(err) => {
                tracing::warn!(error = %err, "sweeping expired presence failed");
                return;
            }
        };
        // Last seen at the last renewal.
        let mut last: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
        for row in swept {
            let seen = row.expires_at - self.ttl();
            let at = last.entry(row.user_id).or_insert(seen);
            *at = Ord::max(*at, seen);
        }
        let last: Vec<(Uuid, DateTime<Utc>)> = last.into_iter().collect();
        for chunk in last.chunks(CHUNK) {
            let result = match self.gone_among(chunk.iter().copied()).await {
                Ok(gone) => self.announce(&gone, false).await,
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                tracing::warn!(error = %err, "announcing swept users offline failed");
            }
        }
    }

    /// Those of `users` (with when they were last seen) who are online nowhere, their last
    /// sighting recorded.
    async fn gone_among(
        &self,
        users: impl Iterator<Item = (Uuid, DateTime<Utc>)>,
    ) -> AppResult<Vec<(Uuid, DateTime<Utc>)>> {
        let users: Vec<(Uuid, DateTime<Utc>)> = users.collect();
        let ids: Vec<Uuid> = users.iter().map(|(user, _)| *user).collect();
        let still = self.online_among(&ids, entity::now()).await?;
        let gone: Vec<(Uuid, DateTime<Utc>)> = users
            .into_iter()
            .filter(|(user, _)| !still.contains(user))
            .collect();
        Ok(gone)
    }

    /// Of `users`, those with a live row on any instance.
    async fn online_among(&self, users: &[Uuid], now: DateTime<Utc>) -> AppResult<HashSet<Uuid>> {
        let online: Vec<Uuid> = presence::Entity::find()
            .select_only()
            .column(presence::Column::UserId)
            .distinct()
            .filter(presence::Column::UserId.is_in(users.iter().copied()))
            .filter(presence::Column::ExpiresAt.gt(now))
            .into_tuple()
            .all(&self.writer)
            .await?;
        Ok(online.into_iter().collect())
    }

    /// Records when `users` were last seen, and tells every instance.
    async fn announce(&self, users: &[(Uuid, DateTime<Utc>)], online: bool) -> AppResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        last_seen::Entity::insert_many(users.iter().map(|&(user_id, seen_at)| {
            last_seen::ActiveModel {
                user_id: sea_orm::Set(user_id),
                seen_at: sea_orm::Set(seen_at),
            }
        }))
        .on_conflict(
            OnConflict::column(last_seen::Column::UserId)
                .update_column(last_seen::Column::SeenAt)
                .to_owned(),
        )
        .exec(&self.writer)
        .await?;
        let changes = users
            .iter()
            .map(|&(user_id, at)| PresenceChange {
                user_id,
                online,
                at,
            })
            .collect();
        self.broker.publish(Event::Presence(changes)).await?;
        Ok(())
    }

    /// Hands announced changes to the subscribers of the users' rooms on this instance.
    async fn relay(&self, changes: &[PresenceChange]) {
        if changes.is_empty() || !self.hub.has_rooms() {
            return;
        }
        let rooms: Result<Vec<(Uuid, Uuid)>, _> = membership::Entity::find()
            .select_only()
            .column(membership::Column::RoomId)
            .column(membership::Column::UserId)
            .filter(membership::Column::UserId.is_in(changes.iter().map(|c| c.user_id)))
            .into_tuple()
            .all(&self.db)
            .await;
        let rooms = match rooms {
            Ok(rooms) => rooms,
            Err(err) => {
                // Live only, like typing: a client reads `online` again when it reconnects.
                tracing::warn!(error = %err, "relaying presence to rooms failed");
                return;
            }
        };
        let by_user: HashMap<Uuid, PresenceChange> =
            changes.iter().map(|c| (c.user_id, *c)).collect();
        for (room_id, user_id) in rooms {
            if let Some(change) = by_user.get(&user_id) {
                self.hub.send_presence(room_id, *change);
            }
        }
    }

    fn ttl(&self) -> TimeDelta {
        TimeDelta::from_std(self.instance.ttl).unwrap_or(TimeDelta::seconds(30))
    }

    /// Whether and since when each of `users` is online, by user.
    pub async fn presence_of(&self, users: &[Uuid]) -> AppResult<HashMap<Uuid, PresenceState>> {
        let online = self.online_among(users, entity::now()).await?;
        let seen: Vec<(Uuid, DateTime<Utc>)> = last_seen::Entity::find()
            .select_only()
            .column(last_seen::Column::UserId)
            .column(last_seen::Column::SeenAt)
            .filter(last_seen::Column::UserId.is_in(users.iter().copied()))
            .into_tuple()
            .all(&self.db)
            .await?;
        let seen: HashMap<Uuid, DateTime<Utc>> = seen.into_iter().collect();
        Ok(users
            .iter()
            .map(|user| {
                let state = PresenceState {
                    online: online.contains(user),
                    last_seen_at: seen.get(user).copied(),
                };
                (*user, state)
            })
            .collect())
    }

    /// Those of `users` who share a room with `viewer` (the viewer among them).
    pub async fn sharing_a_room(&self, viewer: Uuid, users: &[Uuid]) -> AppResult<HashSet<Uuid>> {
        let (mine, theirs) = (Alias::new("mine"), Alias::new("theirs"));
        let query = Query::select()
            .distinct()
            .column((theirs.clone(), membership::Column::UserId))
            .from_as(membership::Entity, mine.clone())
            .join_as(
                JoinType::InnerJoin,
                membership::Entity,
                theirs.clone(),
                Expr::col((theirs.clone(), membership::Column::RoomId))
                    .equals((mine.clone(), membership::Column::RoomId)),
            )
            .and_where(Expr::col((mine, membership::Column::UserId)).eq(viewer))
            .and_where(Expr::col((theirs, membership::Column::UserId)).is_in(users.iter().copied()))
            .to_owned();
        let mut sharing = HashSet::new();
        for row in self.db.query_all(&query).await? {
            sharing.insert(row.try_get_by_index::<Uuid>(0)?);
        }
        Ok(sharing)
    }
}
