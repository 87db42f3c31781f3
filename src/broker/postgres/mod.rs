//! Fan-out across instances with Postgres LISTEN/NOTIFY.
//!
//! `stage` queues a NOTIFY in the transaction that stores the event: Postgres sends it only if
//! that transaction commits, and in commit order. Every instance (the sender's too) LISTENs and
//! hands what it hears to its hub. A notification carries at most 8000 bytes: a message goes
//! whole when it fits, else without its body, which the listener then reads once for the whole
//! instance. When the listening connection drops, notifications are lost until it is back, so
//! on every (re)connection the listener tells subscribers to catch up from the database and
//! re-reads recent revocations.
use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    Statement, sqlx::postgres::PgListener,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Authors, Broker, ChatMessage, Event, Hub};
use crate::entity::message;

const CHANNEL: &str = "chat_events";
/// Postgres refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;
/// Session ids per revocation notification (37 bytes each as JSON).
const REVOCATIONS_PER_NOTIFY: usize = 150;

/// What travels in a notification. Short keys: the payload is capped.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "k")]
enum Wire {
    #[serde(rename = "m")]
    Message {
        i: Uuid,
        r: Uuid,
        s: i64,
        a: Uuid,
        #[serde(skip_serializing_if = "Option::is_none")]
        c: Option<String>,
        t: DateTime<Utc>,
        /// Absent when the message did not fit: read it from the database.
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<String>,
    },
    #[serde(rename = "l")]
    Left { r: Uuid, u: Uuid },
    #[serde(rename = "x")]
    Revoked { s: Vec<Uuid> },
}

/// The payloads for `event`, each under the size limit.
fn encode(event: &Event) -> Vec<String> {
    let to_json = |wire: &Wire| serde_json::to_string(wire).expect("wire events serialize");
    match event {
        Event::Message(chat) => {
            let m = &chat.message;
            let mut wire = Wire::Message {
                i: m.id,
                r: m.room_id,
                s: m.seq,
                a: m.author_id,
                c: m.client_msg_id.clone(),
                t: m.created_at,
                b: Some(m.body.clone()),
            };
            let mut json = to_json(&wire);
            if json.len() > MAX_PAYLOAD {
                if let Wire::Message { b, .. } = &mut wire {
                    *b = None;
                }
                json = to_json(&wire);
            }
            vec![json]
        }
        Event::Left { room_id, user_id } => vec![to_json(&Wire::Left {
            r: *room_id,
            u: *user_id,
        })],
        Event::Revoked(sessions) => sessions
            .chunks(REVOCATIONS_PER_NOTIFY)
            .map(|chunk| to_json(&Wire::Revoked { s: chunk.to_vec() }))
            .collect(),
    }
}

pub struct PgBroker;

impl PgBroker {
    /// The broker, with this instance's listener started: it hands notifications to `hub`
    /// until `shutdown`. It opens a connection of its own to `url`, outside the request pool:
    /// LISTEN holds a connection for good, and its reconnects must not take connections
    /// requests need.
    pub fn start(
        url: SecretString,
        db: DatabaseConnection,
        hub: Arc<Hub>,
        authors: Arc<dyn Authors>,
        shutdown: CancellationToken,
    ) -> Self {
        tokio::spawn(listen(url, db, hub, authors, shutdown));
        Self
    }
}

#[async_trait::async_trait]
impl Broker for PgBroker {
    async fn stage(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), DbErr> {
        for payload in encode(event) {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// Nothing to do: the notification goes out with the commit and comes back to us too.
    fn committed(&self, _event: Event) {}
}

async fn listen(
    url: SecretString,
    db: DatabaseConnection,
    hub: Arc<Hub>,
    authors: Arc<dyn Authors>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let mut listener = match connect(&url).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?backoff, "LISTEN connection failed");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        caught_up(&hub, &db).await;
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    deliver(notification.payload(), &db, &hub, authors.as_ref()).await;
                }
                // The connection dropped and was re-established (and LISTENs again); whatever
                // was sent in between is only in the database.
                Ok(None) => {
                    tracing::warn!("LISTEN connection was lost; reconnected");
                    caught_up(&hub, &db).await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &SecretString) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url.expose_secret()).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// After (re)connecting: revocations are re-read, then subscribers read what they missed and
