//! Documents as they arrive: scanned, parsed, checked against the document limits, cached, and
//! compact. Every request's document comes from `Documents::resolve` (`http::wire` builds every
//! request), so nothing recursive, async-graphql's parser included, ever sees a text that has
//! not passed the scan first (see `scan`).
//!
//! Clients send the same few documents over and over, and parsing one costs more than
//! executing `{ __typename }` (it was an eighth of the server's time under load), so each
//! distinct document that passes is parsed and checked once and reused, as Apollo Server's
//! document cache does. Refusals are not kept: they cost a scan each time, no more.
//!
//! The cache is indexed by the sha256 of each text too, which makes it the store of automatic
//! persisted queries (see `persisted`): a hash finds any document the server parsed
//! lately, whether it came by APQ or whole. One bounded store rather than a second one beside
//! it: a document an APQ client registers is one that was just parsed anyway, and keeping
//! it twice would double what the server holds for each, and a cap of its own to set. Only
//! who knows a text knows its hash, so sharing the store gives no one a document they did not
//! have (at most, that someone sent it lately: Apollo's APQ store tells as much). With an
//! allow-list the store is that list instead, parsed at start and never dropped, and
//! nothing else is parsed at all.
//!
//! A subscription holds its parsed document for as long as it lives (every event resolves
//! its selection set). The parser builds each list with room to grow, typically four slots
//! of ~200 bytes for one or two items; cached documents are shrunk once, so every copy handed
//! out is exact-size: about 1.5 KB less per subscription, a tenth of an idle socket's cost.
use std::{
    collections::HashMap,
    num::NonZeroUsize,
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::Context;
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

use super::{
    codes::with_code,
    limits::DocumentLimits,
    persisted::{self, DocumentHash},
    scan,
};
use crate::{
    config::GraphqlConfig,
    error::{AppError, ErrorCode},
    text::cut,
};

/// Longer documents are parsed every time rather than kept (so an APQ client sends them whole
/// every time: their hash is never found).
const MAX_CACHED_LENGTH: usize = 16 * 1024;
/// The parser's messages quote the line in error, which can be the whole document: they are
/// cut to this many bytes.
const MAX_PARSE_MESSAGE: usize = 1024;

/// What a request gives of its document: the text, a hash naming a persisted one, or both
/// (an automatic persisted query's second try).
#[derive(Debug)]
pub enum Asked {
    Text(String),
    Hash(DocumentHash),
    Both(String, DocumentHash),
}

pub struct Documents {
    store: Store,
    max_nesting: usize,
    max_tokens: usize,
    limits: DocumentLimits,
}

/// Where a document is found, by its text or by its hash.
enum Store {
    /// Every document that passes is kept, up to `GRAPHQL_DOCUMENT_CACHE` of them, the least
    /// recently used going first; `None` when that is 0 (nothing is kept, nor found by hash).
    Recent(Option<Mutex<Recent>>),
    /// `PERSISTED_OPERATIONS_FILE`: these documents and no others.
    AllowList(HashMap<DocumentHash, Kept>),
}

/// Kept by text, as every request with a text looks its document up; and indexed by hash for
/// the requests that name one. The sha256 is taken once per document kept, not once per
/// request: a request with the text alone, the common case, costs a lookup by text.
struct Recent {
    by_text: LruCache<Arc<str>, (DocumentHash, ExecutableDocument)>,
    by_hash: HashMap<DocumentHash, Arc<str>>,
}

impl Recent {
    fn new(capacity: NonZeroUsize) -> Self {
        Self {
            by_text: LruCache::new(capacity),
            by_hash: HashMap::with_capacity(capacity.get()),
        }
    }

    fn by_text(&mut self, text: &str) -> Option<ExecutableDocument> {
        self.by_text.get(text).map(|(_, doc)| doc.clone())
    }

    fn by_hash(&mut self, hash: DocumentHash) -> Option<Kept> {
        let text = self.by_hash.get(&hash)?.clone();
        let (_, doc) = self.by_text.get(&*text)?;
        Some(Kept {
            doc: doc.clone(),
            text,
        })
    }

    /// The index follows the cache: what the cache drops, it drops.
    fn keep(&mut self, text: Arc<str>, hash: DocumentHash, doc: ExecutableDocument) {
        if let Some((_, (dropped, _))) = self.by_text.push(text.clone(), (hash, doc))
            && dropped != hash
        {
            self.by_hash.remove(&dropped);
        }
        self.by_hash.insert(hash, text);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        debug_assert_eq!(self.by_text.len(), self.by_hash.len());
        self.by_text.len()
    }
}

/// A document found by its hash: its text too, for the request that sent the hash alone.
#[derive(Clone)]
struct Kept {
    text: Arc<str>,
    doc: ExecutableDocument,
}

impl Documents {
    /// Fails only on a bad `PERSISTED_OPERATIONS_FILE`, whose documents are read, checked and
    /// parsed here, before the server serves anything.
    pub fn new(config: &GraphqlConfig) -> anyhow::Result<Self> {
        let mut documents = Self {
            store: Store::Recent(None),
            max_nesting: config.max_nesting,
            max_tokens: config.max_tokens,
            limits: DocumentLimits::new(config),
        };
        documents.store = match &config.persisted_operations {
            Some(path) => Store::AllowList(
                documents
                    .allow_list(path)
                    .with_context(|| format!("PERSISTED_OPERATIONS_FILE {}", path.display()))?,
            ),
            None => Store::Recent(
                NonZeroUsize::new(config.document_cache).map(|n| Mutex::new(Recent::new(n))),
            ),
        };
        Ok(documents)
    }

    fn allow_list(&self, path: &Path) -> anyhow::Result<HashMap<DocumentHash, Kept>> {
        let mut allowed = HashMap::new();
        for (hash, text) in persisted::read_manifest(path)? {
            let doc = self
                .parse(&text)
                .map_err(|error| anyhow::anyhow!("entry {hash}: {}", error.message))?;
            allowed.insert(
                hash,
                Kept {
                    text: text.into(),
                    doc,
                },
            );
        }
        tracing::info!(
            documents = allowed.len(),
            "allow-list: only the documents of PERSISTED_OPERATIONS_FILE run"
        );
        Ok(allowed)
    }

    /// The text and parsed document a request runs: the text it sent, or the document its
    /// hash finds, or the text checked against its hash. Or why it is refused:
    /// `GRAPHQL_PARSE_FAILED` (over the scan's limits, or not GraphQL),
    /// `GRAPHQL_VALIDATION_FAILED` (over a document limit), `PERSISTED_QUERY_NOT_FOUND` (a
    /// hash not held, or with an allow-list any document not on it), `PERSISTED_QUERY_NOT_SUPPORTED`
    /// (a hash, and no documents kept), `BAD_USER_INPUT` (a text that is not what its hash
    /// says).
    pub fn resolve(&self, asked: Asked) -> Result<(String, ExecutableDocument), ServerError> {
        // As Apollo Server: without a store, a request that names a hash is refused whatever
        // else it holds, so that an APQ client stops sending hashes and sends the text alone.
        if !matches!(asked, Asked::Text(_)) && matches!(self.store, Store::Recent(None)) {
            return Err(persisted::not_supported());
        }
        let (text, hash) = match asked {
            Asked::Hash(hash) => {
                return match self.find(hash) {
                    Some(kept) => Ok((kept.text.as_ref().to_owned(), kept.doc)),
                    None => Err(persisted::not_found()),
                };
            }
            Asked::Text(text) => (text, None),
            // Else a client could have any document run under another one's hash.
            Asked::Both(text, hash) if hash != DocumentHash::of(&text) => {
                return Err(AppError::bad_input(
                    "extensions.persistedQuery.sha256Hash",
                    "provided sha does not match query",
                )
                .to_server_error());
            }
            Asked::Both(text, hash) => (text, Some(hash)),
        };
        let hash = || hash.unwrap_or_else(|| DocumentHash::of(&text));
        let cache = match &self.store {
            Store::Recent(cache) => cache,
            // Run whole if it is on the list; else refused before the parser sees it.
            Store::AllowList(allowed) => {
                return match allowed.get(&hash()) {
                    Some(kept) => Ok((text, kept.doc.clone())),
                    None => Err(persisted::not_found()),
                };
            }
        };
        if let Some(doc) = cache.as_ref().and_then(|cache| lock(cache).by_text(&text)) {
            return Ok((text, doc));
        }
        let doc = self.parse(&text)?;
        if let Some(cache) = cache
            && text.len() <= MAX_CACHED_LENGTH
        {
            let hash = hash();
            lock(cache).keep(text.as_str().into(), hash, doc.clone());
        }
        Ok((text, doc))
    }

    fn find(&self, hash: DocumentHash) -> Option<Kept> {
        match &self.store {
            Store::Recent(Some(cache)) => lock(cache).by_hash(hash),
            Store::Recent(None) => None,
            Store::AllowList(allowed) => allowed.get(&hash).cloned(),
        }
    }

    /// Scanned, parsed, checked against the document limits and compacted.
    fn parse(&self, query: &str) -> Result<ExecutableDocument, ServerError> {
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
        Ok(doc)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        Documents::new(&crate::config::Config::default().graphql).unwrap()
    }

    impl Documents {
        fn parse_text(&self, query: &str) -> Result<ExecutableDocument, ServerError> {
            self.resolve(Asked::Text(query.to_owned()))
                .map(|(_, doc)| doc)
        }

        fn kept(&self) -> usize {
            match &self.store {
                Store::Recent(Some(cache)) => lock(cache).len(),
                Store::Recent(None) => 0,
                Store::AllowList(allowed) => allowed.len(),
            }
        }
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
        let first = documents.parse_text(query).unwrap();
        let second = documents.parse_text(query).unwrap();
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        assert_eq!(documents.kept(), 1);
        let DocumentOperations::Single(op) = &second.operations else {
            panic!("one operation")
        };
        assert_eq!(op.node.selection_set.node.items.capacity(), 1);
        let refused = documents.parse_text("{ me {").unwrap_err();
        assert_eq!(code(&refused), "GRAPHQL_PARSE_FAILED");
        // The parser quotes the line in error; one long line is not sent back whole.
        let long = documents
            .parse_text(&format!("{{ me(x: \"{}\") {{", "é".repeat(100_000)))
            .unwrap_err();
        assert!(
            long.message.len() <= MAX_PARSE_MESSAGE,
            "{}",
            long.message.len()
        );
        assert_eq!(documents.kept(), 1, "failures are not kept");
    }

    #[test]
    fn a_kept_document_is_found_by_its_hash_until_it_is_the_oldest_of_too_many() {
        let mut config = crate::config::Config::default().graphql;
        config.document_cache = 5;
        let documents = Documents::new(&config).unwrap();
        let text = |i: usize| format!("query Q{i} {{ __typename }}");
        let find = |i: usize| documents.resolve(Asked::Hash(DocumentHash::of(&text(i))));
        assert_eq!(code(&find(0).unwrap_err()), "PERSISTED_QUERY_NOT_FOUND");
        for i in 0..15 {
            let hash = DocumentHash::of(&text(i));
            documents.resolve(Asked::Both(text(i), hash)).unwrap();
            assert!(documents.kept() <= 5, "{}", documents.kept());
        }
        assert_eq!(documents.kept(), 5);
        assert_eq!(code(&find(0).unwrap_err()), "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(code(&find(9).unwrap_err()), "PERSISTED_QUERY_NOT_FOUND");
        let (found, _) = find(14).unwrap();
        assert_eq!(found, text(14));
        // Too long to keep: parsed, run, never found by its hash.
        let long = format!("{{ __typename }} # {}", "x".repeat(MAX_CACHED_LENGTH));
        documents
            .resolve(Asked::Both(long.clone(), DocumentHash::of(&long)))
            .unwrap();
        let miss = documents.resolve(Asked::Hash(DocumentHash::of(&long)));
        assert_eq!(code(&miss.unwrap_err()), "PERSISTED_QUERY_NOT_FOUND");
    }

    #[test]
    fn a_text_must_be_what_its_hash_says() {
        let documents = documents();
        let other = DocumentHash::of("{ me { id } }");
        let refused = documents
            .resolve(Asked::Both("{ __typename }".into(), other))
            .unwrap_err();
        assert_eq!(code(&refused), "BAD_USER_INPUT");
        assert_eq!(refused.message, "provided sha does not match query");
        assert_eq!(documents.kept(), 0, "nothing is kept under another's hash");
    }

    #[test]
    fn without_a_cache_hashes_are_not_supported() {
        let mut config = crate::config::Config::default().graphql;
        config.document_cache = 0;
        let documents = Documents::new(&config).unwrap();
        let text = "{ __typename }";
        let hash = DocumentHash::of(text);
        for asked in [Asked::Hash(hash), Asked::Both(text.to_owned(), hash)] {
            let refused = documents.resolve(asked).unwrap_err();
            assert_eq!(code(&refused), "PERSISTED_QUERY_NOT_SUPPORTED");
        }
        documents.parse_text(text).unwrap();
        assert_eq!(documents.kept(), 0);
    }

    #[test]
    fn an_allow_list_runs_its_documents_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("persisted-documents.json");
        let listed = "query Me { me { id } }";
        let hash = DocumentHash::of(listed);
        std::fs::write(
            &path,
            serde_json::json!({ hash.to_string(): listed }).to_string(),
        )
        .unwrap();
        let mut config = crate::config::Config::default().graphql;
        config.persisted_operations = Some(path.clone());
        let documents = Documents::new(&config).unwrap();
        assert_eq!(documents.resolve(Asked::Hash(hash)).unwrap().0, listed);
        documents.parse_text(listed).unwrap();
        // Anything else, even what would not parse, is refused the same way, unparsed.
        for other in ["{ __typename }", "{ me {", ""] {
            let refused = documents.parse_text(other).unwrap_err();
            assert_eq!(code(&refused), "PERSISTED_QUERY_NOT_FOUND", "{other}");
        }
        let unknown = documents.resolve(Asked::Hash(DocumentHash::of("{ __typename }")));
        assert_eq!(code(&unknown.unwrap_err()), "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(documents.kept(), 1, "nothing is learned");

        // A listed document over a limit stops the server at start, naming the entry.
        let bad = format!("{{ {} }}", "__typename ".repeat(20_000));
        let bad_hash = DocumentHash::of(&bad);
        std::fs::write(
            &path,
            serde_json::json!({ bad_hash.to_string(): bad }).to_string(),
        )
        .unwrap();
        let err = format!("{:#}", Documents::new(&config).err().unwrap());
        assert!(err.starts_with("PERSISTED_OPERATIONS_FILE "), "{err}");
        assert!(err.contains(&format!("entry {bad_hash}")), "{err}");
    }

    #[test]
    fn text_over_the_scan_limits_never_reaches_the_parser() {
        let documents = documents();
        // Deep enough to overflow the parser's stack, were it to see it.
        for depth in [65, 2_000, 100_000] {
            let query = format!("{{ __type(name: {}) {{ name }} }}", "[".repeat(depth));
            let refused = documents.parse_text(&query).unwrap_err();
            assert_eq!(code(&refused), "GRAPHQL_PARSE_FAILED");
            assert_eq!(refused.message, "the document nests deeper than 64 levels");
        }
        let many = format!("{{ {} }}", "__typename ".repeat(20_000));
        assert_eq!(
            code(&documents.parse_text(&many).unwrap_err()),
            "GRAPHQL_PARSE_FAILED"
        );
    }

    #[test]
    fn parsed_documents_over_a_limit_fail_validation() {
        let refused = documents()
            .parse_text("{ ...A } fragment A on Query { ...A }")
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
