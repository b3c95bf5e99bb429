//! Validator sets: membership, voting power, quorum thresholds and proposer selection.
//!
//! A set is fixed for one height; the host hands consensus the set for each height it starts
//! (membership changes take effect at a height all members agree on, from chain state).
//!
//! # Proposer selection
//! Smooth weighted round robin (the nginx / CometBFT priority scheme without its state): over
//! a cycle of `total_power / gcd(powers)` slots every validator proposes exactly in proportion to
//! its power, spread out rather than in runs. Slot `(height + round) mod cycle` proposes at
//! `(height, round)`, so the choice is a pure function of the set, height and round: every
//! honest node agrees on it without extra state, and a failed round hands over to the next slot.

use serde::{Deserialize, Serialize};

use crate::types::{Height, PublicKey, Round};

/// Largest allowed total voting power. Powers are small integer weights (alliance members
/// usually have 1 each); the bound keeps the precomputed proposer cycle small.
pub const MAX_TOTAL_POWER: u64 = 10_000;

/// One validator: its ed25519 key and voting power.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Validator {
    /// The key that signs its proposals and votes.
    pub public_key: PublicKey,
    /// Voting power (> 0).
    pub power: u64,
}

/// Why a validator set was rejected.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators.
    #[error("a validator set needs at least one validator")]
    Empty,
    /// A validator with power 0.
    #[error("validator {0} has zero voting power")]
    ZeroPower(PublicKey),
    /// The same key twice.
    #[error("validator {0} appears twice")]
    Duplicate(PublicKey),
    /// Total power above [`MAX_TOTAL_POWER`].
    #[error("total voting power {0} exceeds the maximum {MAX_TOTAL_POWER}")]
    TooMuchPower(u64),
}

/// The validators of one height, sorted by public key (so every node builds the same set from
/// the same membership, whatever order it was listed in).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "Vec<Validator>", into = "Vec<Validator>")]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
    /// Proposer index for each slot of one cycle.
    schedule: Vec<u16>,
}

impl TryFrom<Vec<Validator>> for ValidatorSet {
    type Error = ValidatorSetError;
    fn try_from(v: Vec<Validator>) -> Result<Self, Self::Error> {
        ValidatorSet::new(v)
    }
}

