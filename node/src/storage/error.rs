//! What can go wrong in the store, said so an operator knows what to do.

use std::path::PathBuf;

use caihong_chaincode::Hash;

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
    /// A block was committed out of order.
    #[error("block at height {got} cannot be committed: the next height is {expected}")]
    HeightNotNext { expected: u64, got: u64 },
    /// A block's parent is not the latest committed block.
    #[error(
        "block {height} names parent {got}, but the committed block at height {} is {expected}",
        .height.saturating_sub(1)
    )]
    ParentMismatch {
        height: u64,
        expected: Hash,
        got: Hash,
    },
    /// A block is for another chain.
    #[error("block is for chain {got:?}, this store holds chain {expected:?}")]
    ChainIdMismatch { expected: String, got: String },
    /// The commit certificate does not decide this block.
    #[error(
        "commit certificate decides {cert_value} at height {cert_height}, not block {block_hash} at height {height}"
    )]
    CertificateMismatch {
        height: u64,
        block_hash: Hash,
        cert_height: u64,
        cert_value: Hash,
    },
    /// The block body, receipts or write set disagree with the header.
    #[error("block {height} is inconsistent: {detail}")]
    InconsistentBlock { height: u64, detail: String },
    /// Applying the write set gives another state root than the header's.
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
