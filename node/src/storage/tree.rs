//! The state commitment: a Jellyfish Merkle tree (`jmt`, SHA-256) over `SHA-256(key)`, one
//! version per block height, its nodes and value history in RocksDB column families.
//!
//! `jmt` computes; we store. [`TreeSource`] answers `jmt`'s reads from one RocksDB snapshot,
//! so a root computed for a proposal sees exactly the state the proposal was executed on.
//! [`TreeUpdate`] is what a new version adds; the store writes its nodes without the
//! write-ahead log and the rest in the block's logged batch, and [`recompute_version`] gives
//! back the nodes a crash lost.

use std::sync::Mutex;

use bincode::Options;
use caihong_chaincode::{Hash, WriteSet};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Version};
use rocksdb::{DB, IteratorMode, Snapshot, WriteBatch};
use sha2::Sha256;

use super::error::StorageError;
use super::proof::{self, StateProof, key_hash};
use super::{CF_TREE_CHANGES, CF_TREE_NODES, CF_TREE_STALE, CF_TREE_VALUES};

/// Node keys sort by version: big-endian fixed-width bincode puts the version's 8 bytes first,
/// so pruning walks versions in order.
fn key_options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_big_endian()
}

pub(crate) fn encode_node_key(key: &NodeKey) -> Vec<u8> {
    key_options()
        .serialize(key)
        .expect("node keys always encode")
}

/// First byte of a node stored as bincode with variable-length integers. Versions and leaf
/// counts are small numbers, so a full internal node takes about 40 bytes a child instead of
/// 53 with fixed-width integers (most of what remains is the children's hashes), and every
/// byte saved is saved again in the write-ahead log, the memtable, the flush and compaction.
/// Nodes written before this format are plain fixed-width bincode and start with their variant
/// tag, 0 to 2, so both decode.
const NODE_FORMAT_VARINT: u8 = 0xc1;

pub(crate) fn encode_node(node: &Node) -> Vec<u8> {
    // Room for a full internal node or a leaf, without walking the node once more to size it.
    let capacity = match node {
        Node::Internal(_) => 16 * 42 + 16,
        _ => 80,
    };
    let mut bytes = Vec::with_capacity(capacity);
    bytes.push(NODE_FORMAT_VARINT);
    bincode::DefaultOptions::new()
        .serialize_into(&mut bytes, node)
        .expect("tree nodes always encode");
    bytes
}

pub(crate) fn decode_node(bytes: &[u8]) -> bincode::Result<Node> {
    match bytes.split_first() {
        Some((&NODE_FORMAT_VARINT, rest)) => bincode::DefaultOptions::new().deserialize(rest),
        _ => bincode::deserialize(bytes),
    }
}

/// The key of version `version`'s root: the empty nibble path (`jmt` keeps its constructor
/// private, so it is decoded from its encoding: version, 0 nibbles, 0 bytes).
pub(crate) fn root_node_key(version: Version) -> NodeKey {
    let mut bytes = version.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0; 16]);
    decode_node_key(&bytes).expect("the empty nibble path decodes")
}

fn decode_node_key(bytes: &[u8]) -> Result<NodeKey, StorageError> {
    key_options()
        .deserialize(bytes)
        .map_err(|e| StorageError::corrupt(CF_TREE_NODES, "node key", e))
}

