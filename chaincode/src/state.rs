//! How chaincode sees state: a read trait the node implements over its
//! committed store, an overlay that stacks pending writes on top of it, and an
//! in-memory store for tests and tools. Keys iterate in byte order, so scans
//! are the same on every node.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Writes of one transaction or block: `None` deletes the key.
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Read access to state, as committed or as overlaid.
pub trait StateReader {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Every key starting with `prefix`, with its value, in ascending key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;
}

impl<S: StateReader + ?Sized> StateReader for &S {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        (**self).get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        (**self).scan_prefix(prefix)
    }
}

/// Remembers what a reader answered, for work over one state that does not change under it
/// (a snapshot, or the state a block executes on, below the block's own writes): the same
/// few keys, a signer's operator record and nonce or the chain's parameters, are read again
/// for every transaction, and each read of the node's store is a RocksDB lookup and a copy.
/// Scans are passed through.
#[derive(Debug)]
pub struct ReadCache<S> {
    base: S,
    answers: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl<S: StateReader> ReadCache<S> {
    pub fn new(base: S) -> Self {
        ReadCache {
            base,
            answers: Default::default(),
        }
    }
}

impl<S: StateReader> StateReader for ReadCache<S> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(answer) = self.answers.borrow().get(key) {
            return answer.clone();
        }
        let answer = self.base.get(key);
        self.answers
            .borrow_mut()
            .insert(key.to_vec(), answer.clone());
        answer
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.base.scan_prefix(prefix)
    }
}

/// Pending writes over a base state; reads see the writes first.
#[derive(Debug)]
pub struct Overlay<S> {
    base: S,
    writes: WriteSet,
}

impl<S: StateReader> Overlay<S> {
    pub fn new(base: S) -> Self {
        Overlay {
            base,
            writes: WriteSet::new(),
        }
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Adds a whole write set (later writes win).
    pub fn apply(&mut self, writes: WriteSet) {
        self.writes.extend(writes);
    }

    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    pub fn into_writes(self) -> WriteSet {
        self.writes
    }
}

impl<S: StateReader> StateReader for Overlay<S> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.base.scan_prefix(prefix).into_iter().collect();
        let range = self
            .writes
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix));
        for (k, v) in range {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        merged.into_iter().collect()
    }
}

/// An in-memory state: tests, tools and the CLI's offline checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemState {
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply(&mut self, writes: &WriteSet) {
        for (k, v) in writes {
            match v {
                Some(v) => self.entries.insert(k.clone(), v.clone()),
                None => self.entries.remove(k),
            };
        }
    }
}

impl StateReader for MemState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_reads_writes_first_and_scans_merge_in_order() {
        let mut base = MemState::new();
        base.entries.insert(b"a/1".to_vec(), b"base1".to_vec());
        base.entries.insert(b"a/2".to_vec(), b"base2".to_vec());
        base.entries.insert(b"b/1".to_vec(), b"other".to_vec());
        let mut o = Overlay::new(&base);
        o.put(b"a/0".to_vec(), b"new0".to_vec());
        o.delete(b"a/2".to_vec());
        o.put(b"a/1".to_vec(), b"new1".to_vec());
        assert_eq!(o.get(b"a/1"), Some(b"new1".to_vec()));
        assert_eq!(o.get(b"a/2"), None);
        let keys: Vec<_> = o.scan_prefix(b"a/").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a/0".to_vec(), b"a/1".to_vec()]);
    }

    /// Counts the reads that reach the state below.
    struct Counting {
        state: MemState,
        gets: std::cell::Cell<usize>,
    }

    impl StateReader for Counting {
        fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.gets.set(self.gets.get() + 1);
            self.state.get(key)
        }
        fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
            self.state.scan_prefix(prefix)
        }
    }

    #[test]
    fn read_cache_answers_as_its_base_and_asks_it_once_a_key() {
        let mut state = MemState::new();
        state.entries.insert(b"op/1".to_vec(), b"alice".to_vec());
        state.entries.insert(b"op/2".to_vec(), b"bob".to_vec());
        let base = Counting {
            state,
            gets: Default::default(),
        };
        let cache = ReadCache::new(&base);
        for _ in 0..3 {
            assert_eq!(cache.get(b"op/1"), Some(b"alice".to_vec()));
            assert_eq!(cache.get(b"op/9"), None);
        }
        assert_eq!(base.gets.get(), 2, "a hit or a miss is asked once");
        assert_eq!(cache.get(b"op/2"), Some(b"bob".to_vec()));
        assert_eq!(base.gets.get(), 3);
        assert_eq!(cache.scan_prefix(b"op/").len(), 2);
        // Below an overlay, the block's own writes still come first.
        let mut block = Overlay::new(&cache);
        block.put(b"op/1".to_vec(), b"carol".to_vec());
        assert_eq!(block.get(b"op/1"), Some(b"carol".to_vec()));
    }
}
