//! What a parsed document may ask for, checked before validation or execution walks it.
//!
//! Aliases and directives are counted in the text: each alias runs its field again, and each
//! repeated directive earns its own validation error, so a few thousand of either turn one
//! request into thousands. When introspection is off, `__schema` and `__type` are refused.
//!
//! Fragments are checked once expanded, since that is how validation's depth and complexity
//! visitors and the executor see them: a chain of fragments nests as deep as its length, a
//! fragment that spreads itself never ends, and one that spreads the next twice, thirty times
//! over, selects a billion fields from a few hundred bytes. So the fragment graph is walked
//! here without recursion along spreads, each fragment once, refusing cycles, documents that
//! nest deeper than `GRAPHQL_MAX_NESTING` once expanded, and documents that select more fields
//! than `GRAPHQL_MAX_COMPLEXITY` (every field costs at least one, so such a document could
//! never pass the complexity limit anyway). Every refusal is `GRAPHQL_VALIDATION_FAILED`.
use std::collections::{HashMap, HashSet};

use async_graphql::{
    Name, Pos, Positioned, ServerError,
    parser::types::{Directive, ExecutableDocument, Selection, SelectionSet},
};

use super::codes::with_code;
use crate::{config::GraphqlConfig, error::ErrorCode};

#[derive(Debug, Clone)]
pub struct DocumentLimits {
    max_aliases: usize,
    max_directives: usize,
    max_nesting: usize,
    max_fields: usize,
    introspection: bool,
}

impl DocumentLimits {
    pub fn new(config: &GraphqlConfig) -> Self {
        Self {
            max_aliases: config.max_aliases,
            max_directives: config.max_directives,
            max_nesting: config.max_nesting,
            max_fields: config.max_complexity,
            introspection: config.introspection,
        }
    }

    pub fn check(&self, doc: &ExecutableDocument) -> Result<(), ServerError> {
        self.check_counts(doc)
            .and_then(|()| self.check_expanded(doc))
            .map_err(|(message, pos)| {
                with_code(
                    ServerError::new(message, pos),
                    ErrorCode::GraphqlValidationFailed,
                )
            })
    }

    fn check_counts(&self, doc: &ExecutableDocument) -> Result<(), Refused> {
        let mut counts = Counts::default();
        for (_, operation) in doc.operations.iter() {
            let operation = &operation.node;
            counts.directives(&operation.directives);
            for variable in &operation.variable_definitions {
                counts.directives(&variable.node.directives);
            }
            counts.add(&operation.selection_set.node);
        }
        for fragment in doc.fragments.values() {
            counts.directives(&fragment.node.directives);
            counts.add(&fragment.node.selection_set.node);
        }
        if counts.aliases > self.max_aliases {
            return Err(("the document uses too many aliases".into(), None));
        }
        if counts.directives > self.max_directives {
            return Err((
                format!(
                    "the document uses more than {} directives",
                    self.max_directives
                ),
                None,
            ));
        }
        if !self.introspection && counts.introspection {
            return Err((
                "introspection is disabled; the schema is published as schema.graphql".into(),
                None,
            ));
        }
        Ok(())
    }

    fn check_expanded(&self, doc: &ExecutableDocument) -> Result<(), Refused> {
        let fragments = fragment_sizes(doc)?;
        let mut total = Size::default();
        for (_, operation) in doc.operations.iter() {
            let size = expanded(&operation.node.selection_set.node, &fragments);
            total.fields = total.fields.saturating_add(size.fields);
            total.depth = total.depth.max(size.depth);
        }
        if total.depth > self.max_nesting {
            return Err((
                format!(
                    "the document nests deeper than {} levels once its fragments are expanded",
                    self.max_nesting
                ),
                None,
            ));
        }
        if total.fields > self.max_fields {
            return Err((
                format!(
                    "the document selects more than {} fields once its fragments are expanded",
                    self.max_fields
                ),
                None,
            ));
        }
        Ok(())
    }
}

/// A refusal's message, and where in the document, if one place is to blame.
type Refused = (String, Option<Pos>);

#[derive(Default)]
struct Counts {
    aliases: usize,
    directives: usize,
    /// `__schema` or `__type` anywhere (`__typename` is not introspection of the schema).
    introspection: bool,
}