/// `key_hash || version (big endian)`: the newest value at or below a version is one
/// `seek_for_prev` away.
pub(crate) fn value_key(version: Version, key_hash: &KeyHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(&key_hash.0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// Decoded tree nodes near the root, shared by a store's views: a block's update reads the
/// same top nodes and fresh paths over and over, and a RocksDB read plus decode was the largest
/// part of computing a state root. One slot per nibble path holds the newest committed node at
/// that path (written or read back): the tree at the latest height reads exactly those, and a
/// node key names its version, so a slot answers only for its own version and is never stale.
/// Fixed slots cost no hashing, no growing and no eviction (a two-generation hash map before
/// spent a few percent of a loaded node's time rehashing and faulting in its pages).
#[derive(Debug)]
pub(crate) struct NodeCache {
    slots: Mutex<Vec<Option<(Version, Node)>>>,
}

/// Only nodes this near the root are cached: the top four levels (up to 1 + 16 + 256 + 4,096
/// nodes) are rewritten by nearly every block and read again by the next one, and the fifth
/// (up to 65,536) holds the parent of nearly every leaf a block writes, so each written key
/// read one from RocksDB. Caching the fifth level costs up to about 70 MiB a node (about
/// 1 KiB an internal node) and saved about 5% of the nodes' CPU at a fixed 3,500 tx/s
/// (session 18). Deeper nodes are rarely read twice, and cloning every new one cost as much as
/// the cache saved.
const NODE_CACHE_MAX_NIBBLES: usize = 4;

/// Slots for every path of up to [`NODE_CACHE_MAX_NIBBLES`] nibbles: 1 + 16 + ... + 16^4.
const NODE_CACHE_SLOTS: usize = (16usize.pow(NODE_CACHE_MAX_NIBBLES as u32 + 1) - 1) / 15;

/// The slot of a path near the root: the paths of `n` nibbles follow all shorter ones, in
/// their numeric order. `None` for deeper paths.
fn cache_slot(key: &NodeKey) -> Option<usize> {
    let path = key.nibble_path();
    let n = path.num_nibbles();
    if n > NODE_CACHE_MAX_NIBBLES {
        return None;
    }
    let shorter = (16usize.pow(n as u32) - 1) / 15;
    let index = (0..n).fold(0, |acc, i| {
        acc * 16 + usize::from(u8::from(path.get_nibble(i)))
    });
    Some(shorter + index)
}

fn worth_caching(key: &NodeKey) -> bool {
    key.nibble_path().num_nibbles() <= NODE_CACHE_MAX_NIBBLES
}

impl Default for NodeCache {
    fn default() -> Self {
        NodeCache {
            slots: Mutex::new(vec![None; NODE_CACHE_SLOTS]),
        }
    }
}

impl NodeCache {
    fn get(&self, key: &NodeKey) -> Option<Node> {
        let slot = cache_slot(key)?;
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match &slots[slot] {
            Some((version, node)) if *version == key.version() => Some(node.clone()),
            _ => None,
        }
    }

    /// Keeps `node` unless its slot holds a newer version (an old node read back for a proof
    /// at an old height must not push out the one the next block reads). Callers check
    /// [`worth_caching`] first (before cloning the node).
    fn put(&self, key: &NodeKey, node: Node) {
        let Some(slot) = cache_slot(key) else {
            return;
        };
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let entry = &mut slots[slot];
        if entry.as_ref().is_none_or(|(v, _)| *v <= key.version()) {
            *entry = Some((key.version(), node));
        }
    }
}

/// Reads `jmt` nodes and values from one RocksDB snapshot (nodes through the store's cache
/// when there is one).
pub(crate) struct TreeSource<'a> {
    pub(crate) db: &'a DB,
    pub(crate) snapshot: &'a Snapshot<'a>,
    pub(crate) cache: Option<&'a NodeCache>,
    /// A computed but not yet committed version on top of the snapshot (the parent of a block
    /// built ahead): its nodes are read before the database's.
    pub(crate) pending: Option<&'a TreeUpdate>,
}

impl std::fmt::Debug for TreeSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeSource").finish_non_exhaustive()
    }
}

impl TreeReader for TreeSource<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if let Some(node) = self
            .pending
            .and_then(|p| p.batch.node_batch.get_node(node_key))
        {
            return Ok(Some(node.clone()));
        }
        let cache = self.cache.filter(|_| worth_caching(node_key));
        if let Some(node) = cache.and_then(|c| c.get(node_key)) {
            return Ok(Some(node));
        }
        let cf = super::cf(self.db, CF_TREE_NODES);
        match self.snapshot.get_cf(cf, encode_node_key(node_key))? {
            None => Ok(None),
            Some(bytes) => {
                let node = decode_node(&bytes)
                    .map_err(|e| anyhow::anyhow!("tree node {node_key:?} does not decode: {e}"))?;
                if let Some(cache) = cache {
                    cache.put(node_key, node.clone());
                }
                Ok(Some(node))
            }
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let cf = super::cf(self.db, CF_TREE_VALUES);
        let mut it = self.snapshot.raw_iterator_cf(cf);
        it.seek_for_prev(value_key(max_version, &key_hash));
        it.status()?;
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.starts_with(&key_hash.0) => decode_value(v),
            _ => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("tree restore is not supported by this store")
    }
}

