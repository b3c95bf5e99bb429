//! Signing and verification: the [`Signer`] abstraction and domain-separated sign bytes.
//!
//! Every signed message is `DOMAIN || kind || len(chain_id) || chain_id || bincode(payload)`,
//! so a signature over a prevote can never be replayed as a precommit, a proposal, or a message
//! on another chain.

use ed25519_dalek::{SigningKey, Verifier, VerifyingKey};
use serde::Serialize;

use crate::types::{ChainId, PublicKey, Signature};

const DOMAIN: &[u8] = b"caihong-consensus/v1\0";

/// Something that signs consensus messages with a validator's ed25519 key.
///
/// The node may keep the key in memory ([`Ed25519Signer`]) or behind an HSM. Consensus signs
/// only after its safety checks pass, so the signer itself needs no double-sign protection.
pub trait Signer {
    /// The validator's public key.
    fn public_key(&self) -> PublicKey;
    /// Sign the given bytes (already domain-separated by this crate).
    fn sign(&self, message: &[u8]) -> Signature;
}

/// A [`Signer`] holding an ed25519 signing key in memory.
pub struct Ed25519Signer {
    key: SigningKey,
}

impl Ed25519Signer {
    /// Wrap a signing key.
    pub fn new(key: SigningKey) -> Self {
        Ed25519Signer { key }
    }

    /// A signer from a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Ed25519Signer {
            key: SigningKey::from_bytes(&seed),
        }
    }
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Ed25519Signer")
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl Signer for Ed25519Signer {
    fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer as _;
        Signature(self.key.sign(message).to_bytes())
    }
}

impl<S: Signer + ?Sized> Signer for &S {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }
    fn sign(&self, message: &[u8]) -> Signature {
        (**self).sign(message)
    }
}

impl<S: Signer + ?Sized> Signer for Box<S> {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }
    fn sign(&self, message: &[u8]) -> Signature {
        (**self).sign(message)
    }
}

/// Domain-separated bytes to sign for `payload` of the given `kind` on `chain_id`.
pub(crate) fn sign_bytes(chain_id: &ChainId, kind: &[u8], payload: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(kind);
    out.push(0);
    out.extend_from_slice(&(chain_id.0.len() as u32).to_le_bytes());
    out.extend_from_slice(chain_id.0.as_bytes());
    // bincode of our own plain structs cannot fail.
    out.extend_from_slice(&bincode::serialize(payload).expect("bincode of consensus payload"));
    out
}

/// Verify one ed25519 signature; false for malformed keys or signatures.
pub fn verify_signature(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    vk.verify(message, &sig).is_ok()
}

/// Verify many signatures at once (ed25519 batch verification); true only if all are valid.
pub(crate) fn verify_batch(items: &[(PublicKey, Vec<u8>, Signature)]) -> bool {
    if items.is_empty() {
        return true;
    }
    let mut keys = Vec::with_capacity(items.len());
    for (k, _, _) in items {
        match VerifyingKey::from_bytes(&k.0) {
            Ok(vk) => keys.push(vk),
            Err(_) => return false,
        }
    }
    let msgs: Vec<&[u8]> = items.iter().map(|(_, m, _)| m.as_slice()).collect();
    let sigs: Vec<ed25519_dalek::Signature> = items
        .iter()
        .map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(&s.0))
        .collect();
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
}
