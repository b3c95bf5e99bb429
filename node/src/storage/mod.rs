//! Storage: the node's RocksDB database. Blocks, commit certificates, state, receipts, indexes,
//! the state tree, the consensus safety state and evidence, each in its own column family.
//!
//! # Using it
//! ```text
//! let store = Store::open(home.join("data"))?;
//! store.init_genesis(&genesis.initial_state()?, &genesis_header)?; // idempotent
//! // proposer / validator, for height h = latest + 1:
//! let view = store.state_view()?;                     // snapshot of height h - 1
//! let (writes, receipts) = execute_block(&view, &ctx, &txs);
//! let state_root = view.state_root_after(&writes)?;   // goes into / is checked against the header
//! // on Output::Decide:
//! store.commit_block(&block, &certificate, &writes, &receipts)?;
//! ```
//!
//! # Design
//! - **One logged batch per block.** [`Store::commit_block`] puts the block, its certificate,
//!   the state writes, the tree's value history, receipts, the transaction index and the new
//!   latest height in one RocksDB `WriteBatch` written with `sync`: RocksDB applies a batch
//!   atomically through its write-ahead log, so after a crash the store is at the old height or
//!   the new one. The new tree nodes, most of the bytes, go just before in a batch without the
//!   log; a crash may lose the newest versions' nodes, and [`Store::open`] computes them again
//!   from the logged history. Every check (height, parent, certificate, roots) runs before
//!   anything is written; a refused block writes nothing.
//! - **State root.** A Jellyfish Merkle tree (`jmt`) over `SHA-256(key)`, version = height
//!   (genesis is version 0). The tree is recomputed from the write set inside `commit_block` and
//!   must equal the header's `state_root`, so a store never holds a header its state disagrees
//!   with. See [`proof`] for the proof format an outside verifier checks.
//! - **Retention.** Every version is kept until [`Store::prune_state_versions`] is called;
//!   pruning deletes tree nodes only older versions need, after which proofs below the cut fail
//!   with [`StorageError::StateVersionPruned`]. Blocks, certificates, receipts (and so every
//!   header's state root) are never pruned. The value history the tree reads (`tree_values`)
//!   is kept in full: it is the audit trail of every state write.
//! - **Encodings.** Heights are 8-byte big-endian keys, so tables iterate in height order.
//!   Values are bincode with fixed-width integers (like `caihong_chaincode::codec`, but without
//!   its 4 MiB limit: this is the node's own data, and a block may be larger).
//!   Certificates are stored as the typed [`CommitCertificate`].

pub mod error;
pub mod names;
pub mod proof;
pub mod snapshot;
mod tree;
mod view;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use bincode::Options as _;
use caihong_chaincode::{
    Hash, Overlay, PublicKey, Receipt, SignedTransaction, StateReader, WriteSet,
};
use caihong_consensus::{CommitCertificate, Evidence, SafetyState};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    FlushOptions, IteratorMode, Options, WriteBatch, WriteOptions,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::block::{Block, BlockError, Header};

pub use error::{ProofError, StorageError};
pub use proof::{ProofLeaf, StateProof};
pub use view::{PreparedState, StateView};

/// How old a bottom-level file must be before RocksDB rewrites it only to drop what a released
/// snapshot protected (see [`Store::open`]): a day.
const BOTTOMMOST_COMPACTION_DELAY_SECS: &str = "86400";

/// RocksDB's block cache, shared by every column family.
const BLOCK_CACHE_BYTES: usize = 128 << 20;

/// The tree nodes' memtable (RocksDB's default is 64 MiB). Under load they are most of what a
/// node writes, and flushing 64 MiB took about a second of a core; the members of a local
/// alliance fill theirs together and flushed together, and the heights during those flushes
/// were the slowest of a run. A quarter of that flushes four times as often, each a quarter
/// as long, and also bounds what a crash leaves to compute again.
const TREE_NODES_WRITE_BUFFER_BYTES: usize = 16 << 20;

/// Every this many heights the tree nodes' memtable is flushed, so that a crash leaves at most
/// about this many versions for the next open to compute again (see `Store::recover_tree`).
const TREE_NODES_FLUSH_INTERVAL: u64 = 512;

/// Block by height.
pub const CF_BLOCKS: &str = "blocks";
/// Block hash to height.
pub const CF_BLOCK_HASHES: &str = "block_hashes";
/// Commit certificate by height.
pub const CF_CERTIFICATES: &str = "certificates";
/// Current state: key to value.
pub const CF_STATE: &str = "state";
/// Transaction hash to (height, index, receipt): also the index of where a transaction is.
pub const CF_RECEIPTS: &str = "receipts";
/// State tree nodes by (version, nibble path).
pub const CF_TREE_NODES: &str = "tree_nodes";
/// State tree value history by (key hash, version).
pub const CF_TREE_VALUES: &str = "tree_values";
/// Tree nodes by the version that made them stale, for pruning.
pub const CF_TREE_STALE: &str = "tree_stale";
/// The key hashes each tree version changed, by version: what a version's nodes are computed
/// again from when a crash lost them (they are written without the write-ahead log).
pub const CF_TREE_CHANGES: &str = "tree_changes";
/// Key hash to key, for every key ever written (since `preimages_from`): what a state
/// snapshot serves in the tree's leaf order.
pub const CF_TREE_KEYS: &str = "tree_keys";
/// The consensus safety state.
pub const CF_SAFETY: &str = "safety";
/// Evidence of equivocation by (height, round, hash).
pub const CF_EVIDENCE: &str = "evidence";
/// Latest height and hash, genesis hash, chain id, oldest kept tree version.
pub const CF_META: &str = "meta";

