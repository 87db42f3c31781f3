//! A subscription's selection as an identity: two subscriptions whose items would resolve
//! the same have equal keys.
use std::{
    collections::{BTreeSet, HashMap},
    convert::Infallible,
    hash::{BuildHasher, Hash, Hasher},
    sync::{Arc, OnceLock},
};

use async_graphql::{
    ContextSelectionSet, Name, Positioned, Value,
    parser::types::{Field, FragmentDefinition, Selection as Node, SelectionSet},
};

/// A selection's identity: compared whole, hashed once.
#[derive(PartialEq, Eq)]
pub(super) struct Key {
    hash: u64,
    document: Arc<str>,
    operation: Option<String>,
    /// What is left of the document's selection once `@skip` and `@include` have been
    /// applied, and the values of the variables it uses (`shape`).
    shape: String,
}

impl Key {
    /// The selection of `field` (a subscription's), in `document`, as it runs.
    pub(super) fn of(
        document: Arc<str>,
        operation: Option<String>,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> Self {
        let (places, names) = shape(&field.node.selection_set, &ctx.query_env.fragments);
        let values: Vec<_> = names
            .iter()
            .map(|name| (name, ctx.query_env.variables.get(name)))
            .collect();
        let shape = serde_json::to_string(&(places, values)).unwrap_or_default();
        Self::new(document, operation, shape)
    }

    pub(super) fn new(document: Arc<str>, operation: Option<String>, shape: String) -> Self {
        static HASHER: OnceLock<std::hash::RandomState> = OnceLock::new();
        let hash = HASHER
            .get_or_init(Default::default)
            .hash_one((&*document, &operation, &shape));
        Self {
            hash,
            document,
            operation,
            shape,
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// What a subscription's item selection is, in a document: where each of its selections
/// stands in the text, and the names of the variables it uses. async-graphql applies `@skip`
/// and `@include` before execution (they and what they skip are gone from the selection by
/// now), so the same text can select differently: the places of what is left say what.
fn shape(
    selection: &Positioned<SelectionSet>,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
) -> (Vec<(usize, usize)>, BTreeSet<Name>) {
    let (mut places, mut names) = (Vec::new(), BTreeSet::new());
    let mut spread = BTreeSet::new();
    let mut pending = vec![selection];
    while let Some(set) = pending.pop() {
        for item in &set.node.items {
            places.push((item.pos.line, item.pos.column));
            let directives = match &item.node {
                Node::Field(field) => {
                    for (_, value) in &field.node.arguments {
                        used(&value.node, &mut names);
                    }
                    pending.push(&field.node.selection_set);
                    &field.node.directives
                }
                Node::FragmentSpread(fragment) => {
                    let name = &fragment.node.fragment_name.node;
                    if spread.insert(name.clone())
                        && let Some(definition) = fragments.get(name)
                    {
                        pending.push(&definition.node.selection_set);
                        for directive in &definition.node.directives {
                            for (_, value) in &directive.node.arguments {
                                used(&value.node, &mut names);
                            }
                        }
                    }
                    &fragment.node.directives
                }
                Node::InlineFragment(fragment) => {
                    pending.push(&fragment.node.selection_set);
                    &fragment.node.directives
                }
            };
            for directive in directives {
                for (_, value) in &directive.node.arguments {
                    used(&value.node, &mut names);
                }
            }
        }
    }
    (places, names)
}

/// Adds the variables `value` uses to `names`.
fn used(value: &async_graphql_value::Value, names: &mut BTreeSet<Name>) {
    let _ = value.clone().into_const_with(|name| {
        names.insert(name);
        Ok::<_, Infallible>(Value::Null)
    });
}
