//! State snapshots for state sync: the state at one height, served in chunks a new member
//! checks against that height's state root, and the restore that builds a store from them.
//!
//! A chunk is a run of state entries in the order of their key hashes (the tree's leaf order),
//! with a `jmt` range proof. The restore (`jmt`'s `JellyfishMerkleRestore`) rebuilds the tree's
//! nodes as the leaves arrive and checks, chunk by chunk, that everything received so far is
//! the leftmost part of a tree with the expected root; a chunk that fails is refused before
//! anything of it is written. `jmt`'s restore changes its partial nodes before it checks, so
//! after a refused chunk it is rebuilt from the verified entries already written (their
//! chunk boundaries and proofs are kept). Keys are served from `tree_keys` (key hash to key),
//! which every commit fills.

use std::sync::{Arc, Mutex};

use caihong_chaincode::Hash;
use jmt::restore::{JellyfishMerkleRestore, StateSnapshotReceiver};
use jmt::storage::{NodeBatch, TreeWriter};
use jmt::{KeyHash, OwnedValue, RootHash};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::StorageError;
use super::tree::{self, TreeSource};
use super::{
    CF_META, CF_STATE, CF_TREE_KEYS, CF_TREE_NODES, CF_TREE_VALUES, META_PREIMAGES_FROM, Store, cf,
    db_error,
};
use crate::block::Block;
use caihong_consensus::CommitCertificate;

type RangeProof = jmt::proof::SparseMerkleRangeProof<Sha256>;

/// One chunk of the state at `height`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    pub height: u64,
    /// Keys and values, in the order of their key hashes, after the requested position.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// `jmt::proof::SparseMerkleRangeProof` (bincode) that these entries and every one before
    /// them are the leftmost leaves of the tree at `height`.
    pub proof: Vec<u8>,
    /// Whether the last entry is the tree's last leaf.
    pub last: bool,
}

/// Why a chunk was refused: the peer that sent it is not trusted again.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk for height {got}, the restore is of height {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("empty chunk that does not end the state")]
    Empty,
    #[error("entries out of order or repeated: key hashes must rise past {0}")]
    Order(Hash),
    #[error("proof does not decode: {0}")]
    Proof(String),
    #[error("does not verify against the state root {root}: {detail}")]
    Verify { root: Hash, detail: String },
    #[error("claims to end the state, but the tree it completes has root {got}, not {expected}")]
    NotLast { expected: Hash, got: Hash },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Store {
    /// A chunk of the state at `height`: up to about `max_bytes` of entries whose key hashes
    /// come after `after` (from the first when `None`). The height must be one whose state
    /// tree this store keeps, and not older than its key index.
    pub fn snapshot_chunk(
        &self,
        height: u64,
        after: Option<Hash>,
        max_bytes: usize,
    ) -> Result<SnapshotChunk, StorageError> {
        let view = self.state_view()?;
        self.check_version(&view, height)?;
        let from = self.preimages_from()?;
        if from.is_none_or(|from| height < from) {
            return Err(StorageError::Tree {
                height,
                detail: format!(
                    "no snapshot below height {}: the key index starts there",
                    from.map_or("(none)".into(), |f| f.to_string())
                ),
            });
        }
        let source = Arc::new(TreeSource {
            db: &self.db,
            snapshot: &view.snapshot,
            cache: None,
            pending: None,
        });
        let tree_error = |e: anyhow::Error| StorageError::Tree {
            height,
            detail: e.to_string(),
        };
        let start = KeyHash(after.map_or([0; 32], |h| h.0));
        let mut leaves = jmt::JellyfishMerkleIterator::new(source.clone(), height, start)
            .map_err(tree_error)?
            .peekable();
        let keys = cf(&self.db, CF_TREE_KEYS);
        let mut entries = Vec::new();
        let mut bytes = 0;
        let mut rightmost = None;
        while let Some(leaf) = leaves.peek() {
            let (hash, _) = leaf
                .as_ref()
                .map_err(|e| tree_error(anyhow::anyhow!("{e}")))?;
            if after.is_some_and(|a| hash.0 == a.0) {
                leaves.next();
                continue;
            }
            if bytes >= max_bytes {
                break;
            }
            let (hash, value) = leaves.next().expect("peeked").map_err(tree_error)?;
            let key = view
                .snapshot
                .get_cf(keys, hash.0)
                .map_err(|e| db_error(&self.db, e))?
                .ok_or_else(|| {
                    StorageError::corrupt(CF_TREE_KEYS, Hash(hash.0).to_hex(), "no key")
                })?;
            bytes += key.len() + value.len() + 16;
            entries.push((key, value));
            rightmost = Some(hash);
        }
        let last = leaves.peek().is_none();
        // Nothing after `after`: no entries, no proof, and the state ends.
        let proof = match rightmost {
            Some(key) => {
                let proof = jmt::JellyfishMerkleTree::<_, Sha256>::new(source.as_ref())
                    .get_range_proof(key, height)
                    .map_err(tree_error)?;
                bincode::serialize(&proof).expect("proofs encode")
            }
            None => Vec::new(),
        };
        Ok(SnapshotChunk {
            height,
            entries,
            proof,
            last,
        })
    }

    /// The first height whose snapshot this store can serve (every key since is indexed).
    pub fn preimages_from(&self) -> Result<Option<u64>, StorageError> {
        self.get(CF_META, META_PREIMAGES_FROM)?
            .map(|b| super::u64_from(CF_META, "preimages from", &b))
            .transpose()
    }
}

