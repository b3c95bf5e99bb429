//! Commit certificates: >2/3 of the voting power precommitting one value in one round.
//!
//! A certificate is what makes a decision checkable by anyone who knows the validator set of
//! the height: an outside region syncing credit records, a node catching up, a light client.
//! [`CommitCertificate::verify`] needs nothing else.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::crypto::verify_batch;
use crate::messages::{SignedVote, Vote};
use crate::types::{ChainId, Height, PublicKey, Round, Signature, ValueId, VoteKind};
use crate::validators::ValidatorSet;

/// One validator's precommit signature inside a certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct CommitSig {
    /// The signer.
    pub validator: PublicKey,
    /// Its signature over the precommit `(height, round, Some(value))`.
    pub signature: Signature,
}

/// Proof that `value` was decided at `height`: precommits for it in `round` from validators
/// holding more than two thirds of the height's voting power.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Decided height.
    pub height: Height,
    /// Round whose precommits decided it.
    pub round: Round,
    /// The decided value's id (block hash).
    pub value: ValueId,
    /// Precommit signatures, sorted by validator key, one per validator.
    pub signatures: Vec<CommitSig>,
}

/// Why a certificate does not prove a decision.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CertificateError {
    /// A signer is not in the validator set.
    #[error("signer {0} is not a validator of this height")]
    UnknownValidator(PublicKey),
    /// A signer appears more than once.
    #[error("signer {0} appears more than once")]
    DuplicateSigner(PublicKey),
    /// Signers hold two thirds of the power or less.
    #[error("signers hold {signed} of {total} voting power; more than two thirds is needed")]
    InsufficientPower {
        /// Power of the (distinct, known) signers.
        signed: u64,
        /// Total power of the set.
        total: u64,
    },
    /// A signature does not verify.
    #[error("signature of {0} does not verify (wrong chain id, height, round or value?)")]
    BadSignature(PublicKey),
}

impl CommitCertificate {
    /// Build from precommits for `value` at `(height, round)`; others are skipped. Signatures
    /// are not re-checked here (consensus only stores verified votes).
    pub fn from_precommits<'a>(
        height: Height,
        round: Round,
        value: ValueId,
        votes: impl IntoIterator<Item = &'a SignedVote>,
    ) -> Self {
        let mut signatures: Vec<CommitSig> = votes
            .into_iter()
            .filter(|v| {
                let v = &v.vote;
                v.kind == VoteKind::Precommit
                    && v.height == height
                    && v.round == round
                    && v.value == Some(value)
            })
            .map(|v| CommitSig {
                validator: v.vote.validator,
                signature: v.signature,
            })
            .collect();
        signatures.sort_by_key(|s| s.validator);
        signatures.dedup_by_key(|s| s.validator);
        CommitCertificate {
            height,
            round,
            value,
            signatures,
        }
    }

    /// The precommit a signature in this certificate must be over.
    pub fn precommit_of(&self, validator: PublicKey) -> Vote {
        Vote {
            kind: VoteKind::Precommit,
            height: self.height,
            round: self.round,
            value: Some(self.value),
            validator,
        }
    }

    /// The signed precommits this certificate carries (e.g. to feed them as votes).
    pub fn precommits(&self) -> impl Iterator<Item = SignedVote> + '_ {
        self.signatures.iter().map(|s| SignedVote {
            vote: self.precommit_of(s.validator),
            signature: s.signature,
        })
    }

    /// Check that this certificate proves `value` was decided at `height`, given the validator
    /// set of that height and the chain id: every signer is a distinct member, they hold more
    /// than two thirds of the power, and every signature verifies. Light-client style: it needs
    /// no other state.
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        chain_id: &ChainId,
    ) -> Result<(), CertificateError> {
        let mut seen = BTreeSet::new();
        let mut power = 0u64;
        for s in &self.signatures {
            let p = validators.power_of(&s.validator);
            if p == 0 {
                return Err(CertificateError::UnknownValidator(s.validator));
            }
            if !seen.insert(s.validator) {
                return Err(CertificateError::DuplicateSigner(s.validator));
            }
            power += p;
        }
        if !validators.is_quorum(power) {
            return Err(CertificateError::InsufficientPower {
                signed: power,
                total: validators.total_power(),
            });
        }
        let items: Vec<_> = self
            .signatures
            .iter()
            .map(|s| {
                (
                    s.validator,
                    self.precommit_of(s.validator).sign_bytes(chain_id),
                    s.signature,
                )
            })
            .collect();
        if verify_batch(&items) {
            return Ok(());
        }
        // Find the culprit for a useful error.
        for (k, m, s) in &items {
            if !crate::crypto::verify_signature(k, m, s) {
                return Err(CertificateError::BadSignature(*k));
            }
        }
        // Batch and single verification disagree only on adversarial edge cases; refuse.
        Err(CertificateError::BadSignature(items[0].0))
    }
}
