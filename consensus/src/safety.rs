//! Safety state: what a validator must remember across restarts so it never signs two
//! conflicting messages, and never forgets a lock.
//!
//! Consensus emits [`Output::PersistSafetyState`](crate::Output::PersistSafetyState)
//! immediately before every [`Output::Broadcast`](crate::Output::Broadcast) of a message it
//! has just signed, and when its valid value changes without a signature. The host must make
//! it durable (fsync) before that message leaves the node.
//! On restart the host passes the last persisted state to
//! [`Consensus::new`](crate::Consensus::new); consensus then refuses to sign anything at or
//! before the last signed `(height, round, step)` and resumes with the persisted lock, valid
//! value and proof-of-lock: a lock without a valid value to re-propose can stall the alliance
//! (docs/CONSENSUS.md).

use serde::{Deserialize, Serialize};

use crate::messages::{SignedProposal, SignedVote};
use crate::types::{Height, Round, Step, ValueId};

/// The persisted safety state of one validator.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct SafetyState {
    /// The last `(height, round, step)` this validator signed a message for; `None` if it has
    /// never signed. Signing is only allowed strictly after it (lexicographic order).
    pub last_signed: Option<(Height, Round, Step)>,
    /// `(lockedRound, lockedValue)` at `last_signed`'s height, if locked.
    pub locked: Option<(Round, ValueId)>,
    /// `(validRound, validValue)` at `last_signed`'s height (for liveness, not safety). Never
    /// older than `locked`: a node restarted with a lock must be able to re-propose it.
    pub valid: Option<(Round, ValueId)>,
    /// The 2f+1 prevotes for `valid` in its round: its proof-of-lock. Peers accept a
    /// re-proposal of the value only with them (L28), and after a restart they are nowhere
    /// else in this node's memory.
    pub valid_pol: Vec<SignedVote>,
    /// The last proposal signed, for rebroadcast after a restart.
    pub last_proposal: Option<SignedProposal>,
    /// The last prevote signed.
    pub last_prevote: Option<SignedVote>,
    /// The last precommit signed.
    pub last_precommit: Option<SignedVote>,
}

impl SafetyState {
    /// True if signing at `(height, round, step)` cannot conflict with anything signed before.
    pub fn may_sign(&self, height: Height, round: Round, step: Step) -> bool {
        match self.last_signed {
            None => true,
            Some(last) => (height, round, step) > last,
        }
    }

    /// Height this state is about, if anything was signed.
    pub fn height(&self) -> Option<Height> {
        self.last_signed.map(|(h, _, _)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_is_strictly_monotonic() {
        let mut s = SafetyState::default();
        assert!(s.may_sign(0, 0, Step::Propose));
        s.last_signed = Some((5, 2, Step::Prevote));
        assert!(!s.may_sign(5, 2, Step::Prevote));
        assert!(!s.may_sign(5, 2, Step::Propose));
        assert!(!s.may_sign(5, 1, Step::Precommit));
        assert!(!s.may_sign(4, 9, Step::Precommit));
        assert!(s.may_sign(5, 2, Step::Precommit));
        assert!(s.may_sign(5, 3, Step::Propose));
        assert!(s.may_sign(6, 0, Step::Propose));
    }
}
