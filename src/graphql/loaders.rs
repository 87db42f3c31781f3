//! Batched reads for fields that many objects of one response (or many subscribers of one
//! event) ask for at once: a message's reactions, the viewer's own reactions, the message it
//! replies to, whom it mentions, whether a user is online and shares a room with the viewer,
//! and the figures of a room in a list (the viewer's membership, unread messages and
//! mentions, members, members online).
//! Each loader is shared by the whole schema and caches nothing: it only gathers
//! the keys asked for in the same moment into one query.
use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use crate::{
    entity::membership,
    error::AppError,
    service::chat::{Chat, ChatMessage, PresenceState, ReactionCount},
};

/// Every loader of the schema.
pub struct Loaders {
    pub reactions: DataLoader<Reactions>,
    pub own_reactions: DataLoader<OwnReactions>,
    pub messages: DataLoader<Messages>,
    pub mentions: DataLoader<Mentions>,
    pub presence: DataLoader<Presences>,
    pub sharing: DataLoader<Sharing>,
    pub memberships: DataLoader<Memberships>,
    pub unread: DataLoader<Unread>,
    pub mention_counts: DataLoader<Unread>,
    pub member_counts: DataLoader<MemberCounts>,
    pub online_counts: DataLoader<OnlineCounts>,
}

impl Loaders {
    pub fn new(chat: Arc<Chat>) -> Self {
        Self {
            reactions: DataLoader::new(Reactions(chat.clone()), tokio::spawn),
            own_reactions: DataLoader::new(OwnReactions(chat.clone()), tokio::spawn),
            messages: DataLoader::new(Messages(chat.clone()), tokio::spawn),
            mentions: DataLoader::new(Mentions(chat.clone()), tokio::spawn),
            presence: DataLoader::new(Presences(chat.clone()), tokio::spawn),
            sharing: DataLoader::new(Sharing(chat.clone()), tokio::spawn),
            memberships: DataLoader::new(Memberships(chat.clone()), tokio::spawn),
            unread: DataLoader::new(
                Unread {
                    chat: chat.clone(),
                    mentions: false,
                },
                tokio::spawn,
            ),
            mention_counts: DataLoader::new(
                Unread {
                    chat: chat.clone(),
                    mentions: true,
                },
                tokio::spawn,
            ),
            member_counts: DataLoader::new(MemberCounts(chat.clone()), tokio::spawn),
            online_counts: DataLoader::new(OnlineCounts(chat), tokio::spawn),
        }
    }
}

/// A message's reactions, by message id.
pub struct Reactions(Arc<Chat>);

impl Loader<Uuid> for Reactions {
    type Value = Arc<Vec<ReactionCount>>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let counts = self.0.reaction_counts(keys).await?;
        Ok(counts.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// The emoji a user reacted with to a message, by (message id, user id).
pub struct OwnReactions(Arc<Chat>);

impl Loader<(Uuid, Uuid)> for OwnReactions {
    type Value = Arc<Vec<String>>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Self::Value>, Self::Error> {
        let mine = self.0.reactions_of(keys).await?;
        Ok(mine.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// Messages with their authors, by id.
pub struct Messages(Arc<Chat>);

impl Loader<Uuid> for Messages {
    type Value = Arc<ChatMessage>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let found = self.0.messages_by_id(keys).await?;
        Ok(found.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// Whom a message mentions, by message id.
pub struct Mentions(Arc<Chat>);

impl Loader<Uuid> for Mentions {
    type Value = Arc<Vec<Uuid>>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let found = self.0.mentions_of(keys).await?;
        Ok(found.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// Whether and since when a user is online, by user id.
pub struct Presences(Arc<Chat>);

impl Loader<Uuid> for Presences {
    type Value = PresenceState;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.presence_of(keys).await
    }
}

/// Whether two users share a room, by (viewer, user): present when they do.
pub struct Sharing(Arc<Chat>);

impl Loader<(Uuid, Uuid)> for Sharing {
    type Value = ();
    type Error = AppError;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Self::Value>, Self::Error> {
        let mut by_viewer: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for &(viewer, user) in keys {
            by_viewer.entry(viewer).or_default().push(user);
        }
        let mut found = HashMap::new();
        for (viewer, users) in by_viewer {
            for user in self.0.sharing_a_room(viewer, &users).await? {
                found.insert((viewer, user), ());
            }
        }
        Ok(found)
    }
}

/// Groups keys `(room, user, ...)` by user: each user's rooms are one query.
fn by_user<K: Copy>(keys: &[K], user: impl Fn(&K) -> Uuid) -> HashMap<Uuid, Vec<K>> {
    let mut grouped: HashMap<Uuid, Vec<K>> = HashMap::new();
    for key in keys {
        grouped.entry(user(key)).or_default().push(*key);
    }
    grouped
}

/// A user's membership of a room, by (room id, user id): present when they are a member.
pub struct Memberships(Arc<Chat>);

impl Loader<(Uuid, Uuid)> for Memberships {
    type Value = Arc<membership::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Self::Value>, Self::Error> {
        let mut found = HashMap::new();
        for (user, keys) in by_user(keys, |k| k.1) {
            let rooms: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
            for (room, membership) in self.0.memberships_of(user, &rooms).await? {
                found.insert((room, user), Arc::new(membership));
            }
        }
        Ok(found)
    }
}

/// A member's unread messages in a room, or unread mentions of them, by (room id, user id,
/// their marker).
pub struct Unread {
    chat: Arc<Chat>,
    mentions: bool,
}

impl Loader<(Uuid, Uuid, i64)> for Unread {
    type Value = u64;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid, i64)],
    ) -> Result<HashMap<(Uuid, Uuid, i64), Self::Value>, Self::Error> {
        let mut found = HashMap::new();
        for (user, keys) in by_user(keys, |k| k.1) {
            let markers: Vec<(Uuid, i64)> = keys.iter().map(|k| (k.0, k.2)).collect();
            let counts = if self.mentions {
                self.chat.mention_counts(user, &markers).await?
            } else {
                self.chat.unread_counts(user, &markers).await?
            };
            for (room, after) in markers {
                found.insert((room, user, after), counts.get(&room).copied().unwrap_or(0));
            }
        }
        Ok(found)
    }
}

/// A room's members, counted, by room id.
pub struct MemberCounts(Arc<Chat>);

impl Loader<Uuid> for MemberCounts {
    type Value = u64;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.member_counts(keys).await
    }
}

/// A room's members online, counted, by room id.
pub struct OnlineCounts(Arc<Chat>);

impl Loader<Uuid> for OnlineCounts {
    type Value = u64;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.online_counts(keys).await
    }
}
