//! Merges the per-domain roots into one schema.
use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use super::{
    auth::AuthMutation,
    errors::ErrorCodes,
    message::{MessageMutation, MessageQuery, MessageSubscription},
    room::{RoomMutation, RoomQuery},
    user::UserQuery,
};
use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(UserQuery, RoomQuery, MessageQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(AuthMutation, RoomMutation, MessageMutation);

#[derive(MergedSubscription, Default)]
pub struct Subscription(MessageSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .extension(ErrorCodes)
}

/// The serving schema, with the state its resolvers use.
pub fn build(state: AppState) -> AppSchema {
    builder().data(state).finish()
}

/// The schema in SDL: what `chat-server print-schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    builder().finish().sdl()
}