pub(crate) fn encode_value(value: &Option<OwnedValue>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(1);
            out.extend_from_slice(v);
            out
        }
    }
}

pub(crate) fn decode_value(bytes: &[u8]) -> anyhow::Result<Option<OwnedValue>> {
    match bytes.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, v)) => Ok(Some(v.to_vec())),
        _ => anyhow::bail!("tree value entry is malformed"),
    }
}

fn tree_error(height: u64, e: anyhow::Error) -> StorageError {
    StorageError::Tree {
        height,
        detail: format!("{e:#}"),
    }
}

/// What applying one block's writes adds to the tree.
#[derive(Debug)]
pub(crate) struct TreeUpdate {
    pub(crate) root: Hash,
    version: Version,
    batch: jmt::storage::TreeUpdateBatch,
}

impl TreeUpdate {
    pub(crate) fn new_nodes(&self) -> usize {
        self.batch.node_batch.nodes().len()
    }

    /// About how many bytes [`TreeUpdate::write_nodes_to`] adds (a full internal node takes
    /// about 640).
    pub(crate) fn nodes_size_hint(&self) -> usize {
        self.batch.node_batch.nodes().len() * 640
    }

    /// About how many bytes [`TreeUpdate::write_history_to`] adds.
    pub(crate) fn history_size_hint(&self) -> usize {
        let values: usize = self
            .batch
            .node_batch
            .values()
            .values()
            .map(|v| 96 + v.as_ref().map_or(0, Vec::len))
            .sum();
        values + self.batch.stale_node_index_batch.len() * 64
    }

    /// Puts the new nodes in `cache`, once their batch is written.
    pub(crate) fn cache_nodes(&self, cache: &NodeCache) {
        for (key, node) in self.batch.node_batch.nodes() {
            if worth_caching(key) {
                cache.put(key, node.clone());
            }
        }
    }

    /// Adds the new nodes to `batch`. A block's commit writes them without the write-ahead
    /// log (see [`recompute_version`]); they are most of its bytes.
    pub(crate) fn write_nodes_to(&self, db: &DB, batch: &mut WriteBatch) {
        let nodes = super::cf(db, CF_TREE_NODES);
        for (key, node) in self.batch.node_batch.nodes() {
            batch.put_cf(nodes, encode_node_key(key), encode_node(node));
        }
    }

    /// Adds the value history, the list of the keys each version changed and the stale-node
    /// index to `batch`: everything but the nodes, and all a lost version's nodes can be
    /// computed again from.
    pub(crate) fn write_history_to(&self, db: &DB, batch: &mut WriteBatch) {
        let values = super::cf(db, CF_TREE_VALUES);
        let mut changed: std::collections::BTreeMap<Version, Vec<[u8; 32]>> = Default::default();
        for ((version, kh), value) in self.batch.node_batch.values() {
            batch.put_cf(values, value_key(*version, kh), encode_value(value));
            changed.entry(*version).or_default().push(kh.0);
        }
        // Written for every version, empty when its block changed nothing, so a missing list
        // means the version is from before lists were kept (when nodes were always logged).
        let changes = super::cf(db, CF_TREE_CHANGES);
        changed.entry(self.version).or_default();
        for (version, hashes) in changed {
            batch.put_cf(changes, version.to_be_bytes(), hashes.concat());
        }
        // The nodes this version made stale, under one key for the version (a key per node
        // was a third of a block's RocksDB writes).
        let mut stale_by_version: std::collections::BTreeMap<Version, Vec<&NodeKey>> =
            Default::default();
        for s in &self.batch.stale_node_index_batch {
            stale_by_version
                .entry(s.stale_since_version)
                .or_default()
                .push(&s.node_key);
        }
        let stale = super::cf(db, CF_TREE_STALE);
        for (version, keys) in stale_by_version {
            let bytes = bincode::serialize(&keys).expect("node keys always encode");
            batch.put_cf(stale, version.to_be_bytes(), bytes);
        }
    }
}

