//! Typing indicators: live only, never stored, never replayed. A member who keeps typing
//! renews it (`setTyping(typing: true)` again); without a renewal it ends by itself after
//! `TYPING_TIMEOUT_SECONDS`: the instance that heard it announces the end. Every announcement
//! also says until when it holds, so that clients stop showing it even if that instance dies.
//! A renewal within half the timeout of the last announcement is not announced again: a
//! room's subscribers hear of one typist at most twice per timeout.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Chat,
    access::{Action, room_access},
};
use crate::{
    broker::{Event, Typing},
    error::AppResult,
    service::auth::Viewer,
};

/// Who types where, on this instance.
pub(super) struct Typists {
    timeout: Duration,
    /// By (room, user): until when, and when it was last announced.
    active: Mutex<HashMap<(Uuid, Uuid), (Instant, Instant)>>,
}

impl Typists {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            active: Mutex::new(HashMap::new()),
        }
    }
}

impl Chat {
    /// Says that the viewer is typing in a room (members), or stopped.
    pub async fn set_typing(&self, viewer: &Viewer, room_id: Uuid, typing: bool) -> AppResult<()> {
        Action::Take.check(&room_access(&self.db, room_id, viewer.user_id).await?)?;
        let key = (room_id, viewer.user_id);
        let timeout = self.typists.timeout;
        let now = Instant::now();
        let announce = {
            let mut active = self
                .typists
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if typing {
                let renewal = active
                    .get(&key)
                    .is_some_and(|&(_, announced)| now < announced + timeout / 2);
                let entry = active.entry(key).or_insert((now, now));
                entry.0 = now + timeout;
                if !renewal {
                    entry.1 = now;
                }
                !renewal
            } else {
                active.remove(&key);
                true
            }
        };
        if announce {
            self.announce_typing(room_id, viewer.user_id, typing)
                .await?;
        }
        Ok(())
    }

    /// Ends, a few times per timeout, the typing nobody renewed, until `shutdown`.
    pub fn expire_typing(self: Arc<Self>, shutdown: CancellationToken) {
        let every = (self.typists.timeout / 4).min(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let now = Instant::now();
                let expired: Vec<(Uuid, Uuid)> = {
                    let mut active = self
                        .typists
                        .active
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    let expired = active
                        .iter()
                        .filter(|(_, (until, _))| *until <= now)
                        .map(|(key, _)| *key)
                        .collect();
                    active.retain(|_, (until, _)| *until > now);
                    expired
                };
                for (room_id, user_id) in expired {
                    if let Err(err) = self.announce_typing(room_id, user_id, false).await {
                        tracing::warn!(error = %err, room = %room_id, "announcing the end of typing failed");
                    }
                }
            }
        });
    }

    async fn announce_typing(&self, room_id: Uuid, user_id: Uuid, typing: bool) -> AppResult<()> {
        let until = chrono::Utc::now()
            + chrono::TimeDelta::from_std(self.typists.timeout).unwrap_or_default();
        let event = Event::Typing(Typing {
            room_id,
            user_id,
            typing,
            until,
        });
        self.broker.publish(event).await?;
        Ok(())
    }
}
