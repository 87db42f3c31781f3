//! The sending side of `fanout`: paced `sendMessage` calls whose bodies carry their send time.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use http::HeaderValue;
use tokio::time::{Instant, MissedTickBehavior};

use super::FanoutConfig;
use crate::client::{Endpoint, HttpClient};
use crate::gql::{self, CallError};
use crate::report::{ErrorCounts, Latencies};

/// What the senders collected: the seqs the server assigned, and how long `sendMessage` took.
#[derive(Default)]
pub struct Sent {
    pub seqs: Vec<i64>,
    pub latencies: Latencies,
    pub errors: ErrorCounts,
}

/// Runs `config.senders` senders, each on its own connection at `rate / senders` messages per
/// second, staggered so the messages are evenly spaced, until `duration` has passed. Each
/// sender waits for a response before its next message, so a slow server lowers the achieved
/// rate (which the report shows) instead of piling up requests.
pub async fn send_all(
    config: &FanoutConfig,
    endpoint: &Arc<Endpoint>,
    auth: &HeaderValue,
    room_id: &str,
    run: &str,
) -> Result<Sent> {
    let senders = config.senders.max(1);
    let period = Duration::from_secs_f64(senders as f64 / config.rate.max(0.001));
    let start = Instant::now();
    let end = start + config.duration;
    let tasks: Vec<_> = (0..senders)
        .map(|i| {
            let first = start + period.mul_f64(i as f64 / senders as f64);
            let client = HttpClient::new(endpoint.clone());
            let (auth, room_id) = (auth.clone(), room_id.to_string());
            // clientMsgIds unique per run and sender: the server de-duplicates on them.
            let id_prefix = format!("{run}-{i}-");
            let min_len = config.body_size;
            tokio::spawn(async move {
                let mut client = client;
                let mut sent = Sent::default();
                let mut ticker = tokio::time::interval_at(first, period);
                ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
                for n in 0u64.. {
                    if ticker.tick().await >= end {
                        break;
                    }
                    let client_msg_id = format!("{id_prefix}{n}");
                    let body = gql::send_message_body(
                        &room_id,
                        &timestamped_body(min_len),
                        &client_msg_id,
                    );
                    let started = Instant::now();
                    let response = client
                        .post(body, Some(&auth))
                        .await
                        .map_err(CallError::from);
                    match response.and_then(|r| gql::decode_sent_seq(&r)) {
                        Ok(seq) => {
                            sent.latencies.record(started.elapsed());
                            sent.seqs.push(seq);
                        }
                        Err(e) => sent.errors.add(&e.kind()),
                    }
                }
                sent
            })
        })
        .collect();
    let mut total = Sent::default();
    for task in tasks {
        let sent = task.await.context("sender task panicked")?;
        total.seqs.extend(sent.seqs);
        total.latencies.merge(&sent.latencies);
        total.errors.merge(&sent.errors);
    }
    Ok(total)
}

/// `t=<unix nanos>`, padded with ` xxx...` to `min_len` characters.
pub fn timestamped_body(min_len: usize) -> String {
    let mut text = format!("t={}", unix_nanos());
    if text.len() < min_len {
        text.push(' ');
        text.extend(std::iter::repeat_n('x', min_len.saturating_sub(text.len())));
    }
    text
}

/// The send time in a body made by [`timestamped_body`]; `None` for any other body.
pub fn sent_at(body: &str) -> Option<u64> {
    body.strip_prefix("t=")?.split(' ').next()?.parse().ok()
}

/// Wall-clock time, comparable between processes on the same machine.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_their_send_time_and_padding() {
        let before = unix_nanos();
        let body = timestamped_body(100);
        assert_eq!(body.len(), 100);
        let t = sent_at(&body).expect("a timestamp");
        assert!(t >= before && t <= unix_nanos());
        assert!(sent_at(&timestamped_body(0)).is_some());
        assert_eq!(sent_at("hello"), None);
    }
}
