//! A bounded cache whose admissions cannot undo a forget (docs/ARCHITECTURE.md, "The bearer
//! cache"): the token cache and the user cache are both one.
//!
//! A reader can race a change: it reads the store, the change writes and forgets the entry, and
//! the reader then admits what it read, stale. So every forget bumps an epoch under the `admit`
//! lock, a reader notes the epoch before it reads the store, and [`Guarded::admit`] (under the
//! same lock) keeps the value only if no forget happened in between. Reads take no lock.
//!
//! Storage is quick_cache (S3-FIFO: a newcomer waits in a small queue and joins the main one
//! only if it is used again, so a scan of one-off keys cannot push out the busy ones).

use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Guarded<K, V> {
    entries: quick_cache::sync::Cache<K, V>,
    admit: Mutex<()>,
    epoch: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> Guarded<K, V> {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Guarded<K, V> {
        Guarded {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            admit: Mutex::new(()),
            epoch: AtomicU64::new(0),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + quick_cache::Equivalent<K> + ?Sized,
    {
        self.entries.get(key)
    }

    /// Note this before reading what [`Guarded::admit`] will keep.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Keeps `value` unless something was forgotten since `epoch`; whether it did.
    pub fn admit(&self, key: K, value: V, epoch: u64) -> bool {
        let Ok(_admitting) = self.admit.lock() else {
            return false;
        };
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return false;
        }
        self.entries.insert(key, value);
        true
    }

    /// Forgets these keys at once; no read that started before can bring them back.
    pub fn forget(&self, keys: impl IntoIterator<Item = K>) {
        if let Ok(_admitting) = self.admit.lock() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            for key in keys {
                self.entries.remove(&key);
            }
        }
    }

    /// Forgets everything.
    pub fn forget_all(&self) {
        if let Ok(_admitting) = self.admit.lock() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            self.entries.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Guarded;

    /// A read that started before a forget cannot bring the forgotten value back; one that
    /// started after can.
    #[test]
    fn a_forget_wins_over_a_read_that_started_before_it() {
        let cache: Guarded<String, u32> = Guarded::new(10);
        let before = cache.epoch();
        cache.forget(["a".to_owned()]);
        assert!(!cache.admit("a".into(), 1, before), "stale read refused");
        assert_eq!(cache.get("a"), None);
        let after = cache.epoch();
        assert!(cache.admit("a".into(), 2, after));
        assert_eq!(cache.get("a"), Some(2));
        cache.forget_all();
        assert!(cache.is_empty());
        assert!(!cache.admit("a".into(), 3, after));
    }
}
