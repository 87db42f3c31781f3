//! What one announcement carries, on either engine: an event in short JSON, sealed (see
//! `broker::seal`), under Postgres's 8000-byte limit for a notification (NATS takes more, but
//! one format serves both). A message goes whole when it fits, else without its body, which
//! each instance then reads once for all its subscribers.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    broker::{ChatMessage, Event, RoomEvent, seal::Seal},
    entity::{
        membership::RoomRole,
        room_event::{self, EventKind, LeaveReason},
    },
};

/// Postgres refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;
const MAX_PLAINTEXT: usize = Seal::max_plaintext(MAX_PAYLOAD);
/// Session ids per revocation notification (37 bytes each as JSON).
const REVOCATIONS_PER_NOTIFY: usize = 150;
/// Presence changes per notification (about 80 bytes each as JSON).
const PRESENCE_PER_NOTIFY: usize = 60;

/// Short keys: the payload is capped.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "k")]
pub(super) enum Wire {
    #[serde(rename = "m")]
    Message(WireMessage),
    #[serde(rename = "e")]
    Change(WireChange),
    #[serde(rename = "d")]
    RoomDeleted { r: Uuid },
    #[serde(rename = "r")]
    ReadUpTo { u: Uuid, r: Uuid, s: i64 },
    #[serde(rename = "t")]
    Typing {
        r: Uuid,
        u: Uuid,
        y: bool,
        t: DateTime<Utc>,
    },
    /// Users, whether online, since when.
    #[serde(rename = "p")]
    Presence { p: Vec<(Uuid, bool, DateTime<Utc>)> },
    #[serde(rename = "x")]
    Revoked { s: Vec<Uuid> },
    #[serde(rename = "u")]
    UserChanged { u: Uuid },
    /// An instance could not announce some of its events (its queue to NATS overflowed while
    /// NATS was away): every instance reads what it may have missed from the database.
    #[serde(rename = "g")]
    CatchUp {},
}

/// A message: id, room, seq, event seq, author, client id, time, the message it replies to,
/// body.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct WireMessage {
    pub i: Uuid,
    pub r: Uuid,
    pub s: i64,
    pub e: i64,
    pub a: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c: Option<String>,
    pub t: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<Uuid>,
    /// Absent when the message did not fit: read it from the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
}

/// Any other room event (`room_event::Model`): room, seq, kind, user, actor, role, reason,
/// name, topic, time, message, emoji. Its name and topic are short enough to fit; an event
/// about a message names it, and each listener reads the message as it is now.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct WireChange {
    pub r: Uuid,
    pub s: i64,
    pub v: EventKind,
    pub u: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub o: Option<RoomRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<LeaveReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    pub t: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub j: Option<String>,
}

impl From<&room_event::Model> for WireChange {
    fn from(c: &room_event::Model) -> Self {
        Self {
            r: c.room_id,
            s: c.seq,
            v: c.kind,
            u: c.user_id,
            a: c.actor_id,
            o: c.role,
            w: c.reason,
            n: c.name.clone(),
            p: c.topic.clone(),
            t: c.created_at,
            m: c.message_id,
            j: c.emoji.clone(),
        }
    }
}

impl From<WireChange> for room_event::Model {
    fn from(c: WireChange) -> Self {
        Self {
            room_id: c.r,
            seq: c.s,
            kind: c.v,
            user_id: c.u,
            actor_id: c.a,
            role: c.o,
            reason: c.w,
            name: c.n,
            topic: c.p,
            created_at: c.t,
            message_id: c.m,
            emoji: c.j,
        }
    }
}

/// The sealed payloads for `event`, each under the size limit.
pub(super) fn encode(event: &Event, seal: &Seal) -> Vec<String> {
    let to_json = |wire: &Wire| serde_json::to_vec(wire).expect("wire events serialize");
    let plaintexts = match event {
        Event::Room(RoomEvent::Message(chat)) => vec![message(chat, to_json)],
        Event::Room(RoomEvent::Change(change) | RoomEvent::MessageChange(change, _)) => {
            vec![to_json(&Wire::Change(change.as_ref().into()))]
        }
        Event::RoomDeleted { room_id } => vec![to_json(&Wire::RoomDeleted { r: *room_id })],
        Event::Typing(typing) => vec![to_json(&Wire::Typing {
            r: typing.room_id,
            u: typing.user_id,
            y: typing.typing,
            t: typing.until,
        })],
        Event::ReadUpTo {
            user_id,
            room_id,
            seq,
        } => vec![to_json(&Wire::ReadUpTo {
            u: *user_id,
            r: *room_id,
            s: *seq,
        })],
        Event::Presence(changes) => changes
            .chunks(PRESENCE_PER_NOTIFY)
            .map(|chunk| {
                let p = chunk.iter().map(|c| (c.user_id, c.online, c.at)).collect();
                to_json(&Wire::Presence { p })
            })
            .collect(),
        Event::Revoked(sessions) => sessions
            .chunks(REVOCATIONS_PER_NOTIFY)
            .map(|chunk| to_json(&Wire::Revoked { s: chunk.to_vec() }))
            .collect(),
        Event::UserChanged(user_id) => vec![to_json(&Wire::UserChanged { u: *user_id })],
    };
    plaintexts.iter().map(|p| seal.seal(p)).collect()
}

