//! Vote keeper: the verified votes of one height, tallied per round, kind and value.
//!
//! It counts each validator once per (round, kind): a repeat of the same vote is a duplicate
//! and ignored; a different vote from the same validator is equivocation, reported once as
//! [`Evidence`] and not counted (the first vote stands). It also tracks, per round, the power
//! of validators that sent *any* message in that round, for the round skip (L55).

use std::collections::{BTreeMap, BTreeSet};

use crate::evidence::Evidence;
use crate::messages::SignedVote;
use crate::types::{PublicKey, Round, ValueId, VoteKind};

/// Result of adding a vote.
#[derive(Debug)]
pub(crate) enum AddVote {
    /// Counted.
    Added,
    /// Already had exactly this vote.
    Duplicate,
    /// Conflicts with an earlier vote of the same validator; evidence on the first conflict.
    Conflict(Option<Box<Evidence>>),
}

#[derive(Default, Debug)]
struct Tally {
    votes: BTreeMap<PublicKey, SignedVote>,
    power: BTreeMap<Option<ValueId>, u64>,
    total: u64,
    equivocators: BTreeSet<PublicKey>,
}

#[derive(Default, Debug)]
struct RoundVotes {
    prevotes: Tally,
    precommits: Tally,
    senders: BTreeSet<PublicKey>,
    sender_power: u64,
}

impl RoundVotes {
    fn tally(&self, kind: VoteKind) -> &Tally {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }
    fn tally_mut(&mut self, kind: VoteKind) -> &mut Tally {
        match kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        }
    }
}

/// All votes of the current height.
#[derive(Default, Debug)]
pub(crate) struct VoteKeeper {
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteKeeper {
    /// True if exactly this vote (same content and signature) is already stored.
    pub(crate) fn has(&self, vote: &SignedVote) -> bool {
        self.rounds
            .get(&vote.vote.round)
            .and_then(|r| r.tally(vote.vote.kind).votes.get(&vote.vote.validator))
            .is_some_and(|v| v == vote)
    }

    /// Add a vote whose signature and membership were checked; `power` is the voter's power.
    pub(crate) fn add(&mut self, vote: SignedVote, power: u64) -> AddVote {
        let v = &vote.vote;
        let (round, kind, who) = (v.round, v.kind, v.validator);
        let rv = self.rounds.entry(round).or_default();
        let tally = rv.tally_mut(kind);
        if let Some(existing) = tally.votes.get(&who) {
            if existing.vote == vote.vote {
                return AddVote::Duplicate;
            }
            if !tally.equivocators.insert(who) {
                return AddVote::Conflict(None);
            }
            let first = existing.clone();
            return AddVote::Conflict(Some(Box::new(Evidence::ConflictingVotes {
                first,
                second: vote,
            })));
        }
        *tally.power.entry(v.value).or_default() += power;
        tally.total += power;
        tally.votes.insert(who, vote);
        Self::note_sender_in(rv, who, power);
        AddVote::Added
    }

    /// Record that `who` sent some valid message (e.g. a proposal) in `round`.
    pub(crate) fn note_sender(&mut self, round: Round, who: PublicKey, power: u64) {
        let rv = self.rounds.entry(round).or_default();
        Self::note_sender_in(rv, who, power);
    }

    fn note_sender_in(rv: &mut RoundVotes, who: PublicKey, power: u64) {
        if rv.senders.insert(who) {
            rv.sender_power += power;
        }
    }

    /// Power of `kind` votes for `value` (`None` = nil) in `round`.
    pub(crate) fn power_for(&self, round: Round, kind: VoteKind, value: Option<ValueId>) -> u64 {
        self.rounds
            .get(&round)
            .and_then(|r| r.tally(kind).power.get(&value).copied())
            .unwrap_or(0)
    }

    /// Power of all `kind` votes in `round`, whatever their value.
    pub(crate) fn power_any(&self, round: Round, kind: VoteKind) -> u64 {
        self.rounds.get(&round).map_or(0, |r| r.tally(kind).total)
    }

    /// Power of validators that sent any message in `round`.
    pub(crate) fn sender_power(&self, round: Round) -> u64 {
        self.rounds.get(&round).map_or(0, |r| r.sender_power)
    }

    /// Rounds with any message, ascending.
    pub(crate) fn rounds(&self) -> impl DoubleEndedIterator<Item = Round> + '_ {
        self.rounds.keys().copied()
    }

    /// Values (not nil) with precommits in `round`, with their power.
    pub(crate) fn precommit_values(
        &self,
        round: Round,
    ) -> impl Iterator<Item = (ValueId, u64)> + '_ {
        self.rounds
            .get(&round)
            .into_iter()
            .flat_map(|r| r.precommits.power.iter())
            .filter_map(|(v, p)| v.map(|v| (v, *p)))
    }

    /// The stored `kind` votes of `round`.
    pub(crate) fn votes(
        &self,
        round: Round,
        kind: VoteKind,
    ) -> impl Iterator<Item = &SignedVote> + '_ {
        self.rounds
            .get(&round)
            .into_iter()
            .flat_map(move |r| r.tally(kind).votes.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Ed25519Signer, Signer};
    use crate::messages::Vote;
    use crate::types::{ChainId, Hash};

    fn vote(s: &Ed25519Signer, round: Round, kind: VoteKind, value: Option<ValueId>) -> SignedVote {
        Vote {
            kind,
            height: 1,
            round,
            value,
            validator: s.public_key(),
        }
        .sign(&ChainId::new("t"), s)
    }

    #[test]
    fn duplicates_count_once_and_equivocation_reports_once() {
        let a = Ed25519Signer::from_seed([1; 32]);
        let b = Ed25519Signer::from_seed([2; 32]);
        let x = Some(Hash([7; 32]));
        let y = Some(Hash([8; 32]));
        let mut k = VoteKeeper::default();
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, x), 2),
            AddVote::Added
        ));
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, x), 2),
            AddVote::Duplicate
        ));
        assert_eq!(k.power_for(0, VoteKind::Prevote, x), 2);
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, y), 2),
            AddVote::Conflict(Some(_))
        ));
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, None), 2),
            AddVote::Conflict(None)
        ));
        assert_eq!(k.power_for(0, VoteKind::Prevote, y), 0);
        assert_eq!(k.power_any(0, VoteKind::Prevote), 2);
        // Same validator, other kind or round: independent.
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Precommit, y), 2),
            AddVote::Added
        ));
        assert!(matches!(
            k.add(vote(&b, 1, VoteKind::Prevote, None), 1),
            AddVote::Added
        ));
        assert_eq!(k.sender_power(0), 2);
        assert_eq!(k.sender_power(1), 1);
        k.note_sender(1, b.public_key(), 1);
        assert_eq!(k.sender_power(1), 1);
        assert_eq!(
            k.precommit_values(0).collect::<Vec<_>>(),
            vec![(Hash([8; 32]), 2)]
        );
    }
}
