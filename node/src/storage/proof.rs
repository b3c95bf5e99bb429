//! State proofs: that a key has a value, or has none, under a state root.
//!
//! # Format
//! The state root is the root of a Jellyfish Merkle tree (the `jmt` crate, SHA-256), a sparse
//! binary Merkle tree of depth 256 over `key_hash = SHA-256(key)`, where a subtree holding one
//! leaf or none is replaced by that leaf or by a placeholder:
//!
//! - leaf hash: `SHA-256("JMT::LeafNode" || key_hash || SHA-256(value))`
//! - inner hash: `SHA-256("JMT::IntrnalNode" || left || right)`
//! - empty subtree: the 32 bytes `"SPARSE_MERKLE_PLACEHOLDER_HASH__"`
//!
//! A [`StateProof`] carries the leaf met on the key's path (if any) and the sibling hashes from
//! that leaf's level up to the root. The bits of `key_hash`, most significant first, choose the
//! path (0 = left). Verification needs SHA-256 and nothing else: [`StateProof::verify`] has no
//! database, no `jmt` and no RocksDB behind it, so an outside region's sync client can run it
//! (or port it in thirty lines).
//!
//! # Design
//! We convert `jmt`'s proof into this plain form instead of shipping `jmt`'s own type: its
//! sibling nodes are crate-private, its serde layout is an implementation detail, and a verifier
//! should not have to trust or link a tree implementation. A test checks that both verifiers
//! agree on every proof.

use serde::{Deserialize, Serialize};
use sha2::Sha256;

use caihong_chaincode::Hash;

use super::error::ProofError;

const LEAF_DOMAIN: &[u8] = b"JMT::LeafNode";
const INTERNAL_DOMAIN: &[u8] = b"JMT::IntrnalNode";
/// Hash of an empty subtree.
pub const PLACEHOLDER_HASH: Hash = Hash(*b"SPARSE_MERKLE_PLACEHOLDER_HASH__");

/// The leaf met on a key's path: the key itself (membership) or the one other key in the
/// subtree where the key would be (non-membership).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofLeaf {
    pub key_hash: Hash,
    pub value_hash: Hash,
}

impl ProofLeaf {
    pub fn hash(&self) -> Hash {
        Hash::of_parts(&[LEAF_DOMAIN, &self.key_hash.0, &self.value_hash.0])
    }
}

/// A proof that `key` has `value` (or no value) in the state with a given root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    /// Height whose state root this proof leads to.
    pub height: u64,
    /// The value the store read for the key (`None`: absent). Untrusted until verified:
    /// pass it to [`StateProof::verify`].
    pub value: Option<Vec<u8>>,
    /// The leaf on the key's path, if the path does not end in an empty subtree.
    pub leaf: Option<ProofLeaf>,
    /// Sibling hashes from the leaf's level up to the root (`siblings[0]` is deepest).
    pub siblings: Vec<Hash>,
}

/// `SHA-256(key)`: where a key sits in the tree.
pub fn key_hash(key: &[u8]) -> Hash {
    Hash::of(key)
}

fn bit(hash: &Hash, index: usize) -> bool {
    (hash.0[index / 8] >> (7 - index % 8)) & 1 == 1
}

fn common_prefix_bits(a: &Hash, b: &Hash) -> usize {
    (0..256).take_while(|&i| bit(a, i) == bit(b, i)).count()
}

impl StateProof {
    /// Checks that under `root`, `key` has `value` (`None`: the key is absent).
    pub fn verify(&self, root: &Hash, key: &[u8], value: Option<&[u8]>) -> Result<(), ProofError> {
        if self.siblings.len() > 256 {
            return Err(ProofError::TooManySiblings(self.siblings.len()));
        }
        let kh = key_hash(key);
        match (value, &self.leaf) {
            (Some(value), Some(leaf)) => {
                if leaf.key_hash != kh {
                    return Err(ProofError::WrongKey {
                        in_proof: leaf.key_hash,
                        expected: kh,
                    });
                }
                let claimed = Hash::of(value);
                if claimed != leaf.value_hash {
                    return Err(ProofError::ValueMismatch {
                        in_proof: leaf.value_hash,
                        claimed,
                    });
                }
            }
            (Some(_), None) => return Err(ProofError::ExpectedMembership),
            (None, Some(leaf)) => {
                if leaf.key_hash == kh {
                    return Err(ProofError::KeyPresent);
                }
                // The other leaf must sit where the key would: sharing the path down to it.
                if common_prefix_bits(&kh, &leaf.key_hash) < self.siblings.len() {
                    return Err(ProofError::LeafNotOnPath);
                }
            }
            (None, None) => {}
        }
        let mut current = self.leaf.map_or(PLACEHOLDER_HASH, |l| l.hash());
        let depth = self.siblings.len();
        for (i, sibling) in self.siblings.iter().enumerate() {
            current = if bit(&kh, depth - 1 - i) {
                Hash::of_parts(&[INTERNAL_DOMAIN, &sibling.0, &current.0])
            } else {
                Hash::of_parts(&[INTERNAL_DOMAIN, &current.0, &sibling.0])
            };
        }
        if current != *root {
            return Err(ProofError::RootMismatch {
                computed: current,
                expected: *root,
            });
        }
        Ok(())
    }

