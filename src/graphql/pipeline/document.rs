//! Documents as they arrive: scanned, parsed, checked against the document limits, cached, and
//! compact. Every request's document comes from `Documents::parse` (`http::wire` builds every
//! request), so nothing recursive, async-graphql's parser included, ever sees a text that has
//! not passed the scan first (see `scan`).
//!
//! Clients send the same few documents over and over, and parsing one costs more than
//! executing `{ __typename }` (it was an eighth of the server's time under load), so each
//! distinct document that passes is parsed and checked once and reused, as Apollo Server's
//! document cache does. Refusals are not kept: they cost a scan each time, no more.
//!
//! A subscription holds its parsed document for as long as it lives (every event resolves
//! its selection set). The parser builds each list with room to grow, typically four slots
//! of ~200 bytes for one or two items; cached documents are shrunk once, so every copy handed
//! out is exact-size: about 1.5 KB less per subscription, a tenth of an idle socket's cost.
use std::{num::NonZeroUsize, sync::Mutex};

use async_graphql::{
    Request, ServerError,
    parser::{
        parse_query,
        types::{
            DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
        },
    },
};
use lru::LruCache;

use super::{codes::with_code, limits::DocumentLimits, scan};
use crate::{config::GraphqlConfig, error::ErrorCode, text::cut};

/// Distinct documents kept; the least recently used goes first.
const CACHED_DOCUMENTS: usize = 1024;
/// Longer documents are parsed every time rather than kept.
const MAX_CACHED_LENGTH: usize = 16 * 1024;
/// The parser's messages quote the line in error, which can be the whole document: they are
/// cut to this many bytes.
const MAX_PARSE_MESSAGE: usize = 1024;

pub struct Documents {
    cache: Mutex<LruCache<String, ExecutableDocument>>,
    max_nesting: usize,
    max_tokens: usize,
    limits: DocumentLimits,
}

impl Documents {
    pub fn new(config: &GraphqlConfig) -> Self {
        Self {
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED_DOCUMENTS).expect("non-zero capacity"),
            )),
            max_nesting: config.max_nesting,
            max_tokens: config.max_tokens,
            limits: DocumentLimits::new(config),
        }
    }

    /// The parsed document for `query`, or why it is refused: `GRAPHQL_PARSE_FAILED` (over the
    /// scan's limits, or not GraphQL) or `GRAPHQL_VALIDATION_FAILED` (over a document limit).
    pub fn parse(&self, query: &str) -> Result<ExecutableDocument, ServerError> {
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(doc) = lock().get(query) {
            return Ok(doc.clone());
        }
        scan::scan(query, self.max_nesting, self.max_tokens).map_err(|refused| {
            with_code(
                ServerError::new(refused.message(), Some(refused.pos())),
                ErrorCode::GraphqlParseFailed,
            )
        })?;
        let mut doc = parse_query(query).map_err(|e| {
            let mut error: ServerError = e.into();
            error.message = cut(&error.message, MAX_PARSE_MESSAGE).to_owned();
            with_code(error, ErrorCode::GraphqlParseFailed)
        })?;
        self.limits.check(&doc)?;
        compact(&mut doc);
        if query.len() <= MAX_CACHED_LENGTH {
            lock().put(query.to_owned(), doc.clone());
        }
        Ok(doc)
    }
}

