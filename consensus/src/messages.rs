//! The signed messages validators gossip: proposals and votes.

use serde::{Deserialize, Serialize};

use crate::crypto::{Signer, sign_bytes, verify_signature};
use crate::types::{ChainId, Height, PublicKey, Round, Signature, Step, ValueId, VoteKind};

/// `⟨PROPOSAL, h, r, v, vr⟩`: the proposer of `(height, round)` proposes `value`; `pol_round` is
/// the paper's `validRound` (`None` for -1): a round in which >2/3 prevoted for `value`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// Id of the proposed value; the host carries the value itself.
    pub value: ValueId,
    /// Proof-of-lock round, if re-proposing a value that had a polka earlier.
    pub pol_round: Option<Round>,
    /// The proposer's key.
    pub proposer: PublicKey,
}

impl Proposal {
    /// The bytes the proposer signs.
    pub fn sign_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        sign_bytes(chain_id, b"proposal", self)
    }

    /// Sign with `signer` (whose key must be `self.proposer`).
    pub fn sign(self, chain_id: &ChainId, signer: &impl Signer) -> SignedProposal {
        let signature = signer.sign(&self.sign_bytes(chain_id));
        SignedProposal {
            proposal: self,
            signature,
        }
    }
}

/// A proposal with its signature.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// The proposer's signature over [`Proposal::sign_bytes`].
    pub signature: Signature,
}

impl SignedProposal {
    /// True if the signature is the proposer's over this proposal on `chain_id`.
    pub fn verify_signature(&self, chain_id: &ChainId) -> bool {
        verify_signature(
            &self.proposal.proposer,
            &self.proposal.sign_bytes(chain_id),
            &self.signature,
        )
    }
}

/// `⟨PREVOTE|PRECOMMIT, h, r, id(v) or nil⟩` from `validator`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The value voted for, or `None` for nil.
    pub value: Option<ValueId>,
    /// The voter's key.
    pub validator: PublicKey,
}

impl Vote {
    /// The bytes the voter signs.
    pub fn sign_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        sign_bytes(chain_id, b"vote", self)
    }

    /// Sign with `signer` (whose key must be `self.validator`).
    pub fn sign(self, chain_id: &ChainId, signer: &impl Signer) -> SignedVote {
        let signature = signer.sign(&self.sign_bytes(chain_id));
        SignedVote {
            vote: self,
            signature,
        }
    }
}

/// A vote with its signature.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The voter's signature over [`Vote::sign_bytes`].
    pub signature: Signature,
}

impl SignedVote {
    /// True if the signature is the voter's over this vote on `chain_id`.
    pub fn verify_signature(&self, chain_id: &ChainId) -> bool {
        verify_signature(
            &self.vote.validator,
            &self.vote.sign_bytes(chain_id),
            &self.signature,
        )
    }
}

/// Everything consensus broadcasts and receives.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// A signed proposal.
    Proposal(SignedProposal),
    /// A signed prevote or precommit.
    Vote(SignedVote),
}

impl Message {
    /// Height the message belongs to.
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(p) => p.proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }

    /// Round the message belongs to.
    pub fn round(&self) -> Round {
        match self {
            Message::Proposal(p) => p.proposal.round,
            Message::Vote(v) => v.vote.round,
        }
    }

    /// The signer's key.
    pub fn signer(&self) -> PublicKey {
        match self {
            Message::Proposal(p) => p.proposal.proposer,
            Message::Vote(v) => v.vote.validator,
        }
    }

    /// The step this message is signed at (used for double-sign accounting).
    pub fn step(&self) -> Step {
        match self {
            Message::Proposal(_) => Step::Propose,
            Message::Vote(v) => v.vote.kind.step(),
        }
    }

    /// The value the message is about (`None` for a nil vote).
    pub fn value(&self) -> Option<ValueId> {
        match self {
            Message::Proposal(p) => Some(p.proposal.value),
            Message::Vote(v) => v.vote.value,
        }
    }

    /// True if the signature is valid for `chain_id`.
    pub fn verify_signature(&self, chain_id: &ChainId) -> bool {
        match self {
            Message::Proposal(p) => p.verify_signature(chain_id),
            Message::Vote(v) => v.verify_signature(chain_id),
        }
    }
}
