//! Blocks: a header that commits to the transactions, their receipts, the
//! resulting state and the validator set, and the transactions themselves.
//! Consensus agrees on the header hash; the body travels with the proposal.

use caihong_chaincode::codec;
use caihong_chaincode::{Hash, PublicKey, Receipt, SignedTransaction};
use serde::{Deserialize, Serialize};

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

    /// Whether the body matches the header's transaction root.
    pub fn txs_match_header(&self) -> bool {
        txs_root(&self.txs) == self.header.txs_root
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