    /// Checks the value this proof carries: `verify(root, key, self.value)`.
    pub fn verify_carried(&self, root: &Hash, key: &[u8]) -> Result<(), ProofError> {
        self.verify(root, key, self.value.as_deref())
    }
}

/// Mirror of `jmt::proof::SparseMerkleProof`'s serde layout, to read its crate-private sibling
/// nodes. The round trip goes through bincode, whose layout for these plain structs is fixed.
mod jmt_mirror {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Proof {
        pub leaf: Option<Leaf>,
        pub siblings: Vec<Node>,
        #[allow(dead_code)]
        pub phantom_hasher: (),
    }

    #[derive(Deserialize, Clone, Copy)]
    pub struct Leaf {
        pub key_hash: [u8; 32],
        pub value_hash: [u8; 32],
    }

    #[derive(Deserialize)]
    pub struct Internal {
        pub left_child: [u8; 32],
        pub right_child: [u8; 32],
    }

    #[derive(Deserialize)]
    pub enum Node {
        Null,
        Internal(Internal),
        Leaf(Leaf),
    }
}

/// Converts `jmt`'s proof to ours. Fails only if `jmt` changed its layout (a test catches it).
pub(crate) fn from_jmt(
    height: u64,
    value: Option<Vec<u8>>,
    proof: &jmt::proof::SparseMerkleProof<Sha256>,
) -> Result<StateProof, String> {
    let bytes = bincode::serialize(proof).map_err(|e| e.to_string())?;
    let mirror: jmt_mirror::Proof = bincode::deserialize(&bytes).map_err(|e| e.to_string())?;
    let leaf = |l: jmt_mirror::Leaf| ProofLeaf {
        key_hash: Hash(l.key_hash),
        value_hash: Hash(l.value_hash),
    };
    let siblings = mirror
        .siblings
        .into_iter()
        .map(|node| match node {
            jmt_mirror::Node::Null => PLACEHOLDER_HASH,
            jmt_mirror::Node::Internal(n) => {
                Hash::of_parts(&[INTERNAL_DOMAIN, &n.left_child, &n.right_child])
            }
            jmt_mirror::Node::Leaf(l) => leaf(l).hash(),
        })
        .collect();
    Ok(StateProof {
        height,
        value,
        leaf: mirror.leaf.map(leaf),
        siblings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_most_significant_first() {
        let mut h = Hash::ZERO;
        h.0[0] = 0b1000_0000;
        h.0[1] = 0b0000_0001;
        assert!(bit(&h, 0));
        assert!(!bit(&h, 1));
        assert!(bit(&h, 15));
        assert_eq!(common_prefix_bits(&h, &Hash::ZERO), 0);
        assert_eq!(common_prefix_bits(&h, &h), 256);
    }

    #[test]
    fn empty_proof_shows_absence_under_the_empty_root_only() {
        let proof = StateProof {
            height: 0,
            value: None,
            leaf: None,
            siblings: vec![],
        };
        assert_eq!(proof.verify(&PLACEHOLDER_HASH, b"k", None), Ok(()));
        assert_eq!(
            proof.verify(&PLACEHOLDER_HASH, b"k", Some(b"v")),
            Err(ProofError::ExpectedMembership)
        );
        assert!(matches!(
            proof.verify(&Hash::ZERO, b"k", None),
            Err(ProofError::RootMismatch { .. })
        ));
    }

    #[test]
    fn single_leaf_tree_proves_its_key_and_the_absence_of_others() {
        let leaf = ProofLeaf {
            key_hash: key_hash(b"a"),
            value_hash: Hash::of(b"1"),
        };
        let root = leaf.hash();
        let proof = StateProof {
            height: 0,
            value: Some(b"1".to_vec()),
            leaf: Some(leaf),
            siblings: vec![],
        };
        assert_eq!(proof.verify_carried(&root, b"a"), Ok(()));
        assert!(matches!(
            proof.verify(&root, b"a", Some(b"2")),
            Err(ProofError::ValueMismatch { .. })
        ));
        assert_eq!(proof.verify(&root, b"a", None), Err(ProofError::KeyPresent));
        // With no siblings, the one leaf is the whole tree: any other key is absent.
        assert_eq!(proof.verify(&root, b"b", None), Ok(()));
        assert!(matches!(
            proof.verify(&root, b"b", Some(b"1")),
            Err(ProofError::WrongKey { .. })
        ));
    }
}
