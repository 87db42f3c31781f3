//! One subscriber's live view of a room: every event (message or other change, see `events`)
//! from `next_seq` on, exactly once, in event seq order.
//!
//! The live channel is fast but not complete: the Postgres listener can lose its connection,
//! and with the in-memory broker two concurrent sends may be announced out of order. The
//! database is complete. So the feed tracks the next seq it owes, delivers a live event only
//! when it is that one, skips what it already delivered, and reads any gap from the database,
//! a batch at a time. Subscribing to the channel before the first read is what makes the
//! hand-over from replay to live lossless.
//!
//! A replay of a long history reads it a batch at a time, and only as fast as the subscriber
//! takes it (the stream is pulled by its socket). While catching up, the feed holds one of its
//! `Subscriber`'s turns: a client replays a bounded number of histories at once, and takes
//! turns with its queries and mutations.
//!
//! Membership is checked when the subscription starts, and again whenever the feed may have
//! missed something (a gap, a resync) or hears that the viewer left: a member who left, or was
//! removed, gets nothing more, even if the departure itself was never heard.
//!
//! The channel holds a bounded number of events per room. A subscriber that falls further
//! behind than that cannot keep up with its room: its feed says so to its `Subscriber` and
//! delivers nothing more, its connection is closed, and its client resumes with `after`.
//! Catching it up from the database instead would cost a read per event for as long as it
//! stays slow.
use std::{collections::VecDeque, future::Future};

use futures_util::{Stream, stream};
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{OwnedSemaphorePermit, broadcast::error::RecvError, watch};
use uuid::Uuid;

use super::{Subscriber, events::events_from, messages::CATCH_UP_BATCH};
use crate::{
    broker::{Memo, PresenceChange, RoomEvent, RoomNews, RoomSubscription, Shared, Typing},
    db::QUERY_DEADLINE,
    entity::{membership, room_event::LeaveReason},
    error::{AppError, AppResult},
};

/// Tries of a read (a catch-up batch, a membership check) before the feed ends with the
/// error, and the delay before the first retry (growing linearly).
const READ_ATTEMPTS: u32 = 4;
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// What a feed delivers: the room's events, in order, and who is typing and who is online
/// (live only: what is heard while the feed catches up comes after it, late but in order).
#[derive(Debug, Clone)]
pub enum FeedItem {
    Event(RoomEvent),
    Typing(Typing),
    Presence(Uuid, PresenceChange),
}

pub struct Feed {
    pub db: DatabaseConnection,
    pub room_id: Uuid,
    pub viewer_id: Uuid,
    /// The event seq of the next event this subscriber gets.
    pub next_seq: i64,
    /// The room's newest event seq when the subscription started: anything up to it is
    /// replayed from the database, anything after comes live.
    pub last_seq: i64,
    pub live: RoomSubscription,
    pub resyncs: watch::Receiver<u64>,
    pub subscriber: Subscriber,
}

/// Why a feed reads its viewer's membership again.
#[derive(Debug, Clone, Copy)]
enum Recheck {
    /// It may have missed something (a gap in seqs, a resync).
    Gap,
    Departed(LeaveReason),
    Deleted,
}

enum Mode {
    /// Reading the database from `next_seq`, up to `until` (inclusive) or to the end.
    CatchUp {
        until: Option<i64>,
    },
    Live,
    /// Fell behind: said so, and waits to be dropped with its connection.
    FellBehind,
    Ended,
}

struct State {
    feed: Feed,
    mode: Mode,
    /// Why the viewer's membership must be read again before anything more is delivered.
    recheck: Option<Recheck>,
    /// Live items keep what their delivery shares (`broker::Shared`); replayed ones are
    /// this subscriber's alone.
    ready: VecDeque<Shared<FeedItem>>,
    /// Held while catching up, until the feed is live again.
    turn: Option<OwnedSemaphorePermit>,
    /// Why the feed ended, once everything ready before that has been delivered.
    failure: Option<AppError>,
}

