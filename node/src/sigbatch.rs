//! Batched ed25519 verification of transactions: exactly the equation `ed25519_dalek`'s
//! `verify_batch` checks, with the terms of each signer merged.
//!
//! dalek checks `-(Σ zᵢsᵢ)·B + Σ zᵢ·Rᵢ + Σ (zᵢhᵢ)·Aᵢ = 0` as one multiscalar multiplication over
//! `2n + 1` points. An alliance has few signers sending many transactions, so the `Aᵢ` repeat:
//! summing the coefficients of each distinct key first gives the same point from `n + k + 1`
//! points (k signers), about half the work of the largest cost on the intake path. The weights
//! `zᵢ` come from the same transcript as dalek's, so the two accept exactly the same batches
//! (a test below compares them on good and tampered batches).
//!
//! [`verify_each`] applies it to transactions, for intake and for block validation alike.

use std::collections::HashMap;

use caihong_chaincode::{PublicKey, SignedTransaction, TxCheckError, VerifiedTx};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signature, VerifyingKey};
use merlin::Transcript;
use sha2::{Digest, Sha512};

/// Why a batch did not verify (which signature is bad is for the caller to find, one by one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("{messages} messages, {signatures} signatures and {keys} keys: lengths differ")]
    Lengths {
        messages: usize,
        signatures: usize,
        keys: usize,
    },
    #[error("a signature's s is not a canonical scalar")]
    NonCanonicalScalar,
    #[error("a signature's R is not a curve point")]
    BadR,
    #[error("the batch equation does not hold")]
    Equation,
}

/// An RNG that adds nothing: dalek finalizes its transcript RNG with one, so the weights depend
/// on the batch alone and every node judges a batch the same way.
struct NoEntropy;

impl rand_core::RngCore for NoEntropy {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, _dest: &mut [u8]) {}
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for NoEntropy {}

/// Verifies `signatures[i]` on `messages[i]` by `keys[i]`, all at once.
#[allow(non_snake_case)]
pub fn verify_batch(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[VerifyingKey],
) -> Result<(), BatchError> {
    let n = signatures.len();
    if messages.len() != n || keys.len() != n {
        return Err(BatchError::Lengths {
            messages: messages.len(),
            signatures: n,
            keys: keys.len(),
        });
    }
    let hrams: Vec<[u8; 64]> = (0..n)
        .map(|i| {
            let mut h = Sha512::new();
            h.update(signatures[i].r_bytes());
            h.update(keys[i].as_bytes());
            h.update(messages[i]);
            h.finalize().into()
        })
        .collect();
    let mut transcript = Transcript::new(b"ed25519 batch verification");
    for hram in &hrams {
        transcript.append_message(b"hram", hram);
    }
    for sig in signatures {
        transcript.append_message(b"sig.s", sig.s_bytes());
    }
    let mut rng = transcript.build_rng().finalize(&mut NoEntropy);

    let ss = signatures
        .iter()
        .map(|sig| Option::<Scalar>::from(Scalar::from_canonical_bytes(*sig.s_bytes())))
        .collect::<Option<Vec<Scalar>>>()
        .ok_or(BatchError::NonCanonicalScalar)?;
    let zs: Vec<Scalar> = (0..n)
        .map(|_| {
            let mut buf = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut rng, &mut buf);
            Scalar::from(u128::from_le_bytes(buf))
        })
        .collect();
    let B_coefficient: Scalar = ss.iter().zip(&zs).map(|(s, z)| z * s).sum();

    // Σ (zᵢhᵢ)·Aᵢ, one term per distinct key.
    let mut slot_of: HashMap<[u8; 32], usize> = HashMap::new();
    let mut key_terms: Vec<(Scalar, EdwardsPoint)> = Vec::new();
    for ((hram, z), key) in hrams.iter().zip(&zs).zip(keys) {
        let coefficient = Scalar::from_bytes_mod_order_wide(hram) * z;
        match slot_of.get(key.as_bytes()) {
            Some(&slot) => key_terms[slot].0 += coefficient,
            None => {
                slot_of.insert(*key.as_bytes(), key_terms.len());
                key_terms.push((coefficient, key.to_edwards()));
            }
        }
    }

    let Rs = signatures
        .iter()
        .map(|sig| CompressedEdwardsY(*sig.r_bytes()).decompress());
    let sum = EdwardsPoint::optional_multiscalar_mul(
        std::iter::once(-B_coefficient)
            .chain(zs.iter().copied())
            .chain(key_terms.iter().map(|(c, _)| *c)),
        std::iter::once(Some(ED25519_BASEPOINT_POINT))
            .chain(Rs)
            .chain(key_terms.iter().map(|(_, a)| Some(*a))),
    )
    .ok_or(BatchError::BadR)?;
    if sum.is_identity() {
        Ok(())
    } else {
        Err(BatchError::Equation)
    }
}

/// Verifies each transaction's chain id and signature: all in one batch when every signature
/// is good (the common case), one by one to find the bad ones otherwise.
///
/// Every check here is ed25519's batch (cofactored) equation, also for a single transaction:
/// the single-signature check (cofactorless) can judge a crafted signature differently, and a
/// block's validity must not depend on which of its transactions a validator already had.
pub fn verify_each(
    txs: Vec<SignedTransaction>,
    chain_id: &str,
) -> Vec<Result<VerifiedTx, TxCheckError>> {
    if txs.len() > 1
        && txs.iter().all(|t| t.tx.chain_id == chain_id)
        && verify_txs_batch(&txs).is_ok()
    {
        return txs.into_iter().map(|t| Ok(t.assume_verified())).collect();
    }
    txs.into_iter()
        .map(|t| {
            if t.tx.chain_id != chain_id {
                return Err(TxCheckError::WrongChain {
                    expected: chain_id.to_string(),
                    found: t.tx.chain_id.clone(),
                });
            }
            if verifying_key(&t.tx.signer).is_err() {
                return Err(TxCheckError::BadKey(t.tx.signer));
            }
            match verify_txs_batch(std::slice::from_ref(&t)) {
                Ok(()) => Ok(t.assume_verified()),
                Err(_) => Err(TxCheckError::BadSignature(t.tx.signer)),
            }
        })
        .collect()
}

