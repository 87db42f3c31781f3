//! Parsed documents: cached, and compact.
//!
//! Clients send the same few documents over and over, and parsing one costs more than
//! executing `{ __typename }` (it was an eighth of the server's time under load), so each
//! distinct document is parsed once and reused, as Apollo Server's document cache does.
//!
//! A subscription holds its parsed document for as long as it lives (every event resolves
//! its selection set). The parser builds each list with room to grow, typically four slots
//! of ~200 bytes for one or two items; cached documents are shrunk once, so every copy handed
//! out is exact-size: about 1.5 KB less per subscription, a tenth of an idle socket's cost.
use std::{num::NonZeroUsize, sync::Mutex};

use async_graphql::parser::{
    parse_query,
    types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet},
};
use lru::LruCache;

/// Distinct documents kept; the least recently used goes first.
const CACHED_DOCUMENTS: usize = 1024;
/// Longer documents are parsed every time rather than kept.
const MAX_CACHED_LENGTH: usize = 16 * 1024;

pub struct DocumentCache {
    documents: Mutex<LruCache<String, ExecutableDocument>>,
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self {
            documents: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED_DOCUMENTS).expect("non-zero capacity"),
            )),
        }
    }
}

impl DocumentCache {
    /// The parsed document for `query`, or `None` if it does not parse (execution then
    /// reports why, with the usual error).
    pub fn parse(&self, query: &str) -> Option<ExecutableDocument> {
        let lock = || self.documents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(doc) = lock().get(query) {
            return Some(doc.clone());
        }
        let mut doc = parse_query(query).ok()?;
        compact(&mut doc);
        if query.len() <= MAX_CACHED_LENGTH {
            lock().put(query.to_owned(), doc.clone());
        }
        Some(doc)
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

    #[test]
    fn documents_are_parsed_once_and_handed_out_compact() {
        let cache = DocumentCache::default();
        let query = "{ me { id username } }";
        let first = cache.parse(query).unwrap();
        let second = cache.parse(query).unwrap();
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        assert_eq!(cache.documents.lock().unwrap().len(), 1);
        let DocumentOperations::Single(op) = &second.operations else {
            panic!("one operation")
        };
        assert_eq!(op.node.selection_set.node.items.capacity(), 1);
        assert!(cache.parse("{ me {").is_none());
        assert_eq!(
            cache.documents.lock().unwrap().len(),
            1,
            "failures are not kept"
        );
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