pub fn feed(feed: Feed) -> impl Stream<Item = AppResult<Shared<FeedItem>>> {
    // Replay first what was already stored after the cursor, if anything was.
    let mode = if feed.next_seq <= feed.last_seq {
        Mode::CatchUp { until: None }
    } else {
        Mode::Live
    };
    let state = State {
        feed,
        mode,
        recheck: None,
        ready: VecDeque::new(),
        turn: None,
        failure: None,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.ready.pop_front() {
                return Some((Ok(item), state));
            }
            if let Mode::Ended = state.mode {
                state.turn = None;
                return state.failure.take().map(|err| (Err(err), state));
            }
            if let Err(err) = state.step().await {
                // The client resubscribes with `after` and loses nothing.
                state.mode = Mode::Ended;
                state.failure = Some(err);
            }
        }
    })
}

impl State {
    /// Does one thing: checks membership, reads a batch, or waits for one live event.
    async fn step(&mut self) -> AppResult<()> {
        if let Some(why) = self.recheck
            && matches!(self.mode, Mode::CatchUp { .. } | Mode::Live)
        {
            // Boxed, like a batch's read: see `read_batch`.
            return Box::pin(self.check_membership(why)).await;
        }
        match self.mode {
            Mode::CatchUp { until } => {
                if self.turn.is_none() {
                    self.turn = self.feed.subscriber.turn().await;
                }
                self.read_batch(until).await
            }
            Mode::Live => {
                self.turn = None;
                let event = tokio::select! {
                    event = self.feed.live.recv() => event,
                    changed = self.feed.resyncs.changed() => {
                        self.mode = match changed {
                            Ok(()) => Mode::CatchUp { until: None },
                            Err(_) => Mode::Ended,
                        };
                        self.recheck = Some(Recheck::Gap);
                        return Ok(());
                    }
                };
                self.on_event(event);
                Ok(())
            }
            Mode::FellBehind => {
                self.turn = None;
                std::future::pending().await
            }
            Mode::Ended => Ok(()),
        }
    }

    /// Ends the feed if the viewer is no longer a member of the room: quietly when they left,
    /// with FORBIDDEN when they were put out (or it is not known how they went).
    async fn check_membership(&mut self, why: Recheck) -> AppResult<()> {
        if self.turn.is_none() {
            self.turn = self.feed.subscriber.turn().await;
        }
        let (db, room_id, user_id) = (&self.feed.db, self.feed.room_id, self.feed.viewer_id);
        let member = retrying(room_id, || async move {
            let found = membership::Entity::find_by_id((room_id, user_id))
                .one(db)
                .await?;
            Ok(found.is_some())
        })
        .await?;
        self.recheck = None;
        if member {
            return Ok(());
        }
        self.mode = Mode::Ended;
        let reason = match why {
            Recheck::Departed(LeaveReason::Left) => return Ok(()),
            Recheck::Departed(LeaveReason::Removed) => "you were removed from this room",
            Recheck::Departed(LeaveReason::Banned) => "you were banned from this room",
            Recheck::Deleted => "this room was deleted",
            Recheck::Gap => "you are no longer a member of this room",
        };
        Err(AppError::Forbidden(reason))
    }

