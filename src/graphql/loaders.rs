//! Batched reads for fields that many objects of one response (or many subscribers of one
//! event) ask for at once: a message's reactions, the viewer's own reactions, the message it
//! replies to, whom it mentions, whether a user is online and shares a room with the viewer.
//! Each loader is shared by the whole schema and caches nothing: it only gathers
//! the keys asked for in the same moment into one query.
use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use crate::{
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
}

impl Loaders {
    pub fn new(chat: Arc<Chat>) -> Self {
        Self {
            reactions: DataLoader::new(Reactions(chat.clone()), tokio::spawn),
            own_reactions: DataLoader::new(OwnReactions(chat.clone()), tokio::spawn),
            messages: DataLoader::new(Messages(chat.clone()), tokio::spawn),
            mentions: DataLoader::new(Mentions(chat.clone()), tokio::spawn),
            presence: DataLoader::new(Presences(chat.clone()), tokio::spawn),
            sharing: DataLoader::new(Sharing(chat), tokio::spawn),
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
