//! What the receivers of one delivery share. A room's news reaches every subscriber of the
//! room on this instance through one broadcast, and all of them with the same selection would
//! work out the same answer from it. So the delivery carries a place for that answer: the
//! first receiver works it out and the others take it (`graphql::shared`). The broker only
//! carries the place; what is kept in it is the reader's.
//!
//! A delivery stays in its room's channel until its last subscriber has it, and a slow one
//! may be a thousand behind; what the place holds (a selection's answer and its payload,
//! for a few selections) would stay as long. So the hub keeps the places of a room's latest
//! deliveries only (`Hub::RECENT`) and forgets older ones: a subscriber that comes to a
//! delivery that late works its answer out itself.
use std::{
    any::Any,
    fmt,
    sync::{Arc, Mutex},
};

/// An item, with what its receivers keep beside it.
#[derive(Debug, Clone)]
pub struct Shared<T> {
    pub item: T,
    pub memo: Memo,
}

impl<T> Shared<T> {
    /// An item for one receiver alone (read from the database for one subscriber): nothing
    /// to share, and nowhere to keep it.
    pub fn alone(item: T) -> Self {
        Self {
            item,
            memo: Memo(None),
        }
    }

    /// Heard by every subscriber of a room: one place for all of them.
    pub(super) fn heard(item: T) -> Self {
        Self {
            item,
            memo: Memo(Some(Arc::new(Mutex::new(Place::Empty)))),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Shared<U> {
        Shared {
            item: f(self.item),
            memo: self.memo,
        }
    }
}

/// One value of the reader's type, made by the first receiver that asks for it.
#[derive(Clone, Default)]
pub struct Memo(Option<Arc<Mutex<Place>>>);

enum Place {
    Empty,
    Kept(Arc<dyn Any + Send + Sync>),
    /// Too old to keep anything (see the top).
    Forgotten,
}

impl Memo {
    /// The delivery's `K`, the same for each of its receivers; `None` for an item that only
    /// one receiver sees, or one the hub has forgotten.
    pub fn get<K: Any + Send + Sync + Default>(&self) -> Option<Arc<K>> {
        let mut place = self.0.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
        let kept = match &*place {
            Place::Kept(kept) => kept.clone(),
            Place::Empty => {
                let kept: Arc<dyn Any + Send + Sync> = Arc::new(K::default());
                *place = Place::Kept(kept.clone());
                kept
            }
            Place::Forgotten => return None,
        };
        // One reader keeps one type there (every subscription reads its items the same way).
        kept.downcast().ok()
    }

    /// Drops what the place holds, and keeps nothing more.
    pub(super) fn forget(&self) {
        if let Some(place) = &self.0 {
            *place.lock().unwrap_or_else(|e| e.into_inner()) = Place::Forgotten;
        }
    }
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Memo"
        } else {
            "Memo(alone)"
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    #[test]
    fn receivers_of_one_delivery_share_one_value_and_an_item_alone_has_none() {
        let heard = Shared::heard("news");
        let (a, b) = (heard.clone(), heard.clone().map(str::len));
        a.memo
            .get::<Count>()
            .unwrap()
            .0
            .fetch_add(1, Ordering::Relaxed);
        assert_eq!(b.memo.get::<Count>().unwrap().0.load(Ordering::Relaxed), 1);
        assert_eq!(b.item, 4);
        // Another delivery has a place of its own.
        let other = Shared::heard("news");
        assert_eq!(
            other.memo.get::<Count>().unwrap().0.load(Ordering::Relaxed),
            0
        );
        assert!(Shared::alone("news").memo.get::<Count>().is_none());
        // Forgotten, it holds nothing, and makes nothing anew.
        a.memo.forget();
        assert!(b.memo.get::<Count>().is_none());
    }
}