    fn on_event(&mut self, news: Result<Shared<RoomNews>, RecvError>) {
        let (news, memo) = match news {
            Ok(Shared { item, memo }) => (Ok(item), memo),
            Err(err) => (Err(err), Memo::default()),
        };
        match news {
            Ok(RoomNews::Event(event)) => {
                let seq = event.seq();
                if seq == self.feed.next_seq {
                    self.deliver(Shared { item: event, memo });
                } else if seq > self.feed.next_seq {
                    // A gap. Seqs are assigned in commit order, so everything up to this one
                    // is committed: read it all from the database.
                    self.mode = Mode::CatchUp { until: Some(seq) };
                    self.recheck = Some(Recheck::Gap);
                }
                // seq < next_seq: delivered already, by replay or catch-up.
            }
            // One's own typing is not news to oneself.
            Ok(RoomNews::Typing(typing)) if typing.user_id != self.feed.viewer_id => {
                self.ready.push_back(Shared {
                    item: FeedItem::Typing(typing),
                    memo,
                });
            }
            Ok(RoomNews::Typing(_)) => {}
            // Nor is one's own presence: a socket is open to hear it.
            Ok(RoomNews::Presence(change)) if change.user_id != self.feed.viewer_id => {
                let room_id = self.feed.room_id;
                self.ready.push_back(Shared {
                    item: FeedItem::Presence(room_id, change),
                    memo,
                });
            }
            Ok(RoomNews::Presence(_)) => {}
            Ok(RoomNews::Deleted) => self.recheck = Some(Recheck::Deleted),
            Err(RecvError::Lagged(missed)) => {
                metrics::counter!("chat_feed_lagged_total").increment(1);
                tracing::debug!(room = %self.feed.room_id, missed, "subscriber fell behind");
                self.feed.subscriber.fell_behind.cancel();
                self.mode = Mode::FellBehind;
            }
            Err(RecvError::Closed) => self.mode = Mode::Ended,
        }
    }

    /// Queues the next event. The viewer's own departure is delivered, then ends the feed once
    /// the database confirms it: they may have joined again since, and the event may be an
    /// old one sent again.
    fn deliver(&mut self, event: Shared<RoomEvent>) {
        self.feed.next_seq = event.item.seq() + 1;
        if let Some(reason) = event.item.ended_membership_of(self.feed.viewer_id) {
            self.recheck = Some(Recheck::Departed(reason));
        }
        self.ready.push_back(event.map(FeedItem::Event));
    }

    async fn read_batch(&mut self, until: Option<i64>) -> AppResult<()> {
        // Boxed: a query future is large, and inline it would size every idle subscription's
        // state for the rare moments it reads.
        let (db, room_id, from) = (&self.feed.db, self.feed.room_id, self.feed.next_seq);
        let (batch, complete) = Box::pin(retrying(room_id, || {
            events_from(db, room_id, from, CATCH_UP_BATCH)
        }))
        .await?;
        metrics::counter!("chat_catch_up_reads_total").increment(1);
        for event in batch {
            if until.is_some_and(|until| event.seq() > until) {
                break;
            }
            self.deliver(Shared::alone(event));
            if self.recheck.is_some() {
                // The viewer left: nothing after that until the database says they are back.
                return Ok(());
            }
        }
        if complete || until.is_some_and(|until| self.feed.next_seq > until) {
            self.mode = Mode::Live;
        }
        Ok(())
    }
}

/// A read of a subscription's (a feed's, an inbox's), about `subject` (its room, its user), for
/// the log. Catch-ups come in a burst after the database restarted, when the
/// pool's connections are dead and each fails once before it is replaced, or after a network
/// outage, when a dead connection may not answer at all: a read that fails or takes longer
/// than `QUERY_DEADLINE` is worth repeating before the subscription gives up.
pub(super) async fn retrying<T, F: Future<Output = AppResult<T>>>(
    subject: Uuid,
    mut read: impl FnMut() -> F,
) -> AppResult<T> {
    let mut attempt = 0;
    loop {
        let error = match tokio::time::timeout(QUERY_DEADLINE, read()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => err,
            Err(_) => anyhow::anyhow!("no answer within {QUERY_DEADLINE:?}").into(),
        };
        if attempt == READ_ATTEMPTS {
            return Err(error);
        }
        attempt += 1;
        tracing::debug!(%subject, %error, attempt, "a subscription's read failed; retrying");
        tokio::time::sleep(RETRY_DELAY * attempt).await;
    }
}
