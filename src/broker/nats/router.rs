//! Subscribes to what the hub says this instance needs, and unsubscribes when it no longer
//! does: one NATS subscription per topic, each with a task that hands what arrives to
//! `Receive` in the order it arrives (a room's events are published in commit order by each
//! instance; the feeds put several instances' in seq order).
use std::{collections::HashMap, sync::Arc};

use async_nats::{Client, Subscriber, connection::State};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{FLUSH_DEADLINE, Subjects};
use crate::broker::{
    interest::{Change, Topic},
    receive::Receive,
};

pub(super) async fn route(
    client: Client,
    subjects: Subjects,
    mut changes: mpsc::UnboundedReceiver<Change>,
    receive: Arc<Receive>,
    shutdown: CancellationToken,
) {
    let mut following: HashMap<Topic, CancellationToken> = HashMap::new();
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => match change {
                Some(change) => change,
                None => return,
            },
        };
        match change {
            Change::Follow(topic, heard) => match client.subscribe(subjects.of(topic)).await {
                Ok(subscriber) => {
                    let stop = shutdown.child_token();
                    following.insert(topic, stop.clone());
                    let listening = listen(subscriber, client.clone(), heard, receive.clone());
                    // Dropping the subscription when stopped unsubscribes.
                    tokio::spawn(async move { stop.run_until_cancelled(listening).await });
                }
                Err(err) => {
                    tracing::error!(error = %err, ?topic, "could not subscribe on NATS");
                    heard.send_replace(true);
                }
            },
            Change::Unfollow(topic) => {
                if let Some(stop) = following.remove(&topic) {
                    stop.cancel();
                }
            }
        }
        metrics::gauge!("chat_broker_followed_topics").set(following.len() as f64);
    }
}

/// Hands what one subscription hears to `receive`, once the server has it in force.
async fn listen(
    mut subscriber: Subscriber,
    client: Client,
    heard: watch::Sender<bool>,
    receive: Arc<Receive>,
) {
    // A flush is answered after the subscription it follows is in force. While NATS is away
    // there is nothing to wait for: the reconnection re-subscribes and everyone catches up.
    if client.connection_state() == State::Connected
        && tokio::time::timeout(FLUSH_DEADLINE, client.flush())
            .await
            .is_err()
    {
        tracing::warn!("NATS did not confirm a subscription in time");
    }
    heard.send_replace(true);
    while let Some(message) = subscriber.next().await {
        match std::str::from_utf8(&message.payload) {
            Ok(payload) => receive.deliver(payload).await,
            // Not base64, so not sealed.
            Err(_) => receive.refuse(),
        }
    }
}