const COLUMN_FAMILIES: [&str; 14] = [
    CF_BLOCKS,
    CF_BLOCK_HASHES,
    CF_CERTIFICATES,
    CF_STATE,
    CF_RECEIPTS,
    CF_TREE_NODES,
    CF_TREE_VALUES,
    CF_TREE_STALE,
    CF_TREE_CHANGES,
    CF_TREE_KEYS,
    CF_SAFETY,
    CF_EVIDENCE,
    CF_META,
    names::CF_SUBJECT_NAMES,
];

/// Column families older databases have and this version no longer uses: opened (RocksDB
/// opens a database only with all of its families) and dropped. `tx_index` held (height,
/// index) by transaction hash, which the receipt under the same key also holds.
const RETIRED_COLUMN_FAMILIES: [&str; 1] = ["tx_index"];

/// The column families whose point reads often miss, given a memtable bloom filter.
const MEMTABLE_FILTERED: [&str; 5] = [CF_BLOCK_HASHES, CF_STATE, CF_RECEIPTS, CF_EVIDENCE, CF_META];

const META_LATEST_HEIGHT: &[u8] = b"latest_height";
const META_LATEST_HASH: &[u8] = b"latest_hash";
const META_GENESIS_HASH: &[u8] = b"genesis_hash";
const META_CHAIN_ID: &[u8] = b"chain_id";
const META_OLDEST_TREE_VERSION: &[u8] = b"oldest_tree_version";
/// The first height from which every key the state holds is in `tree_keys`: a database from
/// before the index has it filled from its state when opened, so its snapshots start there.
const META_PREIMAGES_FROM: &[u8] = b"preimages_from";
/// `held_body/{height}{hash}` → a block body the node's safety state refers to (its lock or
/// valid value), kept until the height is committed.
const META_HELD_BODY_PREFIX: &[u8] = b"held_body/";
/// The first block a store holds after genesis: above 1 for a store started from a state
/// snapshot.
const META_FIRST_BLOCK: &[u8] = b"first_block";
/// `validators/{height}` → the validator set (member node keys) from that height on, written
/// at genesis and whenever a block changes the members.
const META_VALIDATORS_PREFIX: &[u8] = b"validators/";

/// A generous guess of a block's logged write batch size: per transaction its bytes in the
/// block, its receipt and index entries; the state writes; the tree's value history (its
/// nodes go in a batch of their own).
fn batch_size_estimate(block: &Block, writes: &WriteSet, update: &tree::TreeUpdate) -> usize {
    let write_bytes: usize = writes
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 32)
        .sum();
    4096 + block.txs.len() * 1024 + write_bytes + update.history_size_hint()
}

fn validators_key(from_height: u64) -> Vec<u8> {
    [META_VALIDATORS_PREFIX, &from_height.to_be_bytes()].concat()
}

/// The node keys of the members in `state` with `writes` applied: after a block, the validator
/// set of the next height. Only member keys are read from `writes`.
pub fn member_node_keys(state: &dyn StateReader, writes: &WriteSet) -> Vec<PublicKey> {
    let prefix = caihong_chaincode::keys::MEMBER_PREFIX;
    let mut after = Overlay::new(state);
    after.apply(
        writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    caihong_chaincode::members::members(&after)
        .into_iter()
        .map(|m| m.node_key)
        .collect()
}
const SAFETY_KEY: &[u8] = b"safety_state";

/// Where a committed transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    pub height: u64,
    /// Position in the block's transaction list.
    pub index: u32,
}

/// A receipt with where its transaction was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReceipt {
    pub location: TxLocation,
    pub receipt: Receipt,
}

/// Encodes exactly as [`StoredReceipt`] (serde writes a reference as its value), without
/// cloning the receipt.
#[derive(Serialize)]
struct StoredReceiptRef<'a> {
    location: TxLocation,
    receipt: &'a Receipt,
}

/// A committed transaction with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTx {
    pub location: TxLocation,
    pub tx: SignedTransaction,
}

/// What [`Store::init_genesis`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenesisInit {
    /// The store was empty; genesis is now height 0.
    Created,
    /// The same genesis was already there; nothing was written.
    AlreadyPresent,
}

/// What [`Store::prune_state_versions`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    /// Oldest height whose state proofs still work.
    pub oldest_kept: u64,
    /// Tree nodes deleted by this call.
    pub nodes_deleted: u64,
}

fn value_options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
}

fn enc<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    value_options()
        .serialize(value)
        .expect("in-memory values always encode")
}

fn dec<T: DeserializeOwned>(
    table: &'static str,
    what: impl std::fmt::Display,
    bytes: &[u8],
) -> Result<T, StorageError> {
    value_options()
        .deserialize(bytes)
        .map_err(|e| StorageError::corrupt(table, what.to_string(), e))
}

fn hash_from(table: &'static str, what: &str, bytes: &[u8]) -> Result<Hash, StorageError> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
        StorageError::corrupt(table, what, format!("{} bytes, not 32", bytes.len()))
    })?;
    Ok(Hash(arr))
}

fn u64_from(table: &'static str, what: &str, bytes: &[u8]) -> Result<u64, StorageError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError::corrupt(table, what, format!("{} bytes, not 8", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name)
        .unwrap_or_else(|| panic!("column family {name} is created when the store opens"))
}

pub(crate) fn db_error(db: &DB, source: rocksdb::Error) -> StorageError {
    StorageError::Db {
        path: db.path().to_path_buf(),
        source,
    }
}

/// The state root of a genesis state, without a database (e.g. to write a genesis header).
pub fn genesis_state_root(writes: &WriteSet) -> Hash {
    tree::apply(&tree::EmptyTree, writes, 0)
        .expect("an empty tree cannot miss nodes")
        .root
}