/// One ed25519 batch verification over the transactions' signatures.
fn verify_txs_batch(txs: &[SignedTransaction]) -> Result<(), String> {
    let messages: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_bytes()).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    let signatures: Vec<ed25519_dalek::Signature> = txs
        .iter()
        .map(|t| ed25519_dalek::Signature::from_bytes(&t.signature.0))
        .collect();
    let keys = txs
        .iter()
        .map(|t| verifying_key(&t.tx.signer).map_err(|_| format!("bad signer key in {}", t.hash())))
        .collect::<Result<Vec<_>, _>>()?;
    verify_batch(&refs, &signatures, &keys)
        .map_err(|e| format!("the transactions' signatures do not verify: {e}"))
}

/// A signer's decompressed key. Decompressing is about a quarter of a signature check, and an
/// alliance has few signers sending many transactions, so keys are kept (a bounded set).
fn verifying_key(
    key: &PublicKey,
) -> Result<ed25519_dalek::VerifyingKey, ed25519_dalek::SignatureError> {
    const MAX_KEYS: usize = 16_384;
    static KEYS: std::sync::OnceLock<std::sync::Mutex<HashMap<PublicKey, VerifyingKey>>> =
        std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    if let Some(k) = keys.lock().expect("key cache").get(key) {
        return Ok(*k);
    }
    let k = key.verifying_key()?;
    let mut cache = keys.lock().expect("key cache");
    if cache.len() >= MAX_KEYS {
        cache.clear();
    }
    cache.insert(*key, k);
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    fn batch(
        seed: u64,
        signers: usize,
        count: usize,
    ) -> (Vec<Vec<u8>>, Vec<Signature>, Vec<VerifyingKey>) {
        let keys: Vec<SigningKey> = (0..signers)
            .map(|i| {
                let mut secret = [0u8; 32];
                secret[..8].copy_from_slice(&seed.to_le_bytes());
                secret[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                SigningKey::from_bytes(&secret)
            })
            .collect();
        let mut messages = Vec::new();
        let mut signatures = Vec::new();
        let mut verifying = Vec::new();
        for i in 0..count {
            let key = &keys[(i * 7 + seed as usize) % signers];
            let message = format!("tx {seed} {i}").into_bytes();
            signatures.push(key.sign(&message));
            verifying.push(key.verifying_key());
            messages.push(message);
        }
        (messages, signatures, verifying)
    }

    /// Ours and dalek's, on the same input: both accept or both refuse.
    fn agree(messages: &[Vec<u8>], signatures: &[Signature], keys: &[VerifyingKey]) -> bool {
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let ours = verify_batch(&refs, signatures, keys).is_ok();
        let dalek = ed25519_dalek::verify_batch(&refs, signatures, keys).is_ok();
        assert_eq!(ours, dalek, "our batch check and dalek's disagree");
        ours
    }

    #[test]
    fn good_batches_verify_with_repeated_and_distinct_signers() {
        for (signers, count) in [(1, 1), (1, 50), (3, 64), (40, 40), (32, 300)] {
            let (m, s, k) = batch(signers as u64, signers, count);
            assert!(agree(&m, &s, &k), "{signers} signers, {count} signatures");
        }
    }

    #[test]
    fn lengths_must_match() {
        let (m, s, k) = batch(1, 2, 4);
        let refs: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
        assert!(matches!(
            verify_batch(&refs[..3], &s, &k),
            Err(BatchError::Lengths { .. })
        ));
    }

    proptest! {
        /// A tampered message, signature byte, or key is refused by both checks alike.
        #[test]
        fn tampering_is_judged_like_dalek(
            seed in 0u64..1000,
            signers in 1usize..6,
            count in 1usize..40,
            victim in 0usize..40,
            what in 0u8..4,
            byte in 0usize..64,
            flip in 1u8..=255,
        ) {
            let (mut m, mut s, mut k) = batch(seed, signers, count);
            let victim = victim % count;
            let other = (victim + 1) % count;
            let same_signer = k[victim] == k[other];
            match what {
                0 => m[victim].push(flip),
                1 => {
                    let mut bytes = s[victim].to_bytes();
                    bytes[byte] ^= flip;
                    s[victim] = Signature::from_bytes(&bytes);
                }
                2 => k[victim] = k[other],
                _ => {
                    // s + ℓ: the same scalar, not canonical.
                    let mut bytes = s[victim].to_bytes();
                    let s_reduced = Scalar::from_bytes_mod_order(bytes[32..].try_into().unwrap());
                    let l: [u8; 32] = [
                        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2,
                        0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
                    ];
                    let mut sum = [0u8; 32];
                    let mut carry = 0u16;
                    for i in 0..32 {
                        let v = u16::from(s_reduced.as_bytes()[i]) + u16::from(l[i]) + carry;
                        sum[i] = v as u8;
                        carry = v >> 8;
                    }
                    bytes[32..].copy_from_slice(&sum);
                    s[victim] = Signature::from_bytes(&bytes);
                }
            }
            let accepted = agree(&m, &s, &k);
            // Swapping in a key that is the same signer's changes nothing.
            prop_assert_eq!(accepted, what == 2 && same_signer);
        }
    }
}
