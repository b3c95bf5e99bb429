//! Vote keeper: the verified votes of one height, tallied per round, kind and value.
//!
//! A repeat of the same vote is a duplicate and ignored. A different vote from the same
//! validator for the same (round, kind) is equivocation, reported once as [`Evidence`].
//!
//! # Counting equivocators
//! "Any" thresholds (L34, L47) count each validator once. Per-value thresholds count each
//! validator once *per value*: an equivocator's vote for `v` counts towards `v` even if we saw
//! its vote for `w` first, when the caller says `v` is of interest (nil, or a value some
//! proposal of this height carries). Safety does not suffer — two >2/3 quorums still share
//! more than 1/3 of the power, so an honest validator, and honest validators never vote twice
//! — but liveness needs it: otherwise a Byzantine validator that sends different prevotes to
//! different nodes makes a proof-of-lock that one honest node counted uncountable for another,
//! and two honest nodes locked on different values can wait for each other forever. The
//! "of interest" filter keeps junk votes from filling memory.
//!
//! It also tracks, per round, the power of validators that sent *any* message in that round,
//! for the round skip (L55).

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
    /// Each validator's votes: the first, then conflicting ones of interest.
    votes: BTreeMap<PublicKey, Vec<SignedVote>>,
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
            .is_some_and(|vs| vs.contains(vote))
    }

    /// Add a vote whose signature and membership were checked; `power` is the voter's power.
    pub(crate) fn add(&mut self, vote: SignedVote, power: u64, of_interest: bool) -> AddVote {
        let v = &vote.vote;
        let (round, kind, who, value) = (v.round, v.kind, v.validator, v.value);
        let rv = self.rounds.entry(round).or_default();
        let tally = rv.tally_mut(kind);
        if let Some(existing) = tally.votes.get_mut(&who) {
            if existing.iter().any(|e| e.vote == vote.vote) {
                return AddVote::Duplicate;
            }
            let evidence = tally.equivocators.insert(who).then(|| {
                Box::new(Evidence::ConflictingVotes {
                    first: existing[0].clone(),
                    second: vote.clone(),
                })
            });
            if of_interest {
                existing.push(vote);
                *tally.power.entry(value).or_default() += power;
            }
            return AddVote::Conflict(evidence);
        }
        *tally.power.entry(value).or_default() += power;
        tally.total += power;
        tally.votes.insert(who, vec![vote]);
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
            .flat_map(move |r| r.tally(kind).votes.values().flatten())
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
    fn duplicates_count_once_and_equivocation_reports_once_and_counts_per_value() {
        let a = Ed25519Signer::from_seed([1; 32]);
        let b = Ed25519Signer::from_seed([2; 32]);
        let x = Some(Hash([7; 32]));
        let y = Some(Hash([8; 32]));
        let mut k = VoteKeeper::default();
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, x), 2, true),
            AddVote::Added
        ));
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, x), 2, true),
            AddVote::Duplicate
        ));
        assert_eq!(k.power_for(0, VoteKind::Prevote, x), 2);
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, y), 2, true),
            AddVote::Conflict(Some(_))
        ));
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, None), 2, false),
            AddVote::Conflict(None)
        ));
        // The equivocator counts once per value of interest, once in "any".
        assert_eq!(k.power_for(0, VoteKind::Prevote, x), 2);
        assert_eq!(k.power_for(0, VoteKind::Prevote, y), 2);
        assert_eq!(k.power_for(0, VoteKind::Prevote, None), 0);
        assert_eq!(k.power_any(0, VoteKind::Prevote), 2);
        assert_eq!(k.votes(0, VoteKind::Prevote).count(), 2);
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Prevote, y), 2, true),
            AddVote::Duplicate
        ));
        // Same validator, other kind or round: independent.
        assert!(matches!(
            k.add(vote(&a, 0, VoteKind::Precommit, y), 2, true),
            AddVote::Added
        ));
        assert!(matches!(
            k.add(vote(&b, 1, VoteKind::Prevote, None), 1, true),
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
