//! Evidence of equivocation: two signed messages from one validator for the same height,
//! round and step that differ. Anyone can check it from the two messages and the chain id.

use serde::{Deserialize, Serialize};

use crate::messages::{SignedProposal, SignedVote};
use crate::types::{ChainId, Height, PublicKey, Round};

/// Two conflicting signed messages from one validator.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Evidence {
    /// Two different prevotes (or precommits) for the same height and round.
    ConflictingVotes {
        /// The vote seen first.
        first: SignedVote,
        /// A different vote for the same height, round and kind.
        second: SignedVote,
    },
    /// Two different proposals for the same height and round.
    ConflictingProposals {
        /// The proposal seen first.
        first: SignedProposal,
        /// A different proposal for the same height and round.
        second: SignedProposal,
    },
}

/// Why evidence does not prove equivocation.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The two messages are from different signers.
    #[error("the two messages have different signers")]
    DifferentSigners,
    /// Different height, round or vote kind: not the same slot.
    #[error("the two messages are for different height, round or step")]
    DifferentSlot,
    /// The two messages are the same.
    #[error("the two messages are identical")]
    Identical,
    /// A signature does not verify on this chain.
    #[error("a signature does not verify on this chain")]
    BadSignature,
}

impl Evidence {
    /// The accused validator.
    pub fn offender(&self) -> PublicKey {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.validator,
            Evidence::ConflictingProposals { first, .. } => first.proposal.proposer,
        }
    }

    /// Height and round of the equivocation.
    pub fn height_round(&self) -> (Height, Round) {
        match self {
            Evidence::ConflictingVotes { first, .. } => (first.vote.height, first.vote.round),
            Evidence::ConflictingProposals { first, .. } => {
                (first.proposal.height, first.proposal.round)
            }
        }
    }

    /// Check the evidence stands on its own: same signer, same height/round/step, different
    /// content, both signatures valid on `chain_id`. Returns the offender. Whether the offender
    /// was a validator at that height is for the caller to check against its validator set.
    pub fn verify(&self, chain_id: &ChainId) -> Result<PublicKey, EvidenceError> {
        match self {
            Evidence::ConflictingVotes { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                if a.validator != b.validator {
                    return Err(EvidenceError::DifferentSigners);
                }
                if (a.height, a.round, a.kind) != (b.height, b.round, b.kind) {
                    return Err(EvidenceError::DifferentSlot);
                }
                if a.value == b.value {
                    return Err(EvidenceError::Identical);
                }
                if !first.verify_signature(chain_id) || !second.verify_signature(chain_id) {
                    return Err(EvidenceError::BadSignature);
                }
                Ok(a.validator)
            }
            Evidence::ConflictingProposals { first, second } => {
                let (a, b) = (&first.proposal, &second.proposal);
                if a.proposer != b.proposer {
                    return Err(EvidenceError::DifferentSigners);
                }
                if (a.height, a.round) != (b.height, b.round) {
                    return Err(EvidenceError::DifferentSlot);
                }
                if a == b {
                    return Err(EvidenceError::Identical);
                }
                if !first.verify_signature(chain_id) || !second.verify_signature(chain_id) {
                    return Err(EvidenceError::BadSignature);
                }
                Ok(a.proposer)
            }
        }
    }
}
