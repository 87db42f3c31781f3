//! `__schema { description }` is this schema's own description, and it has none.
//!
//! async-graphql answers that field with the description of the `__Schema` meta-type
//! ("A GraphQL Schema defines the capabilities of a GraphQL server…") as if it were this
//! schema's. Tools that print an introspected schema (codegen, Rover, `get-graphql-schema`)
//! then write a `schema { … }` block with that text, and the printed schema no longer equals
//! `schema.graphql`. The spec's answer for a schema without a description is `null`.
use std::sync::Arc;

use async_graphql::{
    ServerResult, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo},
};

pub struct NoSchemaDescription;

impl ExtensionFactory for NoSchemaDescription {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NoSchemaDescription)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for NoSchemaDescription {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.is_for_introspection && info.parent_type == "__Schema" && info.name == "description"
        {
            return Ok(Some(Value::Null));
        }
        next.run(ctx, info).await
    }
}
