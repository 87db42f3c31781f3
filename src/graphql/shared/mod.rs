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
//! socket that took the answer, with its own subscription's id (`Answer::payload`). And once
//! an answer is serialized, the subscriptions that come to it later do not run async-graphql
//! for that item at all: their stream hands the payload to the transport directly
//! (`Selection::unless_answered`, `Selection::deliveries`).
mod key;

use std::{
    borrow::Cow,
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    task::Poll,
};

use async_graphql::{
    Context, ContextSelectionSet, OutputType, Positioned, Request, Response, ServerResult, Value,
    parser::types::Field, registry::Registry,
};
use futures_util::{Stream, stream};
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use self::key::Key;
use crate::{
    broker::{Memo, Shared},
    error::AppResult,
};

/// Distinct selections one delivery keeps answers for; past that, the others resolve for
/// themselves. Clients use a handful of documents; this bounds what a client that sends a
/// new variable value with every subscription can make each delivery hold (and the hub
/// keeps the memos of a room's latest deliveries only: `broker::shared`).
const MAX_SELECTIONS: usize = 8;

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
    /// Items' answers found serialized already, held for the transport, which sends them in
    /// place of responses (`deliveries`).
    answered: Mutex<VecDeque<Arc<RawValue>>>,
}

/// What the transport sends for one of a subscription's results.
// One at a time per subscription, handed straight to the socket: boxing the response would
// cost an allocation per response.
#[allow(clippy::large_enum_variant)]
pub enum Delivery {
    /// async-graphql's response; with the answer it shares, if it does (its payload is then
    /// serialized once for every subscription that takes it).
    Response {
        response: Response,
        shared: Option<Arc<Answer>>,
    },
    /// The payload of an answer serialized already, for an item async-graphql was spared.
    Answered(Arc<RawValue>),
}

impl Selection {
    pub fn of(request: &Request) -> Self {
        Self(Arc::new(Selecting {
            document: request.query.as_str().into(),
            operation: request.operation_name.clone(),
            key: OnceLock::new(),
            caller_read: AtomicBool::new(false),
            shared: Mutex::new(None),
            answered: Mutex::default(),
        }))
    }

    /// A resolver read the caller: what it answers may be theirs alone.
    pub(super) fn caller_read(&self) {
        self.0.caller_read.store(true, Ordering::Relaxed);
    }

    /// The transport's view of async-graphql's stream of `responses`: each with the answer it
    /// shares, and the answers `unless_answered` held, in order.
    pub fn deliveries(
        self,
        responses: impl Stream<Item = Response> + Send + 'static,
    ) -> impl Stream<Item = Delivery> + Send + 'static {
        let mut responses = Box::pin(responses);
        // What a poll gave after the answers it held: it comes after them. Boxed, as it is
        // rare, and inline it would be part of every subscription's state.
        let mut later: Option<Box<Option<Delivery>>> = None;
        stream::poll_fn(move |cx| {
            if let Some(answer) = lock(&self.0.answered).pop_front() {
                return Poll::Ready(Some(Delivery::Answered(answer)));
            }
            if let Some(polled) = later.take() {
                return Poll::Ready(*polled);
            }
            let polled = responses.as_mut().poll_next(cx).map(|response| {
                response.map(|response| Delivery::Response {
                    response,
                    shared: lock(&self.0.shared).take(),
                })
            });
            match lock(&self.0.answered).pop_front() {
                Some(answer) => {
                    if let Poll::Ready(polled) = polled {
                        later = Some(Box::new(polled));
                    }
                    Poll::Ready(Some(Delivery::Answered(answer)))
                }
                None => polled,
            }
        })
    }

    fn key(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> Arc<Key> {
        let this = &self.0;
        let key = || Key::of(this.document.clone(), this.operation.clone(), ctx, field);
        this.key.get_or_init(|| Arc::new(key())).clone()
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
    payload: OnceLock<Arc<RawValue>>,
}

impl Answer {
    /// The response's payload as the socket writes it, serialized by the first socket to send
    /// it (`serialize`) and taken as it is by the others.
    pub fn payload(&self, serialize: impl FnOnce() -> Box<RawValue>) -> &RawValue {
        self.payload.get_or_init(|| serialize().into())
    }
}

impl Selecting {
    /// The payload of the answer to the item of `memo` for this selection, if it is
    /// serialized already (and so was shareable). Not before this subscription's first item:
    /// that is when it learns its selection (`Selection::key`).
    fn serialized(&self, memo: &Memo) -> Option<Arc<RawValue>> {
        let key = self.key.get()?;
        let answers = memo.get::<Answers>()?;
        let answer = lock(&answers.0).get(key)?.clone();
        answer.payload.get().cloned()
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

/// A subscription's `items`, less those whose answer for its selection is serialized already
/// (over a socket: `Selection`): those are held, in order, for `Selection::deliveries`, which
/// sends them before whatever async-graphql's stream gives after them. Only the items' own
/// stream says `Pending` (and so wakes the task when there is more): async-graphql polls
/// what it runs again only when woken.
pub(super) fn unless_answered<T, S>(
    ctx: &Context<'_>,
    items: S,
) -> impl Stream<Item = AppResult<Shared<T>>> + Send + 'static + use<T, S>
where
    T: Send + 'static,
    S: Stream<Item = AppResult<Shared<T>>> + Send + 'static,
{
    let this = ctx
        .data_opt::<Selection>()
        .map(|selection| selection.0.clone());
    let mut items = Box::pin(items);
    stream::poll_fn(move |cx| {
        loop {
            let item = match items.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(item))) => item,
                other => return other,
            };
            let Some((this, answer)) = this
                .as_ref()
                .and_then(|this| Some((this, this.serialized(&item.memo)?)))
            else {
                return Poll::Ready(Some(Ok(item)));
            };
            counted("taken");
            lock(&this.answered).push_back(answer);
        }
    })
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
        counted(how);
        *lock(&this.shared) = shared.is_some().then_some(answer);
        outcome
    }
}

/// One subscription item, `resolved` for it or `taken` from another.
fn counted(outcome: &'static str) {
    metrics::counter!("graphql_shared_resolutions_total", "outcome" => outcome).increment(1);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Errors the response has so far (a field's error goes there, and its value is `null`).
fn errors(ctx: &ContextSelectionSet<'_>) -> usize {
    lock(&ctx.query_env.errors).len()
}

#[cfg(test)]
mod tests {
    use std::{path::Path, sync::Arc};

    use super::{Answers, Key, MAX_SELECTIONS};

    /// Each subscription may bring a selection of its own (a new variable value each time);
    /// a delivery keeps answers for the first few, at 10 and 1,000 times that as at it.
    #[test]
    fn a_delivery_keeps_answers_for_a_bounded_number_of_selections() {
        for selections in [MAX_SELECTIONS, MAX_SELECTIONS * 10, MAX_SELECTIONS * 1000] {
            let answers = Answers::default();
            let document: Arc<str> = "subscription { messageAdded { seq } }".into();
            let kept = (0..selections)
                .map(|i| Arc::new(Key::new(document.clone(), None, i.to_string())))
                .filter(|key| answers.of(key).is_some())
                .count();
            assert_eq!(kept, MAX_SELECTIONS);
            assert_eq!(answers.0.lock().unwrap().len(), MAX_SELECTIONS);
            // One already kept is found again, past the bound.
            let first = Arc::new(Key::new(document.clone(), None, "0".into()));
            assert!(answers.of(&first).is_some());
        }
    }

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
