//! Encoded segments by their text, least recently used dropped first beyond a size budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Text plus ids kept per tokenizer: a Claude Code prefix is ~100 KB, so this holds many sessions.
const BUDGET_BYTES: usize = 64 << 20;

#[derive(Default)]
pub struct SegmentCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    bytes: usize,
    clock: u64,
}

struct Entry {
    ids: Arc<[u32]>,
    last_used: u64,
}

fn cost(text: &str, ids: &[u32]) -> usize {
    text.len() + std::mem::size_of_val(ids)
}

impl SegmentCache {
    pub fn get(&self, text: &str) -> Option<Arc<[u32]>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(text)?;
        entry.last_used = now;
        Some(Arc::clone(&entry.ids))
    }

    pub fn insert(&self, text: &str, ids: Arc<[u32]>) {
        let size = cost(text, &ids);
        if size > BUDGET_BYTES / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let last_used = inner.clock;
        if let Some(old) = inner
            .entries
            .insert(text.to_owned(), Entry { ids, last_used })
        {
            inner.bytes -= cost(text, &old.ids);
        }
        inner.bytes += size;
        while inner.bytes > BUDGET_BYTES {
            inner.evict_oldest();
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or(0)
    }
}

impl Inner {
    fn evict_oldest(&mut self) {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(text, _)| text.clone());
        if let Some(text) = oldest
            && let Some(entry) = self.entries.remove(&text)
        {
            self.bytes -= cost(&text, &entry.ids);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_segment_goes_first() {
        let cache = SegmentCache::default();
        let big = |c: char| c.to_string().repeat(BUDGET_BYTES / 5);
        cache.insert(&big('a'), Arc::from(vec![1]));
        cache.insert(&big('b'), Arc::from(vec![2]));
        cache.insert(&big('c'), Arc::from(vec![3]));
        cache.insert(&big('d'), Arc::from(vec![4]));
        assert!(cache.get(&big('a')).is_some()); // now b is the oldest
        cache.insert(&big('e'), Arc::from(vec![5]));
        assert!(cache.get(&big('b')).is_none());
        assert_eq!(cache.get(&big('a')).as_deref(), Some(&[1][..]));
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn a_segment_larger_than_a_quarter_of_the_budget_is_not_kept() {
        let cache = SegmentCache::default();
        cache.insert(&"x".repeat(BUDGET_BYTES / 3), Arc::from(vec![1]));
        assert_eq!(cache.len(), 0);
    }
}