/// `jmt`'s restore writes through this: the nodes and values it has frozen, taken by the
/// restore's owner after each chunk.
#[derive(Default)]
struct Frozen(Mutex<NodeBatch>);

impl TreeWriter for Frozen {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.merge(batch.clone());
        Ok(())
    }
}

/// Builds a store's state at one height from chunks (see the module docs). The store holds
/// genesis and nothing else; [`SnapshotRestore::finish`] makes the height its latest.
pub struct SnapshotRestore<'a> {
    store: &'a Store,
    height: u64,
    root: Hash,
    restore: JellyfishMerkleRestore<Sha256>,
    frozen: Arc<Frozen>,
    /// Each verified chunk's last key hash and proof, to rebuild the restore after a bad one.
    verified: Vec<(KeyHash, Vec<u8>)>,
    after: Option<Hash>,
    done: bool,
    /// Entries written so far.
    pub entries: u64,
}

impl std::fmt::Debug for SnapshotRestore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotRestore")
            .field("height", &self.height)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl<'a> SnapshotRestore<'a> {
    /// Starts restoring the state at `height`, whose header has `root`, into `store` (which
    /// holds only genesis: its state entries are removed first).
    pub fn new(store: &'a Store, height: u64, root: Hash) -> Result<Self, StorageError> {
        let state = cf(&store.db, CF_STATE);
        let mut batch = WriteBatch::default();
        for item in store.db.iterator_cf(state, rocksdb::IteratorMode::Start) {
            let (k, _) = item.map_err(|e| db_error(&store.db, e))?;
            batch.delete_cf(state, k);
        }
        // The name index follows the state: a restore retried at another height must not keep
        // the names of the first attempt.
        super::names::clear(&store.db, &mut batch)?;
        store.write_synced(batch)?;
        let frozen = Arc::new(Frozen::default());
        Ok(SnapshotRestore {
            store,
            height,
            root,
            restore: new_restore(&frozen, height, root)?,
            frozen,
            verified: Vec::new(),
            after: None,
            done: false,
            entries: 0,
        })
    }

    /// Where the next chunk starts: after this key hash (`None`: from the first).
    pub fn after(&self) -> Option<Hash> {
        self.after
    }

    /// Whether the whole state is here.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Checks a chunk and writes it. A refused chunk writes nothing and leaves the restore
    /// ready for the same chunk from another peer.
    pub fn add(&mut self, chunk: SnapshotChunk) -> Result<(), ChunkError> {
        if chunk.height != self.height {
            return Err(ChunkError::WrongHeight {
                expected: self.height,
                got: chunk.height,
            });
        }
        if chunk.entries.is_empty() {
            // The previous chunk ended the state without saying so.
            return match chunk.last && !self.verified.is_empty() {
                true => self.complete(),
                false => Err(ChunkError::Empty),
            };
        }
        let mut leaves = Vec::with_capacity(chunk.entries.len());
        let mut previous = self.after;
        for (key, value) in &chunk.entries {
            let hash = super::proof::key_hash(key);
            if previous.is_some_and(|p| hash.0 <= p.0) {
                return Err(ChunkError::Order(previous.expect("checked")));
            }
            previous = Some(hash);
            leaves.push((KeyHash(hash.0), value.clone()));
        }
        let proof: RangeProof =
            bincode::deserialize(&chunk.proof).map_err(|e| ChunkError::Proof(e.to_string()))?;
        let last_hash = leaves.last().expect("not empty").0;
        if let Err(e) = self.restore.add_chunk(leaves, proof) {
            self.rebuild()?;
            return Err(ChunkError::Verify {
                root: self.root,
                detail: e.to_string(),
            });
        }
        self.write(&chunk.entries)?;
        self.verified.push((last_hash, chunk.proof));
        self.after = previous;
        self.entries += chunk.entries.len() as u64;
        if chunk.last {
            self.complete()?;
        }
        Ok(())
    }

    /// Writes a verified chunk's entries and the tree nodes and values the restore froze.
    fn write(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        let db = &self.store.db;
        let mut batch = WriteBatch::default();
        let (state, keys) = (cf(db, CF_STATE), cf(db, CF_TREE_KEYS));
        for (key, value) in entries {
            batch.put_cf(state, key, value);
            batch.put_cf(keys, super::proof::key_hash(key).0, key);
        }
        super::names::index_entries(db, &mut batch, entries);
        let frozen = std::mem::take(&mut *self.frozen.0.lock().unwrap_or_else(|p| p.into_inner()));
        let (nodes, values) = (cf(db, CF_TREE_NODES), cf(db, CF_TREE_VALUES));
        for (key, node) in frozen.nodes() {
            batch.put_cf(nodes, tree::encode_node_key(key), tree::encode_node(node));
        }
        for ((version, hash), value) in frozen.values() {
            batch.put_cf(
                values,
                tree::value_key(*version, hash),
                tree::encode_value(value),
            );
        }
        db.write(batch).map_err(|e| db_error(db, e))
    }

    /// After the chunk that ends the state: freezes the rest of the tree and checks its root.
    fn complete(&mut self) -> Result<(), ChunkError> {
        let restore = std::mem::replace(
            &mut self.restore,
            new_restore(&self.frozen, self.height, self.root)?,
        );
        restore.finish().map_err(|e| ChunkError::Verify {
            root: self.root,
            detail: e.to_string(),
        })?;
        self.write(&[])?;
        let view = self.store.state_view()?;
        let source = TreeSource {
            db: &self.store.db,
            snapshot: &view.snapshot,
            cache: None,
            pending: None,
        };
        let got = tree::root(&source, self.height)?;
        if got != self.root {
            // The tree is not whole: the "last" chunk was not the last. Its entries stay
            // (they verified as a prefix); the restore goes on after them.
            self.rebuild()?;
            return Err(ChunkError::NotLast {
                expected: self.root,
                got,
            });
        }
        self.done = true;
        Ok(())
    }

    /// A fresh restore fed the verified entries again, chunk by chunk with their proofs.
    fn rebuild(&mut self) -> Result<(), StorageError> {
        let mut restore = new_restore(&self.frozen, self.height, self.root)?;
        let values = cf(&self.store.db, CF_TREE_VALUES);
        let mut iter = self
            .store
            .db
            .iterator_cf(values, rocksdb::IteratorMode::Start);
        for (last, proof) in &self.verified {
            let mut leaves: Vec<(KeyHash, OwnedValue)> = Vec::new();
            for item in iter.by_ref() {
                let (k, v) = item.map_err(|e| db_error(&self.store.db, e))?;
                let (hash, version) = k.split_at(32);
                if version != self.height.to_be_bytes() {
                    continue;
                }
                let hash = KeyHash(hash.try_into().expect("32 bytes"));
                let value = tree::decode_value(&v)
                    .map_err(|e| StorageError::corrupt(CF_TREE_VALUES, "value", e))?
                    .unwrap_or_default();
                leaves.push((hash, value));
                if hash == *last {
                    break;
                }
            }
            let proof: RangeProof = bincode::deserialize(proof)
                .map_err(|e| StorageError::corrupt(CF_TREE_VALUES, "kept proof", e))?;
            restore
                .add_chunk(leaves, proof)
                .map_err(|e| StorageError::Tree {
                    height: self.height,
                    detail: format!("replaying verified chunks: {e}"),
                })?;
        }
        // The nodes it froze again are on disk already.
        self.frozen
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.restore = restore;
        Ok(())
    }

    /// Makes the restored height the store's latest: its block and certificate (checked by
    /// the caller against the header it verified), the validator set of the next height, and
    /// the oldest tree version, in one synced batch.
    pub fn finish(
        self,
        block: &Block,
        certificate: &CommitCertificate,
    ) -> Result<(), StorageError> {
        if !self.done || block.header.height != self.height || block.header.state_root != self.root
        {
            return Err(StorageError::Tree {
                height: self.height,
                detail: "the snapshot is not complete, or the block is not the one restored".into(),
            });
        }
        self.store.install_restored(block, certificate)
    }
}

fn new_restore(
    frozen: &Arc<Frozen>,
    height: u64,
    root: Hash,
) -> Result<JellyfishMerkleRestore<Sha256>, StorageError> {
    JellyfishMerkleRestore::new_overwrite(frozen.clone(), height, RootHash(root.0)).map_err(|e| {
        StorageError::Tree {
            height,
            detail: e.to_string(),
        }
    })
}