/// The operation a request runs: the one its `operationName` names, or without a name the
/// document's only one, as async-graphql chooses. `None` when there is no such operation
/// (executing the request then says why). Requests carry their document from
/// `Documents::parse`, so this reads it and never parses.
pub fn selected_operation(request: &mut Request) -> Option<&OperationDefinition> {
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    match (&doc.operations, name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

fn compact(doc: &mut ExecutableDocument) {
    match &mut doc.operations {
        DocumentOperations::Single(op) => {
            op.node.variable_definitions.shrink_to_fit();
            op.node.directives.shrink_to_fit();
            compact_set(&mut op.node.selection_set.node);
        }
        DocumentOperations::Multiple(ops) => {
            for op in ops.values_mut() {
                op.node.variable_definitions.shrink_to_fit();
                op.node.directives.shrink_to_fit();
                compact_set(&mut op.node.selection_set.node);
            }
        }
    }
    for fragment in doc.fragments.values_mut() {
        fragment.node.directives.shrink_to_fit();
        compact_set(&mut fragment.node.selection_set.node);
    }
}

fn compact_set(set: &mut SelectionSet) {
    set.items.shrink_to_fit();
    for item in &mut set.items {
        match &mut item.node {
            Selection::Field(field) => {
                field.node.arguments.shrink_to_fit();
                field.node.directives.shrink_to_fit();
                compact_set(&mut field.node.selection_set.node);
            }
            Selection::FragmentSpread(spread) => spread.node.directives.shrink_to_fit(),
            Selection::InlineFragment(fragment) => {
                fragment.node.directives.shrink_to_fit();
                compact_set(&mut fragment.node.selection_set.node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents() -> Documents {
        Documents::new(&crate::config::Config::default().graphql)
    }

    fn code(err: &ServerError) -> &str {
        match err.extensions.as_ref().and_then(|e| e.get("code")) {
            Some(async_graphql::Value::String(code)) => code,
            _ => "none",
        }
    }

    #[test]
    fn documents_are_parsed_once_and_handed_out_compact() {
        let documents = documents();
        let query = "{ me { id username } }";
        let first = documents.parse(query).unwrap();
        let second = documents.parse(query).unwrap();
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        assert_eq!(documents.cache.lock().unwrap().len(), 1);
        let DocumentOperations::Single(op) = &second.operations else {
            panic!("one operation")
        };
        assert_eq!(op.node.selection_set.node.items.capacity(), 1);
        let refused = documents.parse("{ me {").unwrap_err();
        assert_eq!(code(&refused), "GRAPHQL_PARSE_FAILED");
        // The parser quotes the line in error; one long line is not sent back whole.
        let long = documents
            .parse(&format!("{{ me(x: \"{}\") {{", "é".repeat(100_000)))
            .unwrap_err();
        assert!(
            long.message.len() <= MAX_PARSE_MESSAGE,
            "{}",
            long.message.len()
        );
        assert_eq!(
            documents.cache.lock().unwrap().len(),
            1,
            "failures are not kept"
        );
    }

    #[test]
    fn text_over_the_scan_limits_never_reaches_the_parser() {
        let documents = documents();
        // Deep enough to overflow the parser's stack, were it to see it.
        for depth in [65, 2_000, 100_000] {
            let query = format!("{{ __type(name: {}) {{ name }} }}", "[".repeat(depth));
            let refused = documents.parse(&query).unwrap_err();
            assert_eq!(code(&refused), "GRAPHQL_PARSE_FAILED");
            assert_eq!(refused.message, "the document nests deeper than 64 levels");
        }
        let many = format!("{{ {} }}", "__typename ".repeat(20_000));
        assert_eq!(
            code(&documents.parse(&many).unwrap_err()),
            "GRAPHQL_PARSE_FAILED"
        );
    }

    #[test]
    fn parsed_documents_over_a_limit_fail_validation() {
        let refused = documents()
            .parse("{ ...A } fragment A on Query { ...A }")
            .unwrap_err();
        assert_eq!(code(&refused), "GRAPHQL_VALIDATION_FAILED");
    }

    #[test]
    fn lists_keep_their_items_and_lose_their_slack() {
        let query = "subscription($r: ID!) { messageAdded(roomId: $r) { seq body } }";
        let mut doc = parse_query(query).unwrap();
        let before = format!("{doc:?}");
        compact(&mut doc);
        assert_eq!(format!("{doc:?}"), before);
        let DocumentOperations::Single(op) = &doc.operations else {
            panic!("one operation")
        };
        let set = &op.node.selection_set.node;
        assert_eq!(set.items.capacity(), 1);
        assert_eq!(op.node.variable_definitions.capacity(), 1);
        let Selection::Field(field) = &set.items[0].node else {
            panic!("a field")
        };
        assert_eq!(field.node.selection_set.node.items.capacity(), 2);
    }
}
