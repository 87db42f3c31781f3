//! The receiving side of `fanout`: one task per subscriber socket recording what arrived, and
//! the tally that compares it with what was sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::sender::{sent_at, unix_nanos};
use crate::gql;
use crate::report::{ErrorCounts, Latencies, LatencySummary};
use crate::ws::{GqlSocket, Inbound};

/// One delivery as a subscriber saw it; latency 0 means the body had no timestamp.
#[derive(Clone, Copy, Debug)]
pub struct Delivery {
    pub seq: i64,
    pub latency_us: u32,
}

/// What one subscriber socket collected. Raw deliveries rather than a histogram per socket: a
/// 3-digit histogram is ~100 KiB, which thousands of sockets cannot each afford.
#[derive(Debug, Default)]
pub struct Received {
    pub deliveries: Vec<Delivery>,
    pub bad_frames: u64,
    pub first_bad_frame: Option<String>,
    /// Why the socket ended before the run did.
    pub lost: Option<String>,
}

/// Collects deliveries until `stop`, parsing only `seq` and `body` of each `next` frame.
pub async fn subscriber(
    mut socket: GqlSocket,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
    capacity: usize,
) -> Received {
    let mut received = Received {
        deliveries: Vec::with_capacity(capacity),
        ..Received::default()
    };
    loop {
        let inbound = tokio::select! {
            _ = stop.changed() => break,
            inbound = socket.recv() => inbound,
        };
        let lost = match inbound {
            Ok(Inbound::Next(text)) => {
                let now = unix_nanos();
                match gql::parse_message_added(&text) {
                    // Another kind of room event (typing): not a delivery.
                    Ok(None) => {}
                    Ok(Some(added)) => {
                        let latency_us = sent_at(&added.body).map_or(0, |t| {
                            (now.saturating_sub(t) / 1000).clamp(1, u64::from(u32::MAX)) as u32
                        });
                        received.deliveries.push(Delivery {
                            seq: added.seq,
                            latency_us,
                        });
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        received.bad_frames += 1;
                        received.first_bad_frame.get_or_insert(e);
                    }
                }
                continue;
            }
            Ok(Inbound::Error(text)) => format!("subscription error: {text}"),
            Ok(Inbound::Complete) => "completed by server".to_string(),
            Ok(Inbound::Closed {
                code: Some(code), ..
            }) => format!("closed {code}"),
            Ok(Inbound::Closed { code: None, .. }) => "closed".to_string(),
            Err(e) => e.kind,
        };
        received.lost = Some(lost);
        return received;
    }
    socket.close().await;
    received
}

/// Delivery figures over all subscribers.
#[derive(Debug, Default, Serialize)]
pub struct DeliveryStats {
    pub deliveries: u64,
    /// Send time to receive time, over every timed delivery of a sent message.
    pub latency: LatencySummary,
    /// Sent messages a subscriber never received, summed over subscribers.
    pub lost: u64,
    pub subscribers_with_loss: u64,
    /// Deliveries of a seq the subscriber had already received.
    pub duplicated: u64,
    /// Deliveries with a lower seq than the one before (per room, seqs only increase).
    pub out_of_order: u64,
    /// Distinct received seqs nobody sent in this run (another client writing to the room).
    pub unexpected: u64,
    /// `next` frames that could not be parsed or carried errors, and the first one's error.
    pub bad_frames: u64,
    pub first_bad_frame: Option<String>,
    /// Subscriber sockets that ended before the run did, by reason.
    pub sockets_lost: ErrorCounts,
}

impl DeliveryStats {
    /// Compares every subscriber's received seqs with the `sent` ones and merges latencies.
    pub fn tally(sent: &[i64], received: Vec<Received>) -> Self {
        let mut sent = sent.to_vec();
        sent.sort_unstable();
        let was_sent = |seq: &i64| sent.binary_search(seq).is_ok();
        let mut stats = DeliveryStats::default();
        let mut latencies = Latencies::new();
        for Received {
            mut deliveries,
            bad_frames,
            first_bad_frame,
            lost,
        } in received
        {
            stats.bad_frames += bad_frames;
            if stats.first_bad_frame.is_none() {
                stats.first_bad_frame = first_bad_frame;
            }
            if let Some(reason) = lost {
                stats.sockets_lost.add(&reason);
            }
            stats.deliveries += deliveries.len() as u64;
            stats.out_of_order += deliveries
                .windows(2)
                .filter(|w| w[1].seq < w[0].seq)
                .count() as u64;
            for delivery in deliveries
                .iter()
                .filter(|d| d.latency_us > 0 && was_sent(&d.seq))
            {
                latencies.record(Duration::from_micros(delivery.latency_us.into()));
            }

            deliveries.sort_unstable_by_key(|d| d.seq);
            let all = deliveries.len();
            deliveries.dedup_by_key(|d| d.seq);
            stats.duplicated += (all - deliveries.len()) as u64;
            let found = deliveries.iter().filter(|d| was_sent(&d.seq)).count();
            stats.unexpected += (deliveries.len() - found) as u64;
            let missing = (sent.len() - found) as u64;
            stats.lost += missing;
            stats.subscribers_with_loss += u64::from(missing > 0);
        }
        stats.latency = latencies.summary();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(seqs: &[i64]) -> Received {
        let deliveries = seqs
            .iter()
            .map(|&seq| Delivery {
                seq,
                latency_us: 1000,
            })
            .collect();
        Received {
            deliveries,
            ..Received::default()
        }
    }

    #[test]
    fn counts_lost_duplicated_reordered_and_unexpected() {
        let sent = [3, 1, 2, 4];
        let stats = DeliveryStats::tally(
            &sent,
            vec![
                received(&[1, 2, 3, 4]),
                received(&[1, 3, 2, 2]), // 4 lost, 2 duplicated, one step back
                received(&[1, 2, 3, 4, 9]), // 9 unexpected
            ],
        );
        assert_eq!(stats.deliveries, 13);
        assert_eq!(stats.lost, 1);
        assert_eq!(stats.subscribers_with_loss, 1);
        assert_eq!(stats.duplicated, 1);
        assert_eq!(stats.out_of_order, 1);
        assert_eq!(stats.unexpected, 1);
        // The duplicate's latency counts (it was delivered); the unexpected one's does not.
        assert_eq!(stats.latency.count, 12);
    }
}
