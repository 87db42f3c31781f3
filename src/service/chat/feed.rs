//! One subscriber's live view of a room: every message from `next_seq` on, exactly once, in
//! seq order.
//!
//! The live channel is fast but not complete: the Postgres listener can lose its connection,
//! and with the in-memory broker two concurrent sends may be announced out of order. The
//! database is complete. So the feed tracks the next seq it owes, delivers a live message only
//! when it is that one, skips what it already delivered, and reads any gap from the database,
//! a batch at a time. Subscribing to the channel before the first read is what makes the
//! hand-over from replay to live lossless.
//!
//! A replay of a long history reads it a batch at a time, and only as fast as the subscriber
//! takes it (the stream is pulled by its socket). While catching up, the feed holds one of its
//! `Subscriber`'s turns: a client replays a bounded number of histories at once, and takes
//! turns with its queries and mutations.
//!
//! The channel holds a bounded number of events per room. A subscriber that falls further
//! behind than that cannot keep up with its room: its feed says so to its `Subscriber` and
//! delivers nothing more, its connection is closed, and its client resumes with `after`.
//! Catching it up from the database instead would cost a read per event for as long as it
//! stays slow.
use std::{collections::VecDeque, sync::Arc};

use futures_util::{Stream, stream};
use sea_orm::DatabaseConnection;
use tokio::sync::{OwnedSemaphorePermit, broadcast::error::RecvError, watch};
use uuid::Uuid;

use super::{
    Subscriber,
    messages::{CATCH_UP_BATCH, messages_from},
};
use crate::{
    broker::{ChatMessage, RoomEvent, RoomSubscription},
    error::{AppError, AppResult},
};

/// Reads of a catch-up batch before the feed ends with the error, and the delay before the
/// first retry (growing linearly).
const READ_ATTEMPTS: u32 = 4;
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

pub struct Feed {
    pub db: DatabaseConnection,
    pub room_id: Uuid,
    pub viewer_id: Uuid,
    /// The seq of the next message this subscriber gets.
    pub next_seq: i64,
    /// The room's newest seq when the subscription started: anything up to it is replayed
    /// from the database, anything after comes live.
    pub last_seq: i64,
    pub live: RoomSubscription,
    pub resyncs: watch::Receiver<u64>,
    pub subscriber: Subscriber,
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
    ready: VecDeque<Arc<ChatMessage>>,
    /// Held while catching up, until the feed is live again.
    turn: Option<OwnedSemaphorePermit>,
    /// Why the feed ended, once everything ready before that has been delivered.
    failure: Option<AppError>,
}

pub fn feed(feed: Feed) -> impl Stream<Item = AppResult<Arc<ChatMessage>>> {
    // Replay first what was already stored after the cursor, if anything was.
    let mode = if feed.next_seq <= feed.last_seq {
        Mode::CatchUp { until: None }
    } else {
        Mode::Live
    };
    let state = State {
        feed,
        mode,
        ready: VecDeque::new(),
        turn: None,
        failure: None,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(message) = state.ready.pop_front() {
                return Some((Ok(message), state));
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
    /// Does one thing: reads a batch, or waits for one live event.
    async fn step(&mut self) -> AppResult<()> {
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

    fn on_event(&mut self, event: Result<RoomEvent, RecvError>) {
        match event {
            Ok(RoomEvent::Message(message)) => {
                let seq = message.message.seq;
                if seq == self.feed.next_seq {
                    self.feed.next_seq += 1;
                    self.ready.push_back(message);
                } else if seq > self.feed.next_seq {
                    // A gap. Seqs are assigned in commit order, so everything up to this one
                    // is committed: read it all from the database.
                    self.mode = Mode::CatchUp { until: Some(seq) };
                }
                // seq < next_seq: delivered already, by replay or catch-up.
            }
            Ok(RoomEvent::Left { user_id }) if user_id == self.feed.viewer_id => {
                self.mode = Mode::Ended;
            }
            Ok(RoomEvent::Left { .. }) => {}
            Err(RecvError::Lagged(missed)) => {
                metrics::counter!("chat_feed_lagged_total").increment(1);
                tracing::debug!(room = %self.feed.room_id, missed, "subscriber fell behind");
                self.feed.subscriber.fell_behind.cancel();
                self.mode = Mode::FellBehind;
            }
            Err(RecvError::Closed) => self.mode = Mode::Ended,
        }
    }

    async fn read_batch(&mut self, until: Option<i64>) -> AppResult<()> {
        // Boxed: a query future is large, and inline it would size every idle subscription's
        // state for the rare moments it reads.
        let batch = Box::pin(read_retrying(
            &self.feed.db,
            self.feed.room_id,
            self.feed.next_seq,
        ))
        .await?;
        metrics::counter!("chat_catch_up_reads_total").increment(1);
        let exhausted = (batch.len() as u64) < CATCH_UP_BATCH;
        for message in batch {
            if until.is_some_and(|until| message.message.seq > until) {
                break;
            }
            self.feed.next_seq = message.message.seq + 1;
            self.ready.push_back(Arc::new(message));
        }
        if exhausted || until.is_some_and(|until| self.feed.next_seq > until) {
            self.mode = Mode::Live;
        }
        Ok(())
    }
}

/// A catch-up batch. Catch-ups come in a burst after the database restarted, when the pool's
/// connections are dead and each fails once before it is replaced: a failed read is worth
/// repeating before the subscription gives up.
async fn read_retrying(
    db: &DatabaseConnection,
    room_id: Uuid,
    from: i64,
) -> AppResult<Vec<ChatMessage>> {
    let mut attempt = 0;
    loop {
        match messages_from(db, room_id, from, CATCH_UP_BATCH).await {
            Ok(batch) => return Ok(batch),
            Err(err) if attempt < READ_ATTEMPTS => {
                attempt += 1;
                tracing::debug!(room = %room_id, error = %err, attempt, "catch-up read failed; retrying");
                tokio::time::sleep(RETRY_DELAY * attempt).await;
            }
            Err(err) => return Err(err),
        }
    }
}