impl Counts {
    fn directives(&mut self, directives: &[Positioned<Directive>]) {
        self.directives += directives.len();
    }

    /// Recursion here follows the text's nesting, which the scan has bounded.
    fn add(&mut self, set: &SelectionSet) {
        for item in &set.items {
            self.directives(item.node.directives());
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

/// A selection set with its fragments expanded: the fields it selects, and how deeply its
/// selection sets nest (1 for a set of leaves; a spread counts as the set it stands for).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Size {
    fields: usize,
    depth: usize,
}

/// Every fragment's expanded size, computed children first. The walk along spreads keeps its
/// own stack, so a chain of ten thousand fragments costs ten thousand steps and no recursion.
fn fragment_sizes(doc: &ExecutableDocument) -> Result<HashMap<&str, Size>, Refused> {
    let spreads: HashMap<&str, Vec<&Name>> = doc
        .fragments
        .iter()
        .map(|(name, fragment)| {
            let mut names = Vec::new();
            spreads_in(&fragment.node.selection_set.node, &mut names);
            (name.as_str(), names)
        })
        .collect();
    let mut sizes: HashMap<&str, Size> = HashMap::with_capacity(spreads.len());
    let mut on_path: HashSet<&str> = HashSet::new();
    for root in spreads.keys() {
        if sizes.contains_key(root) {
            continue;
        }
        // (fragment, how many of its spreads have been followed)
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        on_path.insert(root);
        while let Some(&(name, followed)) = stack.last() {
            match spreads[name].get(followed) {
                Some(child) => {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    let child = child.as_str();
                    if on_path.contains(child) {
                        let pos = doc.fragments.get(child).map(|f| f.pos);
                        return Err((
                            format!("Cannot spread fragment \"{child}\" within itself"),
                            pos,
                        ));
                    }
                    // Unknown fragments are validation's to report.
                    if spreads.contains_key(child) && !sizes.contains_key(child) {
                        on_path.insert(child);
                        stack.push((child, 0));
                    }
                }
                None => {
                    let fragment = &doc.fragments[name];
                    sizes.insert(name, expanded(&fragment.node.selection_set.node, &sizes));
                    on_path.remove(name);
                    stack.pop();
                }
            }
        }
    }
    Ok(sizes)
}

/// The fragments `set` spreads, at any depth within it.
fn spreads_in<'a>(set: &'a SelectionSet, names: &mut Vec<&'a Name>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => spreads_in(&field.node.selection_set.node, names),
            Selection::InlineFragment(fragment) => {
                spreads_in(&fragment.node.selection_set.node, names)
            }
            Selection::FragmentSpread(spread) => names.push(&spread.node.fragment_name.node),
        }
    }
}

