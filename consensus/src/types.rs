//! Small value types shared by every module: heights, rounds, value ids, keys and signatures.
//!
//! Consensus is self-contained on purpose (it never sees the chaincode crate): these are plain
//! byte newtypes with serde support so the node can gossip them with bincode.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A block height. The first height of a chain is whatever the host starts with (usually 1).
pub type Height = u64;

/// A round within a height, starting at 0. The paper's `-1` ("no round") is `Option::None`.
pub type Round = u32;

/// A 32-byte SHA-256 hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// SHA-256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Hash(sha2::Sha256::digest(bytes).into())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &hex::encode(self.0)[..12])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The identity of a proposed value (for Caihong: the block hash). Consensus never sees the
/// value itself; the host maps ids to blocks, validates them and disseminates their bodies.
pub type ValueId = Hash;

/// The chain id, mixed into every signature so a vote on one chain is useless on another.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ChainId(pub String);

impl ChainId {
    /// A chain id from any string.
    pub fn new(id: impl Into<String>) -> Self {
        ChainId(id.into())
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ed25519 public key (32 bytes), which is also how a validator is identified.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pk:{}", &hex::encode(self.0)[..8])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &hex::encode(self.0)[..8])
    }
}

// serde derives only cover arrays up to 32 elements; 64 bytes go as a byte string.
impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                let arr: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature(arr))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut arr = [0u8; 64];
                for (i, b) in arr.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(arr))
            }
        }
        deserializer.deserialize_bytes(V)
    }
}

/// The step of a round, in the order the paper's `step_p` moves through them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Step {
    /// Waiting for (or making) the round's proposal.
    Propose,
    /// Prevoted; waiting for prevotes.
    Prevote,
    /// Precommitted; waiting for precommits.
    Precommit,
}

/// The two kinds of votes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum VoteKind {
    /// First-stage vote.
    Prevote,
    /// Second-stage vote; >2/3 of them for one value decide it.
    Precommit,
}

impl VoteKind {
    /// The step a validator is in after casting this kind of vote.
    pub fn step(self) -> Step {
        match self {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_roundtrips_through_bincode() {
        let mut bytes = [0u8; 64];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let sig = Signature(bytes);
        let enc = bincode::serialize(&sig).unwrap();
        assert_eq!(enc.len(), 8 + 64);
        let dec: Signature = bincode::deserialize(&enc).unwrap();
        assert_eq!(dec, sig);
        let short = bincode::serialize(&vec![1u8; 63]).unwrap();
        assert!(bincode::deserialize::<Signature>(&short).is_err());
    }
}
