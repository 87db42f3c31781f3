//! Merges the per-domain roots into one schema.
use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use super::{
    auth::AuthMutation,
    errors::ErrorCodes,
    limits::DocumentLimits,
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

/// The serving schema, with the state its resolvers use and the configured limits.
pub fn build(state: AppState) -> AppSchema {
    let config = state.config.graphql.clone();
    let mut builder = builder()
        // After `ErrorCodes`, so that its hooks wrap these.
        .extension(DocumentLimits::new(&config))
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity);
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    builder.data(state).finish()
}

/// The schema in SDL: what `chat-server print-schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    builder().finish().sdl()
}
