//! Merges the per-domain roots into one schema.
use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema, SchemaBuilder};

use super::{
    auth::AuthMutation,
    email::EmailMutation,
    event::EventSubscription,
    loaders::Loaders,
    member::MemberMutation,
    message::{MessageMutation, MessageQuery, MessageSubscription},
    pipeline::{ErrorCodes, NoSchemaDescription, WriteLimits},
    room::{RoomMutation, RoomQuery},
    session::{SessionMutation, SessionQuery},
    totp::TotpMutation,
    user::UserQuery,
};
use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(UserQuery, SessionQuery, RoomQuery, MessageQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(
    AuthMutation,
    EmailMutation,
    SessionMutation,
    TotpMutation,
    RoomMutation,
    MemberMutation,
    MessageMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(MessageSubscription, EventSubscription);

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
        .extension(WriteLimits::new(&state.config.limits))
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        // async-graphql's own walk of nested selection sets (fragments included), which runs
        // before validation. `Documents` has refused anything nesting deeper already; this
        // keeps async-graphql's default (32) from refusing first, with a message of its own.
        .limit_recursive_depth(config.max_nesting);
    // A hook on every field resolved, subscription deliveries included, for one field of
    // introspection: installed only where introspection can be asked for.
    if config.introspection {
        builder = builder.extension(NoSchemaDescription);
    } else {
        builder = builder.disable_introspection();
    }
    builder
        .data(Loaders::new(state.chat.clone()))
        .data(state)
        .finish()
}

/// The schema in SDL: what `chat-server print-schema` prints and `schema.graphql` holds.
/// With `@specifiedBy` on the scalars that have it, as introspection reports them.
pub fn sdl() -> String {
    builder()
        .finish()
        .sdl_with_options(SDLExportOptions::new().include_specified_by())
}