/// sockets check their session against the refreshed set (hence this order).
async fn caught_up(hub: &Hub, db: &DatabaseConnection) {
    if let Err(err) = hub.revocations().load_recent(db).await {
        tracing::warn!(error = %err, "could not re-read revocations");
    }
    hub.resync();
}

async fn deliver(payload: &str, db: &DatabaseConnection, hub: &Hub, authors: &dyn Authors) {
    let wire: Wire = match serde_json::from_str(payload) {
        Ok(wire) => wire,
        Err(err) => {
            tracing::error!(error = %err, "malformed notification on {CHANNEL}");
            return;
        }
    };
    let event = match wire {
        Wire::Message {
            i,
            r,
            s,
            a,
            c,
            t,
            b,
        } => {
            let message = match b {
                Some(body) => Ok(message::Model {
                    id: i,
                    room_id: r,
                    seq: s,
                    author_id: a,
                    body,
                    client_msg_id: c,
                    created_at: t,
                    edited_at: None,
                }),
                None => message::Entity::find_by_id(i)
                    .one(db)
                    .await
                    .and_then(|m| m.ok_or_else(|| DbErr::RecordNotFound(i.to_string()))),
            };
            let author = authors.author(a).await;
            match (message, author) {
                (Ok(message), Ok(Some(author))) => {
                    Event::Message(Arc::new(ChatMessage { message, author }))
                }
                // Subscribers will find it in the database when they catch up.
                (message, author) => {
                    tracing::warn!(
                        message = ?message.err(),
                        author = ?author.err(),
                        "could not complete a message notification; subscribers resync"
                    );
                    hub.resync();
                    return;
                }
            }
        }
        Wire::Left { r, u } => Event::Left {
            room_id: r,
            user_id: u,
        },
        Wire::Revoked { s } => Event::Revoked(s),
    };
    hub.dispatch(event);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::user;

    fn chat(body: &str) -> Event {
        Event::Message(Arc::new(ChatMessage {
            message: message::Model {
                id: Uuid::now_v7(),
                room_id: Uuid::now_v7(),
                seq: 7,
                author_id: Uuid::now_v7(),
                body: body.into(),
                client_msg_id: Some("c-1".into()),
                created_at: crate::entity::now(),
                edited_at: None,
            },
            author: Arc::new(user::Model {
                id: Uuid::now_v7(),
                username: "a".into(),
                email: "a@b.co".into(),
                password_hash: String::new(),
                role: user::Role::User,
                created_at: crate::entity::now(),
                deleted_at: None,
            }),
        }))
    }

    #[test]
    fn small_messages_travel_whole() {
        let payloads = encode(&chat("hello"));
        let wire: Wire = serde_json::from_str(&payloads[0]).unwrap();
        assert!(matches!(wire, Wire::Message { b: Some(ref b), s: 7, .. } if b == "hello"));
    }

    #[test]
    fn large_messages_leave_their_body_behind() {
        // 4000 four-byte characters: 16 KB, twice what a notification may carry.
        let payloads = encode(&chat(&"😀".repeat(4000)));
        assert!(payloads[0].len() <= MAX_PAYLOAD);
        let wire: Wire = serde_json::from_str(&payloads[0]).unwrap();
        assert!(matches!(wire, Wire::Message { b: None, s: 7, .. }));
    }

    #[test]
    fn revocations_are_chunked_under_the_limit() {
        let sessions: Vec<Uuid> = (0..1000).map(|_| Uuid::now_v7()).collect();
        let payloads = encode(&Event::Revoked(sessions));
        assert_eq!(payloads.len(), 7);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
    }
}