impl From<ValidatorSet> for Vec<Validator> {
    fn from(s: ValidatorSet) -> Self {
        s.validators
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl ValidatorSet {
    /// Build a set; validators are sorted by key. Errors on empty, zero power, duplicates or
    /// too much total power.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        validators.sort_by_key(|v| v.public_key);
        let mut total: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower(v.public_key));
            }
            if i > 0 && validators[i - 1].public_key == v.public_key {
                return Err(ValidatorSetError::Duplicate(v.public_key));
            }
            total = total.saturating_add(v.power);
        }
        if total > MAX_TOTAL_POWER || validators.len() > u16::MAX as usize {
            return Err(ValidatorSetError::TooMuchPower(total));
        }
        let g = validators.iter().fold(0, |g, v| gcd(g, v.power));
        let weights: Vec<i64> = validators.iter().map(|v| (v.power / g) as i64).collect();
        let cycle: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut schedule = Vec::with_capacity(cycle as usize);
        for _ in 0..cycle {
            let mut best = 0;
            for i in 0..weights.len() {
                current[i] += weights[i];
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= cycle;
            schedule.push(best as u16);
        }
        Ok(ValidatorSet {
            validators,
            total_power: total,
            schedule,
        })
    }

    /// Convenience: a set of equal-power (1) validators.
    pub fn equal_power(
        keys: impl IntoIterator<Item = PublicKey>,
    ) -> Result<Self, ValidatorSetError> {
        ValidatorSet::new(
            keys.into_iter()
                .map(|public_key| Validator {
                    public_key,
                    power: 1,
                })
                .collect(),
        )
    }

    /// The validators, sorted by key.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false (a set is never empty); for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Index of `key` in [`validators`](Self::validators), if a member.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.validators
            .binary_search_by_key(key, |v| v.public_key)
            .ok()
    }

    /// The validator with this key, if a member.
    pub fn get(&self, key: &PublicKey) -> Option<&Validator> {
        self.index_of(key).map(|i| &self.validators[i])
    }

    /// Voting power of `key` (0 if not a member).
    pub fn power_of(&self, key: &PublicKey) -> u64 {
        self.get(key).map_or(0, |v| v.power)
    }

    /// The proposer of `(height, round)`: the paper's `proposer(h, r)`.
    pub fn proposer(&self, height: Height, round: Round) -> &Validator {
        let len = self.schedule.len() as u64;
        let slot = (height % len + round as u64 % len) % len;
        &self.validators[self.schedule[slot as usize] as usize]
    }

    /// More than two thirds of the total power (the paper's `2f+1`).
    pub fn is_quorum(&self, power: u64) -> bool {
        3 * power > 2 * self.total_power
    }

    /// More than one third of the total power (the paper's `f+1`): at least one honest voter.
    pub fn is_one_third(&self, power: u64) -> bool {
        3 * power > self.total_power
    }

    /// The largest total power that may be Byzantine while the set stays safe (`f`).
    pub fn max_faulty_power(&self) -> u64 {
        (self.total_power - 1) / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> PublicKey {
        PublicKey([i; 32])
    }

    #[test]
    fn rejects_bad_sets() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let zero = vec![Validator {
            public_key: key(1),
            power: 0,
        }];
        assert_eq!(
            ValidatorSet::new(zero),
            Err(ValidatorSetError::ZeroPower(key(1)))
        );
        let dup = vec![
            Validator {
                public_key: key(1),
                power: 1,
            },
            Validator {
                public_key: key(1),
                power: 2,
            },
        ];
        assert_eq!(
            ValidatorSet::new(dup),
            Err(ValidatorSetError::Duplicate(key(1)))
        );
        let big = vec![Validator {
            public_key: key(1),
            power: MAX_TOTAL_POWER + 1,
        }];
        assert!(matches!(
            ValidatorSet::new(big),
            Err(ValidatorSetError::TooMuchPower(_))
        ));
    }

    #[test]
    fn thresholds_match_3f_plus_1() {
        let set = ValidatorSet::equal_power((0..4).map(key)).unwrap();
        assert_eq!(set.max_faulty_power(), 1);
        assert!(!set.is_quorum(2));
        assert!(set.is_quorum(3));
        assert!(!set.is_one_third(1));
        assert!(set.is_one_third(2));
        let set = ValidatorSet::equal_power((0..10).map(key)).unwrap();
        assert_eq!(set.max_faulty_power(), 3);
        assert!(!set.is_quorum(6));
        assert!(set.is_quorum(7));
        assert!(set.is_one_third(4));
    }

    #[test]
    fn proposer_rotation_is_weighted_and_fair() {
        let vals = vec![
            Validator {
                public_key: key(3),
                power: 3,
            },
            Validator {
                public_key: key(1),
                power: 1,
            },
            Validator {
                public_key: key(2),
                power: 2,
            },
        ];
        let set = ValidatorSet::new(vals.clone()).unwrap();
        // Order of input does not matter.
        let mut rev = vals;
        rev.reverse();
        assert_eq!(ValidatorSet::new(rev).unwrap(), set);
        let mut counts = std::collections::BTreeMap::new();
        for h in 0..600u64 {
            *counts.entry(set.proposer(h, 0).public_key).or_insert(0) += 1;
        }
        assert_eq!(counts[&key(1)], 100);
        assert_eq!(counts[&key(2)], 200);
        assert_eq!(counts[&key(3)], 300);
        // Smooth: the heaviest validator never proposes three slots in a row.
        let seq: Vec<_> = (0..6).map(|h| set.proposer(h, 0).public_key).collect();
        assert!(seq.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])));
        // A failed round hands over to someone else.
        assert_ne!(set.proposer(7, 0).public_key, set.proposer(7, 1).public_key);
    }

    #[test]
    fn serde_roundtrip_rebuilds_schedule() {
        let set = ValidatorSet::equal_power((0..5).map(key)).unwrap();
        let bytes = bincode::serialize(&set).unwrap();
        let back: ValidatorSet = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, set);
    }
}
