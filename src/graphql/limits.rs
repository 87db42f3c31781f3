//! What a document may ask for, beyond async-graphql's own depth and complexity limits: how
//! many aliases it uses (each alias runs its field again, so a few hundred of them turn one
//! request into a few hundred) and, when introspection is off, whether it asks for the schema.
//! A document over a limit fails validation (`GRAPHQL_VALIDATION_FAILED`, HTTP 400).
use std::sync::Arc;

use async_graphql::{
    ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use super::errors::with_code;
use crate::{config::GraphqlConfig, error::ErrorCode};

#[derive(Clone)]
pub struct DocumentLimits {
    max_aliases: usize,
    introspection: bool,
}

impl DocumentLimits {
    pub fn new(config: &GraphqlConfig) -> Self {
        Self {
            max_aliases: config.max_aliases,
            introspection: config.introspection,
        }
    }

    fn check(&self, doc: &ExecutableDocument) -> Result<(), &'static str> {
        let mut counts = Counts::default();
        for (_, operation) in doc.operations.iter() {
            counts.add(&operation.node.selection_set.node);
        }
        for fragment in doc.fragments.values() {
            counts.add(&fragment.node.selection_set.node);
        }
        if counts.aliases > self.max_aliases {
            return Err("the document uses too many aliases");
        }
        if !self.introspection && counts.introspection {
            return Err("introspection is disabled; the schema is published as schema.graphql");
        }
        Ok(())
    }
}

#[derive(Default)]
struct Counts {
    aliases: usize,
    /// `__schema` or `__type` anywhere (`__typename` is not introspection of the schema).
    introspection: bool,
}

impl Counts {
    fn add(&mut self, set: &SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.aliases += usize::from(field.alias.is_some());
                    self.introspection |= matches!(field.name.node.as_str(), "__schema" | "__type");
                    self.add(&field.selection_set.node);
                }
                Selection::InlineFragment(fragment) => self.add(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        self.check(&doc).map_err(|message| {
            with_code(
                ServerError::new(message, None),
                ErrorCode::GraphqlValidationFailed,
            )
        })?;
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn limits(max_aliases: usize, introspection: bool) -> DocumentLimits {
        DocumentLimits {
            max_aliases,
            introspection,
        }
    }

    fn check(limits: &DocumentLimits, query: &str) -> Result<(), &'static str> {
        limits.check(&parse_query(query).unwrap())
    }

    #[test]
    fn aliases_are_counted_everywhere() {
        let query = "query { a: me { id } ...F ... on Query { c: me { d: id } } }
                     fragment F on Query { b: me { id } }";
        assert!(check(&limits(4, true), query).is_ok());
        assert!(check(&limits(3, true), query).is_err());
    }

    #[test]
    fn introspection_can_be_refused_but_typename_always_works() {
        let off = limits(10, false);
        assert!(check(&off, "{ __typename me { __typename } }").is_ok());
        assert!(check(&off, "{ __schema { types { name } } }").is_err());
        assert!(
            check(
                &off,
                "{ me { id } ...F } fragment F on Query { __type(name: \"User\") { name } }"
            )
            .is_err()
        );
        assert!(check(&limits(10, true), "{ __schema { types { name } } }").is_ok());
    }
}