/// `set`'s size, given the sizes of the fragments it spreads (saturating: a billion-field
/// expansion is simply "too many").
fn expanded(set: &SelectionSet, fragments: &HashMap<&str, Size>) -> Size {
    let mut fields = 0usize;
    let mut below = 0usize;
    for item in &set.items {
        let inner = match &item.node {
            Selection::Field(field) => {
                fields = fields.saturating_add(1);
                let sub = &field.node.selection_set.node;
                (!sub.items.is_empty()).then(|| expanded(sub, fragments))
            }
            Selection::InlineFragment(fragment) => {
                Some(expanded(&fragment.node.selection_set.node, fragments))
            }
            Selection::FragmentSpread(spread) => fragments
                .get(spread.node.fragment_name.node.as_str())
                .copied(),
        };
        if let Some(inner) = inner {
            fields = fields.saturating_add(inner.fields);
            below = below.max(inner.depth);
        }
    }
    Size {
        fields,
        depth: below + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn limits() -> DocumentLimits {
        DocumentLimits {
            max_aliases: 50,
            max_directives: 50,
            max_nesting: 64,
            max_fields: 5000,
            introspection: true,
        }
    }

    fn check(limits: &DocumentLimits, query: &str) -> Result<(), String> {
        limits
            .check(&parse_query(query).unwrap())
            .map_err(|e| e.message)
    }

    #[test]
    fn aliases_are_counted_everywhere() {
        let query = "query { a: me { id } ...F ... on Query { c: me { d: id } } }
                     fragment F on Query { b: me { id } }";
        let four = DocumentLimits {
            max_aliases: 4,
            ..limits()
        };
        assert!(check(&four, query).is_ok());
        let three = DocumentLimits {
            max_aliases: 3,
            ..limits()
        };
        assert!(check(&three, query).is_err());
    }

    #[test]
    fn directives_are_counted_everywhere() {
        let query = "query Q($v: Boolean = true) @b { me @c { ...F @d ... @e { id } } }
                     fragment F on User @f { id @g }";
        let six = DocumentLimits {
            max_directives: 6,
            ..limits()
        };
        assert!(check(&six, query).is_ok());
        let five = DocumentLimits {
            max_directives: 5,
            ..limits()
        };
        assert_eq!(
            check(&five, query).unwrap_err(),
            "the document uses more than 5 directives"
        );
    }

    #[test]
    fn introspection_can_be_refused_but_typename_always_works() {
        let off = DocumentLimits {
            introspection: false,
            ..limits()
        };
        assert!(check(&off, "{ __typename me { __typename } }").is_ok());
        assert!(check(&off, "{ __schema { types { name } } }").is_err());
        assert!(
            check(
                &off,
                "{ me { id } ...F } fragment F on Query { __type(name: \"User\") { name } }"
            )
            .is_err()
        );
        assert!(check(&limits(), "{ __schema { types { name } } }").is_ok());
    }

    #[test]
    fn sizes_are_counted_with_fragments_expanded() {
        let doc = parse_query(
            "{ me { id ...U } ... on Query { me { id } } }
             fragment U on User { username email }",
        )
        .unwrap();
        let fragments = fragment_sizes(&doc).unwrap();
        assert_eq!(
            fragments["U"],
            Size {
                fields: 2,
                depth: 1
            }
        );
        let (_, op) = doc.operations.iter().next().unwrap();
        // me, id, username, email; me, id. Depth: { me { ...U -> { } } } = 3.
        assert_eq!(
            expanded(&op.node.selection_set.node, &fragments),
            Size {
                fields: 6,
                depth: 3
            }
        );
    }

    /// Fragment `F{i}` spreads `F{i+1}` `fan` times; the last selects `__typename`.
    fn chain(length: usize, fan: usize) -> String {
        let mut doc = String::from("{ ...F0 }");
        for i in 0..length {
            let spreads = format!("...F{} ", i + 1).repeat(fan);
            doc.push_str(&format!(" fragment F{i} on Query {{ {spreads}}}"));
        }
        doc.push_str(&format!(" fragment F{length} on Query {{ __typename }}"));
        doc
    }

    #[test]
    fn fragment_chains_nest_as_deep_as_they_are_long() {
        assert!(check(&limits(), &chain(60, 1)).is_ok());
        assert_eq!(
            check(&limits(), &chain(64, 1)).unwrap_err(),
            "the document nests deeper than 64 levels once its fragments are expanded"
        );
        // Ten thousand fragments long: no recursion along the chain, so no overflow.
        assert!(check(&limits(), &chain(10_000, 1)).is_err());
    }

    #[test]
    fn fragments_that_multiply_are_refused_without_being_expanded() {
        // 2^12 = 4096 fields: under the limit. 2^40 would take hours to walk.
        assert!(check(&limits(), &chain(12, 2)).is_ok());
        assert_eq!(
            check(&limits(), &chain(13, 2)).unwrap_err(),
            "the document selects more than 5000 fields once its fragments are expanded"
        );
        assert!(check(&limits(), &chain(40, 2)).is_err());
    }

    #[test]
    fn fragment_cycles_are_refused() {
        for query in [
            "{ ...A } fragment A on Query { ...A }",
            "{ ...A } fragment A on Query { me { ...B } } fragment B on User { ... on User { ...C } } fragment C on User { id } fragment D on Query { ...A }
             fragment E on Query { ...E }",
            "{ __typename } fragment A on Query { ...B } fragment B on Query { ...A }",
        ] {
            let refused = check(&limits(), query).unwrap_err();
            assert!(refused.starts_with("Cannot spread fragment"), "{query}: {refused}");
        }
        // Spreading one fragment from many places is no cycle.
        assert!(
            check(
                &limits(),
                "{ ...A ...B } fragment A on Query { ...C } fragment B on Query { ...C } fragment C on Query { __typename }"
            )
            .is_ok()
        );
    }
}
