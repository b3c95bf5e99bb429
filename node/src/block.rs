//! Blocks: a header that commits to the transactions, their receipts, the
//! resulting state and the validator set, and the transactions themselves.
//! Consensus agrees on the header hash; the body travels with the proposal.
//!
//! The checks every reader of a block makes (the height pipeline on a proposal, the store on
//! commit, the light client on what a node sends) are the methods here and fail with one
//! [`BlockError`]; each caller adds only what it alone can check (execution, signatures).

use caihong_chaincode::codec;
use caihong_chaincode::{Hash, PublicKey, Receipt, SignedTransaction};
use caihong_consensus::CommitCertificate;
use serde::{Deserialize, Serialize};

/// Why a block is not the next block of a chain, or its body not the one its header commits to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("height {got} does not follow height {latest}")]
    Height { latest: u64, got: u64 },
    #[error("the header is for chain {got:?}, not {expected:?}")]
    ChainId { expected: String, got: String },
    #[error("parent hash {got} is not the previous block {expected}")]
    Parent { expected: Hash, got: Hash },
    #[error(
        "block time {time_ms} is not after its parent's {parent_ms} or more than 10 s ahead \
         of this node's clock"
    )]
    Time { time_ms: u64, parent_ms: u64 },
    #[error(
        "the commit certificate is not for this header: it certifies {certified} at height \
         {cert_height}, the header hashes to {block}"
    )]
    Certificate {
        block: Hash,
        cert_height: u64,
        certified: Hash,
    },
    #[error("the transactions do not match the header's txs_root (altered, added or dropped)")]
    TxsRoot,
    #[error("{receipts} receipts for {txs} transactions")]
    ReceiptCount { receipts: usize, txs: usize },
    #[error(
        "receipt {index} is for transaction {receipt_for}, the block's transaction {index} is {tx}"
    )]
    ReceiptFor {
        index: usize,
        receipt_for: Hash,
        tx: Hash,
    },
    #[error("the receipts do not match the header's receipts_root")]
    ReceiptsRoot,
    #[error("the header's next validators hash differs from the members after the block")]
    NextValidators,
    #[error("state root {computed} differs from the header's {header}")]
    StateRoot { computed: Hash, header: Hash },
}

/// How far ahead of the local clock a block's time may be.
pub const MAX_CLOCK_AHEAD_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub chain_id: String,
    pub height: u64,
    /// Milliseconds since the Unix epoch, chosen by the proposer, later than the parent's.
    pub time_ms: u64,
    pub parent_hash: Hash,
    /// The proposer's node key.
    pub proposer: PublicKey,
    /// [`merkle_root`] of the transaction hashes, in block order.
    pub txs_root: Hash,
    /// [`merkle_root`] of the receipt hashes, in block order.
    pub receipts_root: Hash,
    /// Root of the state after executing this block.
    pub state_root: Hash,
    /// [`validators_hash`] of the members after this block: the validator set that decides the
    /// next height. A light client that trusts this header's certificate learns from it the set
    /// whose certificate it must check next, so trust passes from genesis through every
    /// membership change without executing transactions.
    pub next_validators_hash: Hash,
}

/// Commits to a validator set: SHA-256 of the canonical encoding of its node keys, sorted.
pub fn validators_hash(keys: &[PublicKey]) -> Hash {
    let mut sorted = keys.to_vec();
    sorted.sort();
    Hash::of(&caihong_chaincode::codec::encode(&sorted))
}

impl Header {
    /// The block's identity: SHA-256 of the canonical header encoding.
    pub fn hash(&self) -> Hash {
        Hash::of(&codec::encode(self))
    }

    /// Whether this header comes right after the block `latest_hash` at `latest` on `chain_id`.
    pub fn check_extends(
        &self,
        chain_id: &str,
        latest: u64,
        latest_hash: Hash,
    ) -> Result<(), BlockError> {
        if self.chain_id != chain_id {
            return Err(BlockError::ChainId {
                expected: chain_id.to_string(),
                got: self.chain_id.clone(),
            });
        }
        if self.height != latest + 1 {
            return Err(BlockError::Height {
                latest,
                got: self.height,
            });
        }
        if self.parent_hash != latest_hash {
            return Err(BlockError::Parent {
                expected: latest_hash,
                got: self.parent_hash,
            });
        }
        Ok(())
    }