/// The tree after applying `writes` as version `version` on top of `version - 1` (or on the
/// empty tree for version 0), computed in memory.
pub(crate) fn apply(
    source: &impl TreeReader,
    writes: &WriteSet,
    version: Version,
) -> Result<TreeUpdate, StorageError> {
    apply_hashed(source, hashed(writes).collect(), version)
}

/// The writes keyed as the tree keys them.
fn hashed(writes: &WriteSet) -> impl Iterator<Item = (KeyHash, Option<OwnedValue>)> + '_ {
    writes
        .iter()
        .map(|(k, v)| (KeyHash(key_hash(k).0), v.clone()))
}

/// [`apply`] for writes already keyed by their tree key hashes.
fn apply_hashed(
    source: &impl TreeReader,
    set: Vec<(KeyHash, Option<OwnedValue>)>,
    version: Version,
) -> Result<TreeUpdate, StorageError> {
    let tree = jmt::JellyfishMerkleTree::<_, Sha256>::new(source);
    // Without deletions (most blocks) the whole set goes in one top-down pass, each node
    // touched once; `jmt` walks from the root per key otherwise. Both give the same tree.
    let (root, batch) = if !set.is_empty() && set.iter().all(|(_, v)| v.is_some()) {
        let set = set
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
        tree.batch_put_value_sets(vec![set], None, version)
            .map(|(roots, batch)| (roots[0], batch))
    } else {
        tree.put_value_set(set, version)
    }
    .map_err(|e| tree_error(version, e))?;
    Ok(TreeUpdate {
        root: Hash(root.0),
        version,
        batch,
    })
}

/// The nodes of `version`, computed again from the keys it changed and their values, on a
/// source that holds every version before it: what a restart does for versions whose nodes,
/// written without the write-ahead log, a crash lost. `None` for a version from before the
/// lists of changed keys were kept.
pub(crate) fn recompute_version(
    source: &TreeSource<'_>,
    version: Version,
) -> Result<Option<TreeUpdate>, StorageError> {
    let changes = super::cf(source.db, CF_TREE_CHANGES);
    let Some(hashes) = source
        .snapshot
        .get_cf(changes, version.to_be_bytes())
        .map_err(|e| super::db_error(source.db, e))?
    else {
        return Ok(None);
    };
    if hashes.len() % 32 != 0 {
        return Err(StorageError::corrupt(
            CF_TREE_CHANGES,
            "changed key list",
            format!("{} bytes is not a whole number of hashes", hashes.len()),
        ));
    }
    let values = super::cf(source.db, CF_TREE_VALUES);
    let mut set = Vec::with_capacity(hashes.len() / 32);
    for chunk in hashes.chunks_exact(32) {
        let kh = KeyHash(chunk.try_into().expect("32-byte chunk"));
        let bytes = source
            .snapshot
            .get_cf(values, value_key(version, &kh))
            .map_err(|e| super::db_error(source.db, e))?
            .ok_or_else(|| {
                StorageError::corrupt(
                    CF_TREE_VALUES,
                    "changed value",
                    format!("version {version} lists a key with no value at that version"),
                )
            })?;
        let value = decode_value(&bytes)
            .map_err(|e| StorageError::corrupt(CF_TREE_VALUES, "changed value", e))?;
        set.push((kh, value));
    }
    apply_hashed(source, set, version).map(Some)
}

/// The root by the key-by-key path only, to check the batch path against.
#[cfg(test)]
pub(crate) fn apply_key_by_key(
    source: &impl TreeReader,
    writes: &WriteSet,
    version: Version,
) -> Result<Hash, StorageError> {
    let tree = jmt::JellyfishMerkleTree::<_, Sha256>::new(source);
    let (root, _) = tree
        .put_value_set(hashed(writes), version)
        .map_err(|e| tree_error(version, e))?;
    Ok(Hash(root.0))
}