fn message(chat: &Arc<ChatMessage>, to_json: impl Fn(&Wire) -> Vec<u8>) -> Vec<u8> {
    let m = &chat.message;
    let mut wire = Wire::Message(WireMessage {
        i: m.id,
        r: m.room_id,
        s: m.seq,
        e: m.event_seq,
        a: m.author_id,
        c: m.client_msg_id.clone(),
        t: m.created_at,
        p: m.reply_to_id,
        b: Some(m.body.clone()),
    });
    let json = to_json(&wire);
    if json.len() <= MAX_PLAINTEXT {
        return json;
    }
    if let Wire::Message(message) = &mut wire {
        message.b = None;
    }
    to_json(&wire)
}

/// The sealed payload that asks every instance to catch up.
pub(super) fn catch_up(seal: &Seal) -> String {
    seal.seal(&serde_json::to_vec(&Wire::CatchUp {}).expect("wire events serialize"))
}

/// The event in a payload, or `None` for one that was not sealed by an instance of ours.
pub(super) fn decode(payload: &str, seal: &Seal) -> Option<Wire> {
    let plaintext = seal.open(payload)?;
    // Sealed by us, so well-formed unless another version of the server sealed it.
    serde_json::from_slice(&plaintext)
        .inspect_err(|err| tracing::error!(error = %err, "undecodable sealed notification"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        broker::PresenceChange,
        entity::{message, user},
    };

    fn seal() -> Seal {
        Seal::new([3; 32], "test")
    }

    fn chat(body: &str) -> Event {
        Event::Room(RoomEvent::Message(Arc::new(ChatMessage {
            message: message::Model {
                id: Uuid::now_v7(),
                room_id: Uuid::now_v7(),
                seq: 7,
                event_seq: 9,
                author_id: Uuid::now_v7(),
                body: body.into(),
                client_msg_id: Some("c-1".into()),
                created_at: crate::entity::now(),
                edited_at: None,
                deleted_at: None,
                reply_to_id: None,
            },
            author: Arc::new(user::Model {
                id: Uuid::now_v7(),
                username: "a".into(),
                email: "a@b.co".into(),
                password_hash: String::new(),
                role: user::Role::User,
                created_at: crate::entity::now(),
                email_verified_at: None,
                totp_secret: None,
                totp_enabled_at: None,
                totp_last_step: None,
                deleted_at: None,
            }),
        })))
    }

    #[test]
    fn small_messages_travel_whole_and_sealed() {
        let payloads = encode(&chat("hello"), &seal());
        assert!(!payloads[0].contains("hello"));
        let wire = decode(&payloads[0], &seal()).unwrap();
        assert!(
            matches!(wire, Wire::Message(WireMessage { b: Some(ref b), s: 7, .. }) if b == "hello")
        );
    }

    #[test]
    fn large_messages_leave_their_body_behind() {
        // 4000 four-byte characters: 16 KB, twice what a notification may carry.
        let payloads = encode(&chat(&"😀".repeat(4000)), &seal());
        assert!(payloads[0].len() <= MAX_PAYLOAD);
        let wire = decode(&payloads[0], &seal()).unwrap();
        assert!(matches!(
            wire,
            Wire::Message(WireMessage { b: None, s: 7, .. })
        ));
    }

    #[test]
    fn revocations_are_chunked_under_the_limit() {
        let sessions: Vec<Uuid> = (0..1000).map(|_| Uuid::now_v7()).collect();
        let payloads = encode(&Event::Revoked(sessions), &seal());
        assert_eq!(payloads.len(), 7);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
    }

    #[test]
    fn presence_is_chunked_under_the_limit() {
        let changes: Vec<PresenceChange> = (0..500)
            .map(|i| PresenceChange {
                user_id: Uuid::now_v7(),
                online: i % 2 == 0,
                at: crate::entity::now(),
            })
            .collect();
        let payloads = encode(&Event::Presence(changes.clone()), &seal());
        assert_eq!(payloads.len(), 9);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let Some(Wire::Presence { p }) = decode(&payloads[0], &seal()) else {
            panic!("not presence");
        };
        assert_eq!(p[1], (changes[1].user_id, false, changes[1].at));
    }

    #[test]
    fn room_changes_travel_whole() {
        let change = room_event::Model {
            room_id: Uuid::now_v7(),
            seq: 12,
            kind: EventKind::Left,
            user_id: Uuid::now_v7(),
            actor_id: Some(Uuid::now_v7()),
            role: None,
            reason: Some(LeaveReason::Banned),
            name: None,
            topic: Some("ü".repeat(500)),
            created_at: crate::entity::now(),
            message_id: None,
            emoji: None,
        };
        let event = Event::Room(RoomEvent::Change(Arc::new(change.clone())));
        let payloads = encode(&event, &seal());
        assert!(payloads[0].len() <= MAX_PAYLOAD);
        let Some(Wire::Change(wire)) = decode(&payloads[0], &seal()) else {
            panic!("not a change");
        };
        assert_eq!(room_event::Model::from(wire), change);
    }

    #[test]
    fn what_was_not_sealed_by_us_decodes_to_nothing() {
        let forged = serde_json::to_string(&Wire::Revoked {
            s: vec![Uuid::now_v7()],
        })
        .unwrap();
        assert_eq!(decode(&forged, &seal()), None);
        let other_key = encode(&chat("hi"), &Seal::new([4; 32], "test"));
        assert_eq!(decode(&other_key[0], &seal()), None);
    }
}
