//! A read view of the latest committed state for chaincode: one RocksDB snapshot, so a block
//! executed against it sees one consistent state even while another block commits.

use caihong_chaincode::{Hash, StateReader, WriteSet};
use rocksdb::{DB, Direction, IteratorMode, Snapshot};

use super::error::StorageError;
use super::proof::StateProof;
use super::tree::{self, TreeSource};
use super::{CF_STATE, Store};

/// The committed state at one height, frozen. Cheap to create; drop it when the block is done
/// (a live snapshot keeps RocksDB from dropping overwritten data).
///
/// [`StateReader`] has no error channel: a RocksDB read error inside chaincode execution
/// panics with the error rather than letting a node execute against a partial state.
pub struct StateView<'a> {
    pub(crate) db: &'a DB,
    pub(crate) snapshot: Snapshot<'a>,
    node_cache: &'a tree::NodeCache,
    pub(crate) height: Option<u64>,
}

impl std::fmt::Debug for StateView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateView")
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl<'a> StateView<'a> {
    pub(crate) fn new(store: &'a Store) -> Result<Self, StorageError> {
        let db = &store.db;
        let snapshot = db.snapshot();
        let height = Store::read_latest_height(db, |cf, k| snapshot.get_cf(cf, k))?;
        Ok(StateView {
            db,
            snapshot,
            node_cache: &store.node_cache,
            height,
        })
    }

    /// Height of the state this view sees (`None` before genesis).
    pub fn height(&self) -> Option<u64> {
        self.height
    }

    fn tree(&self) -> TreeSource<'_> {
        TreeSource {
            db: self.db,
            snapshot: &self.snapshot,
            cache: Some(self.node_cache),
            pending: None,
        }
    }

    /// The state root if `writes` were applied on top of this view's state as the next height,
    /// without committing anything: what a proposer puts in its header and a validator checks.
    pub fn state_root_after(&self, writes: &WriteSet) -> Result<Hash, StorageError> {
        Ok(self.prepare(writes)?.root())
    }

    /// Like [`StateView::state_root_after`], keeping the computed tree nodes so that
    /// [`Store::commit_prepared`](super::Store::commit_prepared) writes them instead of
    /// computing the same tree again.
    pub fn prepare(&self, writes: &WriteSet) -> Result<PreparedState, StorageError> {
        let version = self.height.map_or(0, |h| h + 1);
        Ok(PreparedState {
            version,
            update: tree::apply(&self.tree(), writes, version)?,
        })
    }

    /// Like [`StateView::prepare`], for the height after `parent`: a block validated on this
    /// view but not committed yet. `writes` are the child block's, executed on this view's
    /// state with the parent's writes on top. Lets a proposer build its block while the
    /// parent is still being decided and stored.
    pub fn prepare_on(
        &self,
        parent: &PreparedState,
        writes: &WriteSet,
    ) -> Result<PreparedState, StorageError> {
        let expected = self.height.map_or(0, |h| h + 1);
        if parent.version != expected {
            return Err(StorageError::Tree {
                height: parent.version + 1,
                detail: format!(
                    "the parent state is version {}, not the one after this view ({expected})",
                    parent.version
                ),
            });
        }
        let source = TreeSource {
            pending: Some(&parent.update),
            ..self.tree()
        };
        let version = parent.version + 1;
        Ok(PreparedState {
            version,
            update: tree::apply(&source, writes, version)?,
        })
    }

    /// The root of this view's state.
    pub fn state_root(&self) -> Result<Hash, StorageError> {
        let h = self.height.ok_or(StorageError::NoGenesis)?;
        tree::root(&self.tree(), h)
    }

    /// Proof of `key`'s value (or absence) in this view's state.
    pub fn prove(&self, key: &[u8]) -> Result<StateProof, StorageError> {
        let h = self.height.ok_or(StorageError::NoGenesis)?;
        tree::prove(&self.tree(), key, h)
    }

    /// The subjects whose names match `query` ([`super::names`]), as of this view.
    pub fn search_subject_names(
        &self,
        query: &str,
        how: super::names::NameMatch,
        after: Option<&str>,
        limit: usize,
    ) -> Result<super::names::NameHits, StorageError> {
        super::names::search(self.db, &self.snapshot, query, how, after, limit)
    }

    /// Up to `limit` state entries under `prefix`, from `start` (inclusive; the prefix's first
    /// or, reversed, last key when `None`), in key order or reversed: a page of a long table
    /// (credit records by id) without reading the rest of it.
    pub fn scan_page(
        &self,
        prefix: &[u8],
        start: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let mut iter = self.snapshot.raw_iterator_cf(super::cf(self.db, CF_STATE));
        match (start, reverse) {
            (Some(k), false) => iter.seek(k),
            (Some(k), true) => iter.seek_for_prev(k),
            (None, false) => iter.seek(prefix),
            (None, true) => match prefix_end(prefix) {
                Some(end) => {
                    iter.seek_for_prev(&end);
                    if iter.key().is_some_and(|k| k >= end.as_slice()) {
                        iter.prev();
                    }
                }
                None => iter.seek_to_last(),
            },
        }
        let mut out = Vec::new();
        while out.len() < limit {
            match (iter.valid(), iter.key(), iter.value()) {
                (true, Some(k), Some(v)) if k.starts_with(prefix) => {
                    out.push((k.to_vec(), v.to_vec()))
                }
                _ => break,
            }
            if reverse { iter.prev() } else { iter.next() }
        }
        iter.status().map_err(|e| super::db_error(self.db, e))?;
        Ok(out)
    }

    pub(crate) fn tree_update(
        &self,
        writes: &WriteSet,
        version: u64,
    ) -> Result<tree::TreeUpdate, StorageError> {
        tree::apply(&self.tree(), writes, version)
    }

    pub(crate) fn tree_root(&self, version: u64) -> Result<Hash, StorageError> {
        tree::root(&self.tree(), version)
    }

    pub(crate) fn tree_prove(&self, key: &[u8], version: u64) -> Result<StateProof, StorageError> {
        tree::prove(&self.tree(), key, version)
    }
}

/// A state key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The least key greater than every key that starts with `prefix` (`None`: there is none).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A block's state tree update computed on the view of its parent: the root for the header
/// and the nodes the commit writes.
#[derive(Debug)]
pub struct PreparedState {
    pub(crate) version: u64,
    pub(crate) update: tree::TreeUpdate,
}

impl PreparedState {
    /// The state root after the block.
    pub fn root(&self) -> Hash {
        self.update.root
    }

    /// How many tree nodes the block adds (for the commit log: the tree's share of the writes).
    pub fn new_tree_nodes(&self) -> usize {
        self.update.new_nodes()
    }
}

impl StateReader for StateView<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let cf = super::cf(self.db, CF_STATE);
        self.snapshot
            .get_cf(cf, key)
            .unwrap_or_else(|e| panic!("reading state from RocksDB failed: {e}"))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let cf = super::cf(self.db, CF_STATE);
        let mut out = Vec::new();
        for item in self
            .snapshot
            .iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward))
        {
            let (k, v) = item.unwrap_or_else(|e| panic!("scanning state in RocksDB failed: {e}"));
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        out
    }
}