pub(crate) fn root(source: &impl TreeReader, version: Version) -> Result<Hash, StorageError> {
    let tree = jmt::JellyfishMerkleTree::<_, Sha256>::new(source);
    tree.get_root_hash(version)
        .map(|r| Hash(r.0))
        .map_err(|e| tree_error(version, e))
}

pub(crate) fn prove(
    source: &impl TreeReader,
    key: &[u8],
    version: Version,
) -> Result<StateProof, StorageError> {
    let tree = jmt::JellyfishMerkleTree::<_, Sha256>::new(source);
    let (value, proof) = tree
        .get_with_proof(KeyHash(key_hash(key).0), version)
        .map_err(|e| tree_error(version, e))?;
    proof::from_jmt(version, value, &proof).map_err(|detail| StorageError::Tree {
        height: version,
        detail: format!("cannot convert the tree's proof: {detail}"),
    })
}

/// An empty tree, to compute a genesis state root without a database.
#[derive(Debug)]
pub(crate) struct EmptyTree;

impl TreeReader for EmptyTree {
    fn get_node_option(&self, _: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(None)
    }
    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(None)
    }
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
    }
}

/// Deletes tree nodes only versions below `keep_from` need: nodes that became stale at or
/// before `keep_from`, and the roots of older versions. Returns how many nodes went.
pub(crate) fn prune(
    db: &DB,
    snapshot: &Snapshot<'_>,
    old_oldest: Version,
    keep_from: Version,
    batch: &mut WriteBatch,
) -> Result<u64, StorageError> {
    let stale = super::cf(db, CF_TREE_STALE);
    let nodes = super::cf(db, CF_TREE_NODES);
    let mut count = 0;
    for item in snapshot.iterator_cf(stale, IteratorMode::Start) {
        let (k, v) = item.map_err(|e| super::db_error(db, e))?;
        let Some((since, rest)) = k.split_first_chunk::<8>() else {
            return Err(StorageError::corrupt(
                CF_TREE_STALE,
                "key",
                "shorter than 8 bytes",
            ));
        };
        if u64::from_be_bytes(*since) > keep_from {
            break;
        }
        if rest.is_empty() {
            // A version's list of stale nodes.
            let keys: Vec<NodeKey> = bincode::deserialize(&v)
                .map_err(|e| StorageError::corrupt(CF_TREE_STALE, "stale node list", e))?;
            for key in &keys {
                batch.delete_cf(nodes, encode_node_key(key));
            }
            count += keys.len() as u64;
        } else {
            // One stale node per key, as databases written before the lists have them.
            decode_node_key(rest)?;
            batch.delete_cf(nodes, rest);
            count += 1;
        }
        batch.delete_cf(stale, &k);
    }
    // A version whose block changed nothing copies its parent's root under a new key without
    // marking the old one stale; old roots are only reachable by version, so drop them here.
    for version in old_oldest..keep_from {
        batch.delete_cf(nodes, encode_node_key(&root_node_key(version)));
    }
    // Lists of changed keys are read only to compute a kept version again.
    batch.delete_range_cf(
        super::cf(db, CF_TREE_CHANGES),
        0u64.to_be_bytes(),
        keep_from.to_be_bytes(),
    );
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Store;

    /// Our plain proofs and `jmt`'s own verifier agree, for present and absent keys, right
    /// and wrong values.
    #[test]
    fn converted_proofs_agree_with_jmt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writes: WriteSet = (0..300u32)
            .map(|i| {
                (
                    format!("k/{i}").into_bytes(),
                    Some(i.to_le_bytes().to_vec()),
                )
            })
            .collect();
        let header = crate::block::Header {
            chain_id: "c".into(),
            height: 0,
            time_ms: 0,
            parent_hash: Hash::ZERO,
            proposer: caihong_chaincode::PublicKey([0; 32]),
            txs_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            state_root: crate::storage::genesis_state_root(&writes),
            next_validators_hash: Hash::ZERO,
        };
        store.init_genesis(&writes, &header).unwrap();
        let view = store.state_view().unwrap();
        let source = view_source(&view);
        let tree = jmt::JellyfishMerkleTree::<_, Sha256>::new(&source);
        let root = jmt::RootHash(header.state_root.0);
        assert!(source.get_node_option(&root_node_key(0)).unwrap().is_some());
        for i in 0..400u32 {
            let key = format!("k/{i}").into_bytes();
            let kh = KeyHash(key_hash(&key).0);
            let (value, jmt_proof) = tree.get_with_proof(kh, 0).unwrap();
            assert_eq!(value.is_some(), i < 300);
            let ours = proof::from_jmt(0, value.clone(), &jmt_proof).unwrap();
            for claim in [value.clone(), None, Some(b"wrong".to_vec())] {
                let theirs = jmt_proof.verify(root, kh, claim.as_ref()).is_ok();
                let mine = ours
                    .verify(&header.state_root, &key, claim.as_deref())
                    .is_ok();
                assert_eq!(mine, theirs, "key {i}, claim {claim:?}");
                assert_eq!(mine, claim == value, "key {i}, claim {claim:?}");
            }
        }
    }

    /// The one-pass batch insert and `jmt`'s key-by-key insert give the same root, version
    /// after version (new keys, overwrites, and a version with deletions), and the nodes the
    /// batch path stores serve proofs and later updates.
    #[test]
    fn batch_and_key_by_key_updates_agree() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut expected = std::collections::BTreeMap::new();
        for version in 0..6u64 {
            let mut writes = WriteSet::new();
            for i in 0..200u64 {
                // New keys each version, plus overwrites of earlier versions' keys.
                let key = format!("k/{}", (version * 150 + i * 7) % 900).into_bytes();
                writes.insert(key, Some((version * 1000 + i).to_le_bytes().to_vec()));
            }
            if version == 3 {
                for i in 0..20u64 {
                    writes.insert(format!("k/{}", i * 7).into_bytes(), None);
                }
            }
            let view = store.state_view().unwrap();
            let prepared = apply(&view_source(&view), &writes, version).unwrap();
            // Through the store's node cache (filled by the proofs below): the same tree.
            assert_eq!(view.prepare(&writes).unwrap().root(), prepared.root);
            let key_by_key = apply_key_by_key(&view_source(&view), &writes, version).unwrap();
            assert_eq!(prepared.root, key_by_key, "version {version}");
            let mut batch = WriteBatch::default();
            prepared.write_nodes_to(&store.db, &mut batch);
            prepared.write_history_to(&store.db, &mut batch);
            batch.put_cf(
                crate::storage::cf(&store.db, crate::storage::CF_META),
                crate::storage::META_LATEST_HEIGHT,
                version.to_be_bytes(),
            );
            store.db.write(batch).unwrap();
            drop(view);
            // The version computed again from its logged history alone (as after a crash) is
            // the same tree, with deletions too.
            let view = store.state_view().unwrap();
            let recomputed = recompute_version(&view_source(&view), version)
                .unwrap()
                .expect("the version's changed keys are listed");
            assert_eq!(recomputed.root, prepared.root, "version {version}");
            assert_eq!(
                recomputed.batch.node_batch.nodes(),
                prepared.batch.node_batch.nodes()
            );
            drop(view);
            for (k, v) in &writes {
                expected.insert(k.clone(), v.clone());
            }
            let view = store.state_view().unwrap();
            for (k, v) in expected.iter().step_by(37) {
                view.prove(k)
                    .unwrap()
                    .verify(&prepared.root, k, v.as_deref())
                    .unwrap_or_else(|e| panic!("version {version}, key {k:?}: {e}"));
            }
        }
    }

    /// The node key of `nibbles` (each 0 to 15) at `version`, through the key encoding.
    fn node_key(version: Version, nibbles: &[u8]) -> NodeKey {
        let packed: Vec<u8> = nibbles
            .chunks(2)
            .map(|c| c[0] << 4 | c.get(1).copied().unwrap_or(0))
            .collect();
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(nibbles.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&(packed.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&packed);
        decode_node_key(&bytes).unwrap()
    }

    fn leaf(byte: u8) -> Node {
        Node::Leaf(LeafNode::new(
            KeyHash([byte; 32]),
            jmt::ValueHash([byte; 32]),
        ))
    }

    /// Every path of up to four nibbles has a slot of its own; deeper ones have none.
    #[test]
    fn cache_slots_are_one_per_path_near_the_root() {
        let mut seen = vec![false; NODE_CACHE_SLOTS];
        let mut path = vec![];
        fn walk(path: &mut Vec<u8>, seen: &mut [bool]) {
            let slot = cache_slot(&node_key(1, path)).expect("a path near the root");
            assert!(!seen[slot], "slot {slot} twice ({path:?})");
            seen[slot] = true;
            if path.len() < NODE_CACHE_MAX_NIBBLES {
                for n in 0..16 {
                    path.push(n);
                    walk(path, seen);
                    path.pop();
                }
            }
        }
        walk(&mut path, &mut seen);
        assert!(seen.iter().all(|s| *s));
        assert_eq!(cache_slot(&node_key(1, &[15; 5])), None);
    }

    /// A slot answers for its own version only, and a newer node is not pushed out by an
    /// older one read back.
    #[test]
    fn the_cache_keeps_the_newest_node_of_a_path() {
        let cache = NodeCache::default();
        let (old, new) = (node_key(3, &[1, 2]), node_key(5, &[1, 2]));
        assert_eq!(cache.get(&old), None);
        cache.put(&old, leaf(3));
        assert_eq!(cache.get(&old), Some(leaf(3)));
        assert_eq!(cache.get(&new), None);
        cache.put(&new, leaf(5));
        assert_eq!(cache.get(&new), Some(leaf(5)));
        assert_eq!(cache.get(&old), None);
        cache.put(&old, leaf(3));
        assert_eq!(cache.get(&new), Some(leaf(5)));
        // Other paths, and paths too deep to cache, are apart.
        assert_eq!(cache.get(&node_key(5, &[1, 3])), None);
        let deep = node_key(5, &[1, 2, 3, 4, 5]);
        cache.put(&deep, leaf(9));
        assert_eq!(cache.get(&deep), None);
    }

    fn view_source<'a>(view: &'a crate::storage::StateView<'a>) -> TreeSource<'a> {
        TreeSource {
            db: view.db,
            snapshot: &view.snapshot,
            cache: None,
            pending: None,
        }
    }

    /// Every node of a real update survives the compact encoding, is smaller in it, and a node
    /// in the older fixed-width encoding still decodes.
    #[test]
    fn nodes_decode_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writes: WriteSet = (0..2_000u32)
            .map(|i| (format!("k/{i}").into_bytes(), Some(vec![7; 40])))
            .collect();
        let view = store.state_view().unwrap();
        let update = apply(&view_source(&view), &writes, 0).unwrap();
        // Bytes of internal nodes, compact and fixed-width.
        let (mut compact, mut fixed) = (0, 0);
        for node in update.batch.node_batch.nodes().values() {
            let new = encode_node(node);
            let old = bincode::serialize(node).unwrap();
            assert_eq!(&decode_node(&new).unwrap(), node);
            assert_eq!(&decode_node(&old).unwrap(), node);
            assert!(new.len() <= old.len());
            if matches!(node, Node::Internal(_)) {
                (compact, fixed) = (compact + new.len(), fixed + old.len());
            }
        }
        assert!(compact * 5 < fixed * 4, "{compact} bytes against {fixed}");
        assert!(decode_node(&[NODE_FORMAT_VARINT, 9]).is_err());
    }

    #[test]
    fn node_keys_sort_by_version() {
        let a = encode_node_key(&root_node_key(1));
        let b = encode_node_key(&root_node_key(256));
        assert_eq!(a[..8], 1u64.to_be_bytes());
        assert_eq!(root_node_key(256).version(), 256);
        assert!(a < b);
    }
}
