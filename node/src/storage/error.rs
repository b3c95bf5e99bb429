//! What can go wrong in the store, said so an operator knows what to do.

use std::path::PathBuf;

use caihong_chaincode::Hash;

use crate::block::BlockError;

/// Errors of [`Store`](super::Store).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB itself failed (IO error, corruption, lock held by another process, ...).
    #[error("RocksDB error at {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    /// Another process (another `caihong start` with this home) has the database open.
    #[error(
        "{} is in use by another process (is a node with this home already running?); stop \
         it first, or give another --home",
        .0.display()
    )]
    InUse(PathBuf),
    /// A stored value does not decode: the database is corrupt or from an incompatible version.
    #[error("corrupt {table} entry ({what}): {detail}")]
    Corrupt {
        table: &'static str,
        what: String,
        detail: String,
    },
    /// An operation needs a chain but `init_genesis` has not run on this store.
    #[error("the store has no genesis yet; run init_genesis first")]
    NoGenesis,
    /// The store already holds a chain that started from another genesis.
    #[error(
        "this data directory holds chain {stored_chain_id:?} with genesis {stored}, not genesis {given} \
         of chain {given_chain_id:?}; use another data directory or the matching genesis"
    )]
    GenesisMismatch {
        stored: Hash,
        stored_chain_id: String,
        given: Hash,
        given_chain_id: String,
    },
    /// The genesis header or writes are not a valid genesis.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(String),
    /// The block is not the next block of this store's chain, or its certificate, body or
    /// receipts disagree with its header: nothing was written.
    #[error("block {height} cannot be committed: {source}")]
    Block {
        height: u64,
        #[source]
        source: BlockError,
    },
    /// The state tree update handed in was computed for another height.
    #[error("block {height}: the prepared state tree update is for height {prepared}")]
    PreparedForOtherHeight { height: u64, prepared: u64 },
    /// The state tree's root is not the one the block header holds (genesis, or a tree
    /// rebuilt after a crash).
    #[error(
        "block {height}: the write set gives state root {computed}, the header says {header}; \
         the block was executed against another state"
    )]
    StateRootMismatch {
        height: u64,
        computed: Hash,
        header: Hash,
    },
    /// A height above the latest committed one was asked for.
    #[error("height {requested} is not committed yet (latest is {latest:?})")]
    HeightNotCommitted { requested: u64, latest: Option<u64> },
    /// The state tree of this height was pruned.
    #[error(
        "the state tree at height {height} was pruned (oldest kept: {oldest_kept}); ask for a newer height"
    )]
    StateVersionPruned { height: u64, oldest_kept: u64 },
    /// The Jellyfish Merkle tree failed (missing node: the tree is incomplete or corrupt).
    #[error("state tree error at height {height}: {detail}")]
    Tree { height: u64, detail: String },
}

impl StorageError {
    pub(crate) fn corrupt(
        table: &'static str,
        what: impl Into<String>,
        detail: impl ToString,
    ) -> Self {
        StorageError::Corrupt {
            table,
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// Why a [`StateProof`](super::StateProof) does not prove the claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("proof has {0} siblings; a 256-bit tree has at most 256")]
    TooManySiblings(usize),
    #[error("proof is for key hash {in_proof}, not for the key's hash {expected}")]
    WrongKey { in_proof: Hash, expected: Hash },
    #[error(
        "value does not match: the proof commits to value hash {in_proof}, the claimed value hashes to {claimed}"
    )]
    ValueMismatch { in_proof: Hash, claimed: Hash },
    #[error("a value was claimed but the proof shows the key absent")]
    ExpectedMembership,
    #[error("absence was claimed but the proof shows the key present")]
    KeyPresent,
    #[error("the leaf in the proof does not lie on the key's path, so it cannot show absence")]
    LeafNotOnPath,
    #[error("proof leads to root {computed}, not to the expected root {expected}")]
    RootMismatch { computed: Hash, expected: Hash },
}