/// The node's database. Share it behind an `Arc`; every method takes `&self`. Commits are
/// serialised by an internal lock; reads never wait for them.
pub struct Store {
    pub(crate) db: DB,
    commit_lock: Mutex<()>,
    /// The latest committed header, kept in memory: building and admitting against the tip
    /// must not decode the whole latest block each time. Set after each synced commit.
    latest_header: RwLock<Option<Header>>,
    node_cache: tree::NodeCache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, with every column family. Long because each
    /// column family's tuning is set here, side by side, where it is compared and changed.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StorageError> {
        let path = path.as_ref();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        // Point reads dominate (state keys, tree nodes, "is this transaction known"): bloom
        // filters answer most misses without reading a block, and one shared cache keeps hot
        // tree nodes and state.
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        let cfs = COLUMN_FAMILIES.iter().map(|name| {
            let mut cf_opts = Options::default();
            // Tree nodes are mostly SHA-256 hashes: LZ4 saved a tenth of their bytes (53.9
            // of 61.7 MB in a flush) for the time of compressing every flush and compaction
            // and decompressing every read.
            cf_opts.set_compression_type(if *name == CF_TREE_NODES {
                DBCompressionType::None
            } else {
                DBCompressionType::Lz4
            });
            cf_opts.set_block_based_table_factory(&table);
            if *name == CF_TREE_NODES {
                cf_opts.set_write_buffer_size(TREE_NODES_WRITE_BUFFER_BYTES);
            }
            // The memtable holds the newest few blocks, where most point reads land; without
            // a bloom filter of its own every miss walks its skip list. Only where point reads
            // miss: tree nodes are read only when they exist and tree values by seeking, so
            // there a filter would cost every insert and save no read.
            if MEMTABLE_FILTERED.contains(name) {
                cf_opts.set_memtable_whole_key_filtering(true);
                cf_opts.set_memtable_prefix_bloom_ratio(0.1);
            }
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        // A missing database lists nothing (and is created below).
        let existing = DB::list_cf(&opts, path).unwrap_or_default();
        let retired: Vec<&str> = RETIRED_COLUMN_FAMILIES
            .into_iter()
            .filter(|name| existing.iter().any(|e| e == name))
            .collect();
        let cfs = cfs.chain(
            retired
                .iter()
                .map(|name| ColumnFamilyDescriptor::new(*name, Options::default())),
        );
        let db_error = |source| StorageError::Db {
            path: PathBuf::from(path),
            source,
        };
        let mut db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            // RocksDB names the held lock file: "While lock file: …/LOCK: Resource temporarily
            // unavailable" (another process), "lock hold by current process … /LOCK: No locks
            // available" (this one).
            if e.as_ref().contains("/LOCK: ") {
                StorageError::InUse(PathBuf::from(path))
            } else {
                db_error(e)
            }
        })?;
        for name in retired {
            db.drop_cf(name).map_err(db_error)?;
        }
        // A file flushed while a state view's snapshot was open keeps its sequence numbers;
        // once at the bottom level RocksDB rewrites it as soon as the snapshot is gone
        // ("BottommostFiles" compactions), to zero them. Views are opened every block, so every
        // flushed file was rewritten once more for nothing: tree nodes are never overwritten,
        // and overwritten state is still dropped by the ordinary compactions. The `rocksdb`
        // crate has no setter for the delay, so it is set by name.
        for name in COLUMN_FAMILIES {
            db.set_options_cf(
                cf(&db, name),
                &[(
                    "bottommost_file_compaction_delay",
                    BOTTOMMOST_COMPACTION_DELAY_SECS,
                )],
            )
            .map_err(db_error)?;
        }
        let store = Store {
            db,
            commit_lock: Mutex::new(()),
            latest_header: RwLock::new(None),
            node_cache: tree::NodeCache::default(),
        };
        let recomputed = store.recover_tree()?;
        if recomputed > 0 {
            tracing::info!(
                versions = recomputed,
                "computed again the state tree nodes of the newest versions, lost in a crash"
            );
        }
        store.index_keys()?;
        if store.get(CF_META, names::META_NAMES_INDEXED)?.is_none() {
            let count = names::build(&store.db, CF_META, CF_STATE)?;
            tracing::info!(subjects = count, "indexed the subjects' names");
        }
        Ok(store)
    }

    /// Fills `tree_keys` from the state of a database written before the index, once.
    fn index_keys(&self) -> Result<(), StorageError> {
        if self.preimages_from()?.is_some() {
            return Ok(());
        }
        let Some(latest) = self.latest_height()? else {
            return Ok(()); // genesis sets it
        };
        let (state, keys) = (cf(&self.db, CF_STATE), cf(&self.db, CF_TREE_KEYS));
        let mut batch = WriteBatch::default();
        for item in self.db.iterator_cf(state, IteratorMode::Start) {
            let (k, _) = item.map_err(|e| db_error(&self.db, e))?;
            batch.put_cf(keys, proof::key_hash(&k).0, &k);
        }
        batch.put_cf(
            cf(&self.db, CF_META),
            META_PREIMAGES_FROM,
            latest.to_be_bytes(),
        );
        self.write_synced(batch)
    }

    /// The first block this store holds after genesis: 1, or for a store started from a state
    /// snapshot, the snapshot's height (blocks below it are not here).
    pub fn first_block(&self) -> Result<u64, StorageError> {
        Ok(self
            .get(CF_META, META_FIRST_BLOCK)?
            .map(|b| u64_from(CF_META, "first block", &b))
            .transpose()?
            .unwrap_or(1))
    }

    /// Makes a restored state snapshot's height the latest (see [`snapshot::SnapshotRestore`]).
    fn install_restored(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
    ) -> Result<(), StorageError> {
        let _guard = self.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let height = block.header.height;
        let hash = block.hash();
        let refused = |source: BlockError| StorageError::Block { height, source };
        block
            .header
            .check_certificate(certificate)
            .map_err(refused)?;
        block.check_txs().map_err(refused)?;
        // Nodes the restore wrote without the log reach the disk before the height is the
        // latest: a crash after this batch must not find them missing.
        self.db
            .flush_cf(cf(&self.db, CF_TREE_NODES))
            .map_err(|e| db_error(&self.db, e))?;
        let view = self.state_view()?;
        let validators = member_node_keys(&view, &WriteSet::new());
        drop(view);
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, CF_BLOCKS), height.to_be_bytes(), enc(block));
        batch.put_cf(cf(&self.db, CF_BLOCK_HASHES), hash.0, height.to_be_bytes());
        batch.put_cf(
            cf(&self.db, CF_CERTIFICATES),
            height.to_be_bytes(),
            enc(certificate),
        );
        let meta = cf(&self.db, CF_META);
        batch.put_cf(meta, META_LATEST_HEIGHT, height.to_be_bytes());
        batch.put_cf(meta, META_LATEST_HASH, hash.0);
        batch.put_cf(meta, META_OLDEST_TREE_VERSION, height.to_be_bytes());
        batch.put_cf(meta, META_PREIMAGES_FROM, height.to_be_bytes());
        batch.put_cf(meta, META_FIRST_BLOCK, height.to_be_bytes());
        batch.put_cf(meta, validators_key(height + 1), enc(&validators));
        self.write_synced(batch)?;
        self.set_latest_header(&block.header);
        Ok(())
    }

    /// Keeps the body of a block this node locked on or may re-propose, synced: after a
    /// crash consensus may decide or re-propose it, and when every member crashed at once no
    /// peer holds it either.
    pub fn hold_body(&self, block: &Block) -> Result<(), StorageError> {
        let key = [
            META_HELD_BODY_PREFIX,
            &block.header.height.to_be_bytes(),
            &block.hash().0,
        ]
        .concat();
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, CF_META), key, enc(block));
        self.write_synced(batch)
    }

    /// The bodies kept by [`Store::hold_body`] for `height`.
    pub fn held_bodies(&self, height: u64) -> Result<Vec<Block>, StorageError> {
        let prefix = [META_HELD_BODY_PREFIX, &height.to_be_bytes()].concat();
        let meta = cf(&self.db, CF_META);
        let mut out = Vec::new();
        for item in self.db.prefix_iterator_cf(meta, &prefix) {
            let (k, v) = item.map_err(|e| db_error(&self.db, e))?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(dec(CF_META, "held body", &v)?);
        }
        Ok(out)
    }

    /// Drops the kept bodies of heights up to `height` (committed).
    pub fn release_bodies_through(&self, height: u64) -> Result<(), StorageError> {
        let meta = cf(&self.db, CF_META);
        let mut batch = WriteBatch::default();
        for item in self.db.prefix_iterator_cf(meta, META_HELD_BODY_PREFIX) {
            let (k, _) = item.map_err(|e| db_error(&self.db, e))?;
            let Some(rest) = k.strip_prefix(META_HELD_BODY_PREFIX) else {
                break;
            };
            if u64_from(CF_META, "held body height", &rest[..8])? > height {
                break;
            }
            batch.delete_cf(meta, &k);
        }
        self.db.write(batch).map_err(|e| db_error(&self.db, e))
    }

    /// Directory of the database.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db
            .get_cf(cf(&self.db, table), key)
            .map_err(|e| db_error(&self.db, e))
    }

    pub(crate) fn read_latest_height(
        db: &DB,
        get: impl FnOnce(&ColumnFamily, &[u8]) -> Result<Option<Vec<u8>>, rocksdb::Error>,
    ) -> Result<Option<u64>, StorageError> {
        get(cf(db, CF_META), META_LATEST_HEIGHT)
            .map_err(|e| db_error(db, e))?
            .map(|b| u64_from(CF_META, "latest height", &b))
            .transpose()
    }

    /// A consistent view of the latest committed state, for executing a block and computing
    /// its state root. It stays at its height while later blocks commit.
    pub fn state_view(&self) -> Result<StateView<'_>, StorageError> {
        StateView::new(self)
    }

    // ---- genesis and meta ----

    /// Writes genesis as height 0: its state (`Genesis::initial_state`) and its header, whose
    /// `state_root` must be [`genesis_state_root`] of the writes. Running it again with the same
    /// header does nothing; with another genesis it fails with [`StorageError::GenesisMismatch`].
    pub fn init_genesis(
        &self,
        writes: &WriteSet,
        header: &Header,
    ) -> Result<GenesisInit, StorageError> {
        let _guard = self.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let given = header.hash();
        if let Some(stored) = self.genesis_hash()? {
            if stored == given {
                return Ok(GenesisInit::AlreadyPresent);
            }
            return Err(StorageError::GenesisMismatch {
                stored,
                stored_chain_id: self.chain_id()?.unwrap_or_default(),
                given,
                given_chain_id: header.chain_id.clone(),
            });
        }
        if header.height != 0 {
            return Err(StorageError::InvalidGenesis(format!(
                "the genesis header has height {}, not 0",
                header.height
            )));
        }
        if header.chain_id.is_empty() {
            return Err(StorageError::InvalidGenesis("the chain id is empty".into()));
        }
        let view = self.state_view()?;
        let update = view.tree_update(writes, 0)?;
        if update.root != header.state_root {
            return Err(StorageError::StateRootMismatch {
                height: 0,
                computed: update.root,
                header: header.state_root,
            });
        }
        let block = Block {
            header: header.clone(),
            txs: vec![],
        };
        let mut batch = WriteBatch::default();
        self.put_block(&mut batch, &view, &block, &given, writes, &update);
        update.write_nodes_to(&self.db, &mut batch);
        let meta = cf(&self.db, CF_META);
        batch.put_cf(meta, META_GENESIS_HASH, given.0);
        batch.put_cf(meta, META_CHAIN_ID, header.chain_id.as_bytes());
        batch.put_cf(meta, META_PREIMAGES_FROM, 0u64.to_be_bytes());
        self.write_synced(batch)?;
        self.set_latest_header(header);
        Ok(GenesisInit::Created)
    }

    fn meta_hash(&self, key: &[u8], what: &str) -> Result<Option<Hash>, StorageError> {
        self.get(CF_META, key)?
            .map(|b| hash_from(CF_META, what, &b))
            .transpose()
    }

    /// Hash of the genesis header, if genesis was written.
    pub fn genesis_hash(&self) -> Result<Option<Hash>, StorageError> {
        self.meta_hash(META_GENESIS_HASH, "genesis hash")
    }

    /// Chain id from genesis.
    pub fn chain_id(&self) -> Result<Option<String>, StorageError> {
        self.get(CF_META, META_CHAIN_ID)?
            .map(|b| {
                String::from_utf8(b).map_err(|e| StorageError::corrupt(CF_META, "chain id", e))
            })
            .transpose()
    }

    /// The latest committed height; `None` before genesis (genesis is height 0).
    pub fn latest_height(&self) -> Result<Option<u64>, StorageError> {
        Self::read_latest_height(&self.db, |cf, k| self.db.get_cf(cf, k))
    }

    /// The latest committed header (`None` before genesis), from memory after the first read.
    pub fn latest_header(&self) -> Result<Option<Header>, StorageError> {
        if let Some(header) = self
            .latest_header
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(Some(header));
        }
        let _guard = self.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let header = match self.latest_height()? {
            Some(h) => self.block(h)?.map(|b| b.header),
            None => None,
        };
        *self
            .latest_header
            .write()
            .unwrap_or_else(|p| p.into_inner()) = header.clone();
        Ok(header)
    }

    fn set_latest_header(&self, header: &Header) {
        *self
            .latest_header
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(header.clone());
    }

    /// Hash of the latest committed block.
    pub fn latest_hash(&self) -> Result<Option<Hash>, StorageError> {
        self.meta_hash(META_LATEST_HASH, "latest hash")
    }

    /// Oldest height whose state tree is kept (0 unless pruned).
    pub fn oldest_state_version(&self) -> Result<u64, StorageError> {
        self.get(CF_META, META_OLDEST_TREE_VERSION)?
            .map_or(Ok(0), |b| u64_from(CF_META, "oldest tree version", &b))
    }

    // ---- blocks, certificates, receipts, transactions ----

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        self.get(CF_BLOCKS, &height.to_be_bytes())?
            .map(|b| dec(CF_BLOCKS, format_args!("block {height}"), &b))
            .transpose()
    }

    /// Height of the block with this header hash.
    pub fn height_of(&self, hash: &Hash) -> Result<Option<u64>, StorageError> {
        self.get(CF_BLOCK_HASHES, &hash.0)?
            .map(|b| u64_from(CF_BLOCK_HASHES, "height", &b))
            .transpose()
    }

    /// The block with this header hash.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StorageError> {
        match self.height_of(hash)? {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }

    /// A block's header and how many transactions it holds, without decoding them: the
    /// console's chart reads an hour of blocks on every view.
    pub fn block_summary(&self, height: u64) -> Result<Option<(Header, u64)>, StorageError> {
        let Some(bytes) = self.get(CF_BLOCKS, &height.to_be_bytes())? else {
            return Ok(None);
        };
        let what = || format!("block {height}");
        let header: Header = value_options()
            .allow_trailing_bytes()
            .deserialize(&bytes)
            .map_err(|e| StorageError::corrupt(CF_BLOCKS, what(), e))?;
        // `Block` is the header then the transactions, a u64 count first (fixed-width).
        let at = value_options()
            .serialized_size(&header)
            .map_err(|e| StorageError::corrupt(CF_BLOCKS, what(), e))? as usize;
        let count = bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| StorageError::corrupt(CF_BLOCKS, what(), "no transaction count"))?;
        Ok(Some((header, count)))
    }

    /// The commit certificate of `height` (none for genesis).
    pub fn commit_certificate(
        &self,
        height: u64,
    ) -> Result<Option<CommitCertificate>, StorageError> {
        self.get(CF_CERTIFICATES, &height.to_be_bytes())?
            .map(|b| dec(CF_CERTIFICATES, format_args!("certificate {height}"), &b))
            .transpose()
    }

    /// Where a committed transaction is.
    pub fn tx_location(&self, tx_hash: &Hash) -> Result<Option<TxLocation>, StorageError> {
        Ok(self.receipt(tx_hash)?.map(|r| r.location))
    }

    /// A committed transaction (read from its block).
    pub fn tx(&self, tx_hash: &Hash) -> Result<Option<StoredTx>, StorageError> {
        let Some(location) = self.tx_location(tx_hash)? else {
            return Ok(None);
        };
        let block = self.block(location.height)?.ok_or_else(|| {
            StorageError::corrupt(
                CF_RECEIPTS,
                format!("tx {tx_hash}"),
                format!("indexed at height {} which has no block", location.height),
            )
        })?;
        let tx = block
            .txs
            .into_iter()
            .nth(location.index as usize)
            .ok_or_else(|| {
                StorageError::corrupt(
                    CF_RECEIPTS,
                    format!("tx {tx_hash}"),
                    format!(
                        "index {} is past the end of block {}",
                        location.index, location.height
                    ),
                )
            })?;
        Ok(Some(StoredTx { location, tx }))
    }

    /// The receipt of a committed transaction.
    pub fn receipt(&self, tx_hash: &Hash) -> Result<Option<StoredReceipt>, StorageError> {
        self.get(CF_RECEIPTS, &tx_hash.0)?
            .map(|b| dec(CF_RECEIPTS, format_args!("receipt {tx_hash}"), &b))
            .transpose()
    }

    // ---- state root and proofs ----

    /// The state root if `writes` were applied on top of the latest committed state, without
    /// committing. Same as `self.state_view()?.state_root_after(writes)`; prefer the view's
    /// method when the writes came from executing against that view.
    pub fn state_root_after(&self, writes: &WriteSet) -> Result<Hash, StorageError> {
        self.state_view()?.state_root_after(writes)
    }

    fn check_version(&self, view: &StateView<'_>, height: u64) -> Result<(), StorageError> {
        let latest = view.height();
        if latest.is_none_or(|l| height > l) {
            return Err(StorageError::HeightNotCommitted {
                requested: height,
                latest,
            });
        }
        let oldest_kept = self.oldest_state_version()?;
        if height < oldest_kept {
            return Err(StorageError::StateVersionPruned {
                height,
                oldest_kept,
            });
        }
        Ok(())
    }

    /// Root of the state after block `height`, from the state tree.
    pub fn state_root(&self, height: u64) -> Result<Hash, StorageError> {
        let view = self.state_view()?;
        self.check_version(&view, height)?;
        view.tree_root(height)
    }

    /// Proof of `key`'s value, or of its absence, in the state after block `height`. Check it
    /// with [`StateProof::verify`] against that block header's `state_root`.
    pub fn prove(&self, key: &[u8], height: u64) -> Result<StateProof, StorageError> {
        let view = self.state_view()?;
        self.check_version(&view, height)?;
        view.tree_prove(key, height)
    }

    /// Deletes the state tree nodes that only heights below `keep_from` need. Proofs and roots
    /// at those heights then fail with [`StorageError::StateVersionPruned`]; everything else
    /// (blocks, headers, receipts, current state) stays.
    pub fn prune_state_versions(&self, keep_from: u64) -> Result<PruneReport, StorageError> {
        let _guard = self.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let view = self.state_view()?;
        let latest = view.height().ok_or(StorageError::NoGenesis)?;
        let keep_from = keep_from.min(latest);
        let old_oldest = self.oldest_state_version()?;
        if keep_from <= old_oldest {
            return Ok(PruneReport {
                oldest_kept: old_oldest,
                nodes_deleted: 0,
            });
        }
        // Every kept version's nodes must be on disk first: once the nodes a version replaced
        // are gone, that version cannot be computed again after a crash.
        self.db
            .flush_cf(cf(&self.db, CF_TREE_NODES))
            .map_err(|e| db_error(&self.db, e))?;
        let mut batch = WriteBatch::default();
        let nodes_deleted =
            tree::prune(&self.db, &view.snapshot, old_oldest, keep_from, &mut batch)?;
        batch.put_cf(
            cf(&self.db, CF_META),
            META_OLDEST_TREE_VERSION,
            keep_from.to_be_bytes(),
        );
        self.write_synced(batch)?;
        Ok(PruneReport {
            oldest_kept: keep_from,
            nodes_deleted,
        })
    }

    /// Writes a RocksDB checkpoint of the whole store to `dir` (which must not exist) and
    /// returns the header it is consistent at. Commits wait meanwhile, so the checkpoint holds
    /// whole blocks only; its memtables are flushed first, so the tree nodes written without
    /// the log are in it too. SST files are hard-linked when `dir` is on the same filesystem.
    pub fn checkpoint(&self, dir: &Path) -> Result<Header, StorageError> {
        let _guard = self.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let height = self.latest_height()?.ok_or(StorageError::NoGenesis)?;
        let header = self
            .block(height)?
            .ok_or_else(|| StorageError::corrupt(CF_BLOCKS, format!("block {height}"), "missing"))?
            .header;
        rocksdb::checkpoint::Checkpoint::new(&self.db)
            .and_then(|c| c.create_checkpoint(dir))
            .map_err(|e| db_error(&self.db, e))?;
        Ok(header)
    }

    // ---- commit ----

    /// Commits a decided block: the block, its certificate, the write set from executing it,
    /// the receipts (one per transaction, in order), the transaction index, the new state tree
    /// version and the new latest height, in one synced write batch.
    ///
    /// Refuses (writing nothing) a block that is not at `latest + 1`, whose parent is not the
    /// latest block, whose certificate is for another height or block, whose transactions or
    /// receipts do not match the header's roots, or whose write set gives another state root
    /// than the header's. The certificate's signatures are not checked here: consensus (or the
    /// sync client) verified them against the height's validator set.
    pub fn commit_block(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
        writes: &WriteSet,
        receipts: &[Receipt],
    ) -> Result<(), StorageError> {
        self.commit_inner(block, certificate, writes, receipts, None)
    }

    /// [`Store::commit_block`] with the state tree update already computed on the parent's
    /// view ([`StateView::prepare`]), as a validator has it from checking the proposal. It is
    /// refused, writing nothing, if it is not for this block's height or its root is not the
    /// header's.
    pub fn commit_prepared(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
        writes: &WriteSet,
        receipts: &[Receipt],
        prepared: &PreparedState,
    ) -> Result<(), StorageError> {
        self.commit_inner(block, certificate, writes, receipts, Some(prepared))
    }

    fn commit_inner(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
        writes: &WriteSet,
        receipts: &[Receipt],
        prepared: Option<&PreparedState>,
    ) -> Result<(), StorageError> {
        let _guard = self.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let view = self.state_view()?;
        let latest = view.height().ok_or(StorageError::NoGenesis)?;
        let header = &block.header;
        let height = header.height;
        let refused = |source: BlockError| StorageError::Block { height, source };
        let latest_hash = self
            .latest_hash()?
            .ok_or_else(|| StorageError::corrupt(CF_META, "latest hash", "missing"))?;
        let chain_id = self.chain_id()?.unwrap_or_default();
        header
            .check_extends(&chain_id, latest, latest_hash)
            .map_err(refused)?;
        header.check_certificate(certificate).map_err(refused)?;
        // Hashed once: the root check and the receipt keys both need them.
        let tx_hashes = block.check_txs().map_err(refused)?;
        header
            .check_receipts(&tx_hashes, receipts)
            .map_err(refused)?;
        let computed;
        let update = match prepared {
            Some(p) if p.version == height => &p.update,
            Some(p) => {
                return Err(StorageError::PreparedForOtherHeight {
                    height,
                    prepared: p.version,
                });
            }
            None => {
                computed = view.tree_update(writes, height)?;
                &computed
            }
        };
        header.check_state_root(update.root).map_err(refused)?;

        // The tree's new nodes go first, in a batch of their own without the write-ahead log:
        // they are most of a block's bytes, and logging them was a tenth of a loaded node's
        // time. They are in the memtable (and readable) at once and on disk from the column
        // family's next flush; whatever a crash loses before that, the next open computes again
        // from the logged value history (`recover_tree`). Until the block's batch below is
        // written they belong to no committed version and nothing reads them.
        let mut nodes = WriteBatch::with_capacity_bytes(update.nodes_size_hint());
        update.write_nodes_to(&self.db, &mut nodes);
        let mut unlogged = WriteOptions::default();
        unlogged.disable_wal(true);
        self.db
            .write_opt(nodes, &unlogged)
            .map_err(|e| db_error(&self.db, e))?;

        // Sized up front: a block's batch runs to megabytes, and growing it by doubling copied
        // it over and over and faulted in fresh pages each time.
        let mut batch = WriteBatch::with_capacity_bytes(batch_size_estimate(block, writes, update));
        self.put_block(&mut batch, &view, block, &block.hash(), writes, update);
        batch.put_cf(
            cf(&self.db, CF_CERTIFICATES),
            height.to_be_bytes(),
            enc(certificate),
        );
        self.put_receipts(&mut batch, &view, height, &tx_hashes, receipts)?;
        self.write_synced(batch)?;
        update.cache_nodes(&self.node_cache);
        self.set_latest_header(header);
        // A busy node flushes its memtable every few seconds anyway; a quiet one would leave
        // a restart after a crash weeks of versions to compute again.
        if height % TREE_NODES_FLUSH_INTERVAL == 0 {
            let mut background = FlushOptions::default();
            background.set_wait(false);
            self.db
                .flush_cf_opt(cf(&self.db, CF_TREE_NODES), &background)
                .map_err(|e| db_error(&self.db, e))?;
        }
        Ok(())
    }

    /// Puts each receipt under its transaction's hash, at its first inclusion only: a replayed
    /// transaction (rejected by its nonce) must not hide the receipt of the one that counted.
    /// The receipts go in in key order: memtable inserts in order reuse the skip list's search
    /// path, and random ones each walked it from the top.
    fn put_receipts(
        &self,
        batch: &mut WriteBatch,
        view: &StateView<'_>,
        height: u64,
        tx_hashes: &[Hash],
        receipts: &[Receipt],
    ) -> Result<(), StorageError> {
        let receipts_cf = cf(&self.db, CF_RECEIPTS);
        let mut seen = HashSet::new();
        let mut first_inclusions = Vec::with_capacity(receipts.len());
        for (i, (hash, receipt)) in tx_hashes.iter().zip(receipts).enumerate() {
            let known = view
                .snapshot
                .get_cf(receipts_cf, hash.0)
                .map_err(|e| db_error(&self.db, e))?
                .is_some();
            if known || !seen.insert(*hash) {
                tracing::warn!(height, tx = %hash, "transaction included again; keeping its first receipt");
                continue;
            }
            first_inclusions.push((hash, i, receipt));
        }
        first_inclusions.sort_unstable_by_key(|(hash, ..)| hash.0);
        for (hash, i, receipt) in first_inclusions {
            let location = TxLocation {
                height,
                index: i as u32,
            };
            batch.put_cf(
                receipts_cf,
                hash.0,
                enc(&StoredReceiptRef { location, receipt }),
            );
        }
        Ok(())
    }

    /// Computes again the tree nodes a crash lost: they are written without the write-ahead
    /// log, so the newest versions' may be missing while their blocks, value history and lists
    /// of changed keys (all logged) are there. Finds the newest version whose root is on disk
    /// (the memtable flushes in order, so every version up to it is whole) and recomputes each
    /// later one on top, checking its root against its block's header. Returns how many
    /// versions it computed.
    fn recover_tree(&self) -> Result<u64, StorageError> {
        let Some(latest) = self.latest_height()? else {
            return Ok(0);
        };
        let oldest = self.oldest_state_version()?;
        let nodes = cf(&self.db, CF_TREE_NODES);
        let has_root = |version: u64| {
            self.db
                .get_pinned_cf(nodes, tree::encode_node_key(&tree::root_node_key(version)))
                .map(|r| r.is_some())
                .map_err(|e| db_error(&self.db, e))
        };
        let mut whole = latest;
        while !has_root(whole)? {
            if whole <= oldest {
                return Err(StorageError::corrupt(
                    CF_TREE_NODES,
                    "state tree",
                    format!("no version from {oldest} to {latest} has its root"),
                ));
            }
            whole -= 1;
        }
        for version in whole + 1..=latest {
            let snapshot = self.db.snapshot();
            let source = tree::TreeSource {
                db: &self.db,
                snapshot: &snapshot,
                cache: None,
                pending: None,
            };
            let update = tree::recompute_version(&source, version)?.ok_or_else(|| {
                StorageError::corrupt(
                    CF_TREE_CHANGES,
                    "changed key list",
                    format!("version {version} has no root and no list to compute it from"),
                )
            })?;
            let header_root = self
                .block(version)?
                .ok_or_else(|| StorageError::corrupt(CF_BLOCKS, "block", "missing"))?
                .header
                .state_root;
            if update.root != header_root {
                return Err(StorageError::StateRootMismatch {
                    height: version,
                    computed: update.root,
                    header: header_root,
                });
            }
            let mut batch = WriteBatch::with_capacity_bytes(update.nodes_size_hint());
            update.write_nodes_to(&self.db, &mut batch);
            self.write_synced(batch)?;
        }
        Ok(latest - whole)
    }

    /// Block, hash index, state writes, tree update, the latest height/hash, and the validator
    /// set of the next height when the block changes it.
    fn put_block(
        &self,
        batch: &mut WriteBatch,
        before: &StateView<'_>,
        block: &Block,
        hash: &Hash,
        writes: &WriteSet,
        update: &tree::TreeUpdate,
    ) {
        let height = block.header.height;
        batch.put_cf(cf(&self.db, CF_BLOCKS), height.to_be_bytes(), enc(block));
        batch.put_cf(cf(&self.db, CF_BLOCK_HASHES), hash.0, height.to_be_bytes());
        let state = cf(&self.db, CF_STATE);
        let keys = cf(&self.db, CF_TREE_KEYS);
        for (k, v) in writes {
            match v {
                Some(v) => {
                    batch.put_cf(state, k, v);
                    batch.put_cf(keys, proof::key_hash(k).0, k);
                }
                None => batch.delete_cf(state, k),
            }
        }
        use caihong_chaincode::StateReader as _;
        names::index_writes(&self.db, batch, &|k| before.get(k), writes);
        update.write_history_to(&self.db, batch);
        let meta = cf(&self.db, CF_META);
        batch.put_cf(meta, META_LATEST_HEIGHT, height.to_be_bytes());
        batch.put_cf(meta, META_LATEST_HASH, hash.0);
        let after = member_node_keys(before, writes);
        if height == 0 || after != member_node_keys(before, &WriteSet::new()) {
            batch.put_cf(meta, validators_key(height + 1), enc(&after));
        }
    }

    /// Every validator set the chain has had: `(first height, node keys)`, in height order.
    pub fn validator_history(&self) -> Result<Vec<(u64, Vec<PublicKey>)>, StorageError> {
        let meta = cf(&self.db, CF_META);
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            meta,
            IteratorMode::From(META_VALIDATORS_PREFIX, rocksdb::Direction::Forward),
        );
        for item in iter {
            let (k, v) = item.map_err(|e| db_error(&self.db, e))?;
            let Some(height) = k.strip_prefix(META_VALIDATORS_PREFIX) else {
                break;
            };
            let height = u64_from(CF_META, "validator set height", height)?;
            out.push((height, dec(CF_META, "validator set", &v)?));
        }
        Ok(out)
    }

    /// The validator set that decides `height` (`None` before genesis).
    pub fn validators_at(&self, height: u64) -> Result<Option<Vec<PublicKey>>, StorageError> {
        Ok(self
            .validator_history()?
            .into_iter()
            .take_while(|(from, _)| *from <= height)
            .last()
            .map(|(_, keys)| keys))
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db
            .write_opt(batch, &opts)
            .map_err(|e| db_error(&self.db, e))
    }

    // ---- consensus safety state and evidence ----

    /// Persists the safety state durably (fsync) before returning: call it on
    /// `Output::PersistSafetyState`, before any later output is carried out.
    pub fn save_safety_state(&self, state: &SafetyState) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, CF_SAFETY), SAFETY_KEY, enc(state));
        self.write_synced(batch)
    }

    /// The last persisted safety state (`None` if this node never signed anything).
    pub fn load_safety_state(&self) -> Result<Option<SafetyState>, StorageError> {
        self.get(CF_SAFETY, SAFETY_KEY)?
            .map(|b| {
                crate::signer_state::decode(&b)
                    .map_err(|e| StorageError::corrupt(CF_SAFETY, "safety state", e))
            })
            .transpose()
    }

    /// Keeps evidence of equivocation. Returns `false` if it was already kept.
    pub fn add_evidence(&self, evidence: &Evidence) -> Result<bool, StorageError> {
        let bytes = enc(evidence);
        let (height, round) = evidence.height_round();
        let mut key = height.to_be_bytes().to_vec();
        key.extend_from_slice(&round.to_be_bytes());
        key.extend_from_slice(&Hash::of(&bytes).0);
        if self.get(CF_EVIDENCE, &key)?.is_some() {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, CF_EVIDENCE), key, bytes);
        self.write_synced(batch)?;
        Ok(true)
    }

    /// All evidence kept, by height and round.
    pub fn evidence(&self) -> Result<Vec<Evidence>, StorageError> {
        self.db
            .iterator_cf(cf(&self.db, CF_EVIDENCE), IteratorMode::Start)
            .map(|item| {
                let (_, v) = item.map_err(|e| db_error(&self.db, e))?;
                dec(CF_EVIDENCE, "evidence", &v)
            })
            .collect()
    }
}