    /// Whether the block time is after the parent's and not beyond [`MAX_CLOCK_AHEAD_MS`] of
    /// `now_ms` (only a member judging a proposal checks this: a synced block is old).
    pub fn check_time(&self, parent_ms: u64, now_ms: u64) -> Result<(), BlockError> {
        if self.time_ms <= parent_ms || self.time_ms > now_ms + MAX_CLOCK_AHEAD_MS {
            return Err(BlockError::Time {
                time_ms: self.time_ms,
                parent_ms,
            });
        }
        Ok(())
    }

    /// Whether `certificate` is for this block (its signatures are consensus's to check).
    pub fn check_certificate(&self, certificate: &CommitCertificate) -> Result<(), BlockError> {
        let block = self.hash();
        if certificate.height != self.height || certificate.value.0 != block.0 {
            return Err(BlockError::Certificate {
                block,
                cert_height: certificate.height,
                certified: Hash(certificate.value.0),
            });
        }
        Ok(())
    }

    /// The hashes of `txs`, in order, if they match the header's transaction root.
    pub fn check_txs(&self, txs: &[SignedTransaction]) -> Result<Vec<Hash>, BlockError> {
        let hashes: Vec<Hash> = txs.iter().map(|t| t.hash()).collect();
        if merkle_root(&hashes) != self.txs_root {
            return Err(BlockError::TxsRoot);
        }
        Ok(hashes)
    }

    /// Whether `receipts` are one per transaction of `tx_hashes`, in order, and match the
    /// header's receipts root.
    pub fn check_receipts(
        &self,
        tx_hashes: &[Hash],
        receipts: &[Receipt],
    ) -> Result<(), BlockError> {
        if receipts.len() != tx_hashes.len() {
            return Err(BlockError::ReceiptCount {
                receipts: receipts.len(),
                txs: tx_hashes.len(),
            });
        }
        if let Some(index) = (0..receipts.len()).find(|&i| receipts[i].tx_hash != tx_hashes[i]) {
            return Err(BlockError::ReceiptFor {
                index,
                receipt_for: receipts[index].tx_hash,
                tx: tx_hashes[index],
            });
        }
        if receipts_root(receipts) != self.receipts_root {
            return Err(BlockError::ReceiptsRoot);
        }
        Ok(())
    }

    /// Whether `computed` (the root the block's writes give) is the header's state root.
    pub fn check_state_root(&self, computed: Hash) -> Result<(), BlockError> {
        if computed != self.state_root {
            return Err(BlockError::StateRoot {
                computed,
                header: self.state_root,
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The transactions' hashes, in order, if they match the header's transaction root.
    pub fn check_txs(&self) -> Result<Vec<Hash>, BlockError> {
        self.header.check_txs(&self.txs)
    }
}

pub fn txs_root(txs: &[SignedTransaction]) -> Hash {
    let hashes: Vec<Hash> = txs.iter().map(|t| t.hash()).collect();
    merkle_root(&hashes)
}

pub fn receipts_root(receipts: &[Receipt]) -> Hash {
    let hashes: Vec<Hash> = receipts
        .iter()
        .map(|r| Hash::of(&codec::encode(r)))
        .collect();
    merkle_root(&hashes)
}

/// RFC 6962 Merkle tree hash over leaf hashes (leaves prefixed 0x00, inner
/// nodes 0x01, split at the largest power of two below n). Only the root is
/// needed: sync proofs go through the state root, not through these trees.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Hash::of(b""),
        [one] => Hash::of_parts(&[&[0], &one.0]),
        _ => {
            let split = leaves.len().next_power_of_two() / 2;
            let left = merkle_root(&leaves[..split]);
            let right = merkle_root(&leaves[split..]);
            Hash::of_parts(&[&[1], &left.0, &right.0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_depends_on_order_and_content() {
        let a = Hash::of(b"a");
        let b = Hash::of(b"b");
        let c = Hash::of(b"c");
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
        assert_ne!(merkle_root(&[a, b, c]), merkle_root(&[a, b]));
        assert_ne!(merkle_root(&[a]), a, "leaves are domain-separated");
        // Three leaves split 2 + 1.
        let expected = Hash::of_parts(&[&[1], &merkle_root(&[a, b]).0, &merkle_root(&[c]).0]);
        assert_eq!(merkle_root(&[a, b, c]), expected);
    }
}
