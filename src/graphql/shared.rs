//! One resolution per delivery, taken by every subscription that selects the same thing.
//!
//! A room's event reaches each of its subscribers on this instance, and resolved for each of
//! them, the same selection gives the same answer: past writing to sockets, that was most of
//! what a fan-out cost. So a subscription's items are `broker::Shared`: the first subscription
//! to resolve a delivery for a selection keeps the answer beside it, and the others with that
//! selection take it.
//!
//! The same selection: the same document and operation, the same fields left once `@skip`
//! and `@include` are applied, and the same values of the variables used below the
//! subscription's field (not its own arguments: a room and a cursor say where the stream
//! starts, not what an item looks like). And an answer is kept only when it cannot depend on
//! who asked: its resolution read nothing of the caller (every read goes through
//! `guard::caller`, which tells the `Selection`) and added no error (errors go with the
//! response that had them). Anything else is resolved for each subscription, as before.
//!
//! What is shared is serialized once as well: the transport writes the same payload to every
//! socket that took the answer, with its own subscription's id (`Answer::payload`).
use std::{
    borrow::Cow,
    collections::{BTreeSet, HashMap},
    convert::Infallible,
    hash::{BuildHasher, Hash, Hasher},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, Request, ServerResult, Value,
    parser::types::{Field, FragmentDefinition, Selection as Node, SelectionSet},
    registry::Registry,
};
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use crate::broker::Shared;

/// Distinct selections one delivery keeps answers for; past that, the others resolve for
/// themselves. Clients use a handful of documents; this bounds what a client that sends a
/// new variable value with every subscription can make each delivery hold.
const MAX_SELECTIONS: usize = 16;

/// What a subscription selects, in its request's data (set by the transport, which keeps a
/// clone to learn which answers were shared).
#[derive(Clone)]
pub struct Selection(Arc<Selecting>);

struct Selecting {
    document: Arc<str>,
    operation: Option<String>,
    /// Worked out at the first item, when the document has passed validation.
    key: OnceLock<Arc<Key>>,
    /// Set whenever a resolver reads the caller.
    caller_read: AtomicBool,
    /// The shared answer of the item resolved last, until the transport takes it.
    shared: Mutex<Option<Arc<Answer>>>,
}

impl Selection {
    pub fn of(request: &Request) -> Self {
        Self(Arc::new(Selecting {
            document: request.query.as_str().into(),
            operation: request.operation_name.clone(),
            key: OnceLock::new(),
            caller_read: AtomicBool::new(false),
            shared: Mutex::new(None),
        }))
    }

    /// A resolver read the caller: what it answers may be theirs alone.
    pub(super) fn caller_read(&self) {
        self.0.caller_read.store(true, Ordering::Relaxed);
    }

    /// The answer the item just resolved shares with other subscriptions, if it does. Items
    /// are resolved one at a time, each as its stream is polled: the transport takes this as
    /// it receives the item's response.
    pub fn take_shared(&self) -> Option<Arc<Answer>> {
        lock(&self.0.shared).take()
    }

    fn key(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> Arc<Key> {
        let this = &self.0;
        this.key
            .get_or_init(|| {
                let (shape, names) = shape(&field.node.selection_set, &ctx.query_env.fragments);
                let values: Vec<_> = names
                    .iter()
                    .map(|name| (name, ctx.query_env.variables.get(name)))
                    .collect();
                let shape = serde_json::to_string(&(shape, values)).unwrap_or_default();
                Arc::new(Key::new(
                    this.document.clone(),
                    this.operation.clone(),
                    shape,
                ))
            })
            .clone()
    }
}

/// A selection's identity: compared whole, hashed once.
#[derive(PartialEq, Eq)]
struct Key {
    hash: u64,
    document: Arc<str>,
    operation: Option<String>,
    /// What is left of the document's selection once `@skip` and `@include` have been
    /// applied, and the values of the variables it uses (`shape`).
    shape: String,
}

impl Key {
    fn new(document: Arc<str>, operation: Option<String>, shape: String) -> Self {
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

/// What one delivery keeps, per selection.
#[derive(Default)]
struct Answers(Mutex<HashMap<Arc<Key>, Arc<Answer>>>);

/// One selection's answer to one delivery.
#[derive(Default)]
pub struct Answer {
    /// Once resolved: `None` when it could not be shared.
    value: OnceCell<Option<Value>>,
    payload: OnceLock<Box<RawValue>>,
}

impl Answer {
    /// The response's payload as the socket writes it, serialized by the first socket to send
    /// it (`serialize`) and taken as it is by the others.
    pub fn payload(&self, serialize: impl FnOnce() -> Box<RawValue>) -> &RawValue {
        self.payload.get_or_init(serialize)
    }
}

impl Answers {
    fn of(&self, key: &Arc<Key>) -> Option<Arc<Answer>> {
        let mut answers = lock(&self.0);
        if let Some(answer) = answers.get(key) {
            return Some(answer.clone());
        }
        if answers.len() >= MAX_SELECTIONS {
            return None;
        }
        Some(answers.entry(key.clone()).or_default().clone())
    }
}

impl<T: OutputType> OutputType for Shared<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.item.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let (Some(selection), Some(answers)) =
            (ctx.data_opt::<Selection>(), self.memo.get::<Answers>())
        else {
            return self.item.resolve(ctx, field).await;
        };
        let Some(answer) = answers.of(&selection.key(ctx, field)) else {
            return self.item.resolve(ctx, field).await;
        };
        // The first to get here resolves, for everyone if it may; the others wait for it.
        let mut own = None;
        let this = &selection.0;
        let shared = answer
            .value
            .get_or_init(|| async {
                this.caller_read.store(false, Ordering::Relaxed);
                let before = errors(ctx);
                let resolved = self.item.resolve(ctx, field).await;
                let shareable = !this.caller_read.load(Ordering::Relaxed) && errors(ctx) == before;
                let kept = resolved.as_ref().ok().filter(|_| shareable).cloned();
                own = Some(resolved);
                kept
            })
            .await;
        let (outcome, how) = match (own, shared) {
            (Some(resolved), _) => (resolved, "resolved"),
            (None, Some(value)) => (Ok(value.clone()), "taken"),
            // Resolved by another subscription, for itself alone.
            (None, None) => (self.item.resolve(ctx, field).await, "resolved"),
        };
        metrics::counter!("graphql_shared_resolutions_total", "outcome" => how).increment(1);
        *lock(&this.shared) = shared.is_some().then_some(answer);
        outcome
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Errors the response has so far (a field's error goes there, and its value is `null`).
fn errors(ctx: &ContextSelectionSet<'_>) -> usize {
    lock(&ctx.query_env.errors).len()
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// An answer is shared when its resolution did not read the caller, which `guard::caller`
    /// notices: a resolver that read `Caller` from the context itself would go unnoticed,
    /// and its answer to one subscriber would reach others.
    #[test]
    fn resolvers_read_the_caller_only_through_the_guard() {
        fn visit(dir: &Path, offenders: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    visit(&path, offenders);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("guard.rs")
                    // An extension around mutations, not a resolver (`pipeline::writes`).
                    && !path.ends_with("writes.rs")
                    && std::fs::read_to_string(&path).unwrap().contains(concat!("::<", "Caller>"))
                {
                    offenders.push(path.display().to_string());
                }
            }
        }
        let mut offenders = Vec::new();
        visit(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/graphql"),
            &mut offenders,
        );
        assert!(
            offenders.is_empty(),
            "read Caller through guard::caller: {offenders:?}"
        );
    }
}
