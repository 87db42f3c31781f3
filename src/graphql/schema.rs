//! Merges the per-domain roots into one schema.
use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

use super::{auth::AuthMutation, errors::ErrorCodes, user::UserQuery};
use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(UserQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(AuthMutation);

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription).extension(ErrorCodes)
}

/// The serving schema, with the state its resolvers use.
pub fn build(state: AppState) -> AppSchema {
    builder().data(state).finish()
}

/// The schema in SDL: what `chat-server print-schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    builder().finish().sdl()
}
