//! The draw (抽取算法): a pure function from a seed and the eligible
//! candidates to the picks, written so that another region can re-implement
//! it byte for byte and check any extraction from chain data alone.
//!
//! # Algorithm (version 1)
//!
//! Inputs: a 32-byte `seed`, the requesting member, `min_outside` (0 when the
//! evaluation is not remote), and per requirement `i` (in request order) its
//! `count`, `backups` and candidate list `C_i`: the eligible experts sorted
//! ascending by their 32-byte id (see [`super::extraction`] for eligibility).
//! Candidate lists are stored in the extraction record.
//!
//! 1. **Random stream.** Requirement `i` has its own stream of 64-bit words.
//!    Block `k` (k = 0, 1, 2, …) is `SHA-256(seed ‖ u32_be(i) ‖ u64_be(k))`;
//!    each block gives four words, read big-endian from bytes 0..8, 8..16,
//!    16..24 and 24..32, used in that order.
//! 2. **Uniform index** in `[0, n)`: let `zone = floor((2^64 − 1) / n) · n`;
//!    take the next word `x`; if `x >= zone` discard it and take another
//!    (rejection sampling, so no index is favoured); the index is `x mod n`.
//! 3. **Shuffle** (Fisher–Yates, Durstenfeld's form): copy `C_i`; for
//!    `j = len − 1` down to `1`: `r = uniform(j + 1)`, swap positions `j` and
//!    `r`. The result, read from position 0, is the draw order.
//! 4. **Primaries.** Walk the draw order, skipping experts already picked in
//!    this extraction (as a primary or backup of an earlier requirement).
//!    Insiders are experts whose home is the requesting member. With
//!    `need = max(0, min_outside − outsiders picked as primaries so far −
//!    Σ count of later requirements)`, at most `count − need` insiders are
//!    taken; further insiders are skipped. Stop at `count`.
//! 5. **Backups.** Walk the draw order again from the start and take the
//!    first `backups` experts not already picked (insiders skipped in step 4
//!    included: backups have no cap; promotion checks the outside rule).
//! 6. If step 4 or 5 cannot take enough, the whole draw fails with a reason
//!    and no expert is picked.
//!
//! # Design
//!
//! The insider cap is greedy: it reserves outside seats only as late as the
//! remaining requirements allow. It never makes a draw fail that could meet
//! the outside minimum with later requirements' outsiders, but it is not an
//! optimal assignment; a failure names the requirement that ran out.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::members::MemberId;
use crate::types::Hash;

/// An eligible expert as the draw sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Candidate {
    pub id: Hash,
    pub home: MemberId,
}

/// What one requirement asks of the draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub count: u32,
    pub backups: u32,
}

/// The experts drawn for one requirement, in draw order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picks {
    pub primaries: Vec<Hash>,
    pub backups: Vec<Hash>,
}

/// Why a draw could not be completed; `requirement` is 0-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrawFailure {
    /// Too few candidates left for the requirement's primaries or backups.
    TooFew {
        requirement: usize,
        eligible: usize,
        available: usize,
        count: u32,
        backups: u32,
    },
    /// The outside minimum of a remote evaluation cannot be reached.
    Outside {
        requirement: usize,
        required_outside: u32,
        seated_outside: u32,
        min_outside: u32,
    },
}

/// A stream of uniform 64-bit words from a seed and a stream index.
#[derive(Debug, Clone)]
pub struct Stream {
    seed: Hash,
    index: u32,
    block: u64,
    words: [u64; 4],
    used: usize,
}

impl Stream {
    pub fn new(seed: &Hash, index: u32) -> Stream {
        Stream {
            seed: *seed,
            index,
            block: 0,
            words: [0; 4],
            used: 4,
        }
    }

    pub fn next_word(&mut self) -> u64 {
        if self.used == 4 {
            let h = Hash::of_parts(&[
                &self.seed.0,
                &self.index.to_be_bytes(),
                &self.block.to_be_bytes(),
            ]);
            for (w, chunk) in self.words.iter_mut().zip(h.0.chunks_exact(8)) {
                *w = u64::from_be_bytes(chunk.try_into().expect("8-byte chunk"));
            }
            self.block += 1;
            self.used = 0;
        }
        let w = self.words[self.used];
        self.used += 1;
        w
    }

    /// A uniform index in `[0, n)`, by rejection sampling. `n` must be ≥ 1.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n >= 1, "uniform index over an empty range");
        let zone = (u64::MAX / n) * n;
        loop {
            let x = self.next_word();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// Fisher–Yates shuffle of `items` driven by stream `index` of `seed`.
pub fn shuffle<T>(seed: &Hash, index: u32, items: &mut [T]) {
    let mut stream = Stream::new(seed, index);
    for j in (1..items.len()).rev() {
        let r = stream.below(j as u64 + 1) as usize;
        items.swap(j, r);
    }
}

/// Runs the draw: per requirement, `candidates[i]` sorted by id. One function because the
/// draw is the specification other regions re-derive: its steps read top to bottom in the
/// order they consume the seed's stream.
pub fn draw(
    seed: &Hash,
    requester: &MemberId,
    min_outside: u32,
    slots: &[Slot],
    candidates: &[Vec<Candidate>],
) -> Result<Vec<Picks>, DrawFailure> {
    assert_eq!(slots.len(), candidates.len(), "one candidate list per slot");
    let mut picked: BTreeSet<Hash> = BTreeSet::new();
    let mut outside_seated: u32 = 0;
    let mut result = Vec::with_capacity(slots.len());
    for (i, (slot, cands)) in slots.iter().zip(candidates).enumerate() {
        let mut order = cands.clone();
        shuffle(seed, i as u32, &mut order);
        let later: u64 = slots[i + 1..].iter().map(|s| u64::from(s.count)).sum();
        let need = u64::from(min_outside.saturating_sub(outside_seated)).saturating_sub(later);
        if need > u64::from(slot.count) {
            return Err(DrawFailure::Outside {
                requirement: i,
                required_outside: need as u32,
                seated_outside: 0,
                min_outside,
            });
        }
        let insider_cap = slot.count - need as u32;
        let available = order.iter().filter(|c| !picked.contains(&c.id)).count();
        let mut picks = Picks::default();
        let mut insiders = 0u32;
        let mut skipped_insiders = false;
        for c in &order {
            if picks.primaries.len() as u32 == slot.count {
                break;
            }
            if picked.contains(&c.id) {
                continue;
            }
            if &c.home == requester {
                if insiders == insider_cap {
                    skipped_insiders = true;
                    continue;
                }
                insiders += 1;
            } else {
                outside_seated += 1;
            }
            picks.primaries.push(c.id);
        }
        let seated = picks.primaries.len() as u32;
        if seated < slot.count {
            return Err(if skipped_insiders {
                DrawFailure::Outside {
                    requirement: i,
                    required_outside: need as u32,
                    seated_outside: seated - insiders,
                    min_outside,
                }
            } else {
                DrawFailure::TooFew {
                    requirement: i,
                    eligible: cands.len(),
                    available,
                    count: slot.count,
                    backups: slot.backups,
                }
            });
        }
        picked.extend(picks.primaries.iter().copied());
        for c in &order {
            if picks.backups.len() as u32 == slot.backups {
                break;
            }
            if picked.insert(c.id) {
                picks.backups.push(c.id);
            }
        }
        if (picks.backups.len() as u32) < slot.backups {
            return Err(DrawFailure::TooFew {
                requirement: i,
                eligible: cands.len(),
                available,
                count: slot.count,
                backups: slot.backups,
            });
        }
        result.push(picks);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(s: &str) -> MemberId {
        MemberId::parse(s).unwrap()
    }

    fn pool(n: usize, home: &str) -> Vec<Candidate> {
        let mut v: Vec<Candidate> = (0..n)
            .map(|i| Candidate {
                id: Hash::of(format!("{home}{i}").as_bytes()),
                home: member(home),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn stream_words_follow_the_documented_construction() {
        let seed = Hash::of(b"seed");
        let mut s = Stream::new(&seed, 7);
        let block0 = Hash::of_parts(&[&seed.0, &7u32.to_be_bytes(), &0u64.to_be_bytes()]);
        let block1 = Hash::of_parts(&[&seed.0, &7u32.to_be_bytes(), &1u64.to_be_bytes()]);
        for chunk in block0.0.chunks(8).chain(block1.0.chunks(8)) {
            assert_eq!(s.next_word(), u64::from_be_bytes(chunk.try_into().unwrap()));
        }
    }

    #[test]
    fn below_stays_in_range_and_is_roughly_uniform() {
        let mut s = Stream::new(&Hash::of(b"u"), 0);
        let mut counts = [0u32; 6];
        for _ in 0..6000 {
            counts[s.below(6) as usize] += 1;
        }
        for c in counts {
            assert!((850..1150).contains(&c), "{counts:?}");
        }
        assert_eq!(s.below(1), 0);
    }

    #[test]
    fn shuffle_is_a_permutation_and_depends_on_seed_and_stream() {
        let base: Vec<u32> = (0..20).collect();
        let mut a = base.clone();
        shuffle(&Hash::of(b"x"), 0, &mut a);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, base);
        let mut b = base.clone();
        shuffle(&Hash::of(b"x"), 0, &mut b);
        assert_eq!(a, b);
        let mut c = base.clone();
        shuffle(&Hash::of(b"x"), 1, &mut c);
        assert_ne!(a, c);
        let mut d = base.clone();
        shuffle(&Hash::of(b"y"), 0, &mut d);
        assert_ne!(a, d);
    }

    #[test]
    fn every_position_is_reachable_for_the_first_seat() {
        // Over many seeds each of 5 candidates comes first about 1/5 of the time.
        let mut first = [0u32; 5];
        for s in 0..2000u32 {
            let mut v: Vec<usize> = (0..5).collect();
            shuffle(&Hash::of(&s.to_be_bytes()), 0, &mut v);
            first[v[0]] += 1;
        }
        for f in first {
            assert!((320..480).contains(&f), "{first:?}");
        }
    }

    #[test]
    fn primaries_then_backups_without_repeats_across_requirements() {
        let cands = pool(10, "hohhot");
        let slots = [
            Slot {
                count: 3,
                backups: 1,
            },
            Slot {
                count: 2,
                backups: 2,
            },
        ];
        let req = member("hohhot");
        let picks = draw(
            &Hash::of(b"s"),
            &req,
            0,
            &slots,
            &[cands.clone(), cands.clone()],
        )
        .unwrap();
        let all: Vec<Hash> = picks
            .iter()
            .flat_map(|p| p.primaries.iter().chain(&p.backups))
            .copied()
            .collect();
        assert_eq!(all.len(), 8);
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 8);
        // The first requirement's primaries are the head of its shuffle.
        let mut order = cands.clone();
        shuffle(&Hash::of(b"s"), 0, &mut order);
        let head: Vec<Hash> = order[..3].iter().map(|c| c.id).collect();
        assert_eq!(picks[0].primaries, head);
        assert_eq!(picks[0].backups, vec![order[3].id]);
    }

    #[test]
    fn insider_cap_keeps_the_outside_minimum_reachable() {
        let mut cands = pool(6, "hohhot");
        cands.extend(pool(3, "baotou"));
        cands.sort();
        let slots = [Slot {
            count: 5,
            backups: 0,
        }];
        for s in 0..50u32 {
            let picks = draw(
                &Hash::of(&s.to_be_bytes()),
                &member("hohhot"),
                3,
                &slots,
                std::slice::from_ref(&cands),
            )
            .unwrap();
            let outside = picks[0]
                .primaries
                .iter()
                .filter(|id| {
                    cands
                        .iter()
                        .any(|c| &c.id == *id && c.home.as_str() != "hohhot")
                })
                .count();
            assert!(outside >= 3, "seed {s}: {outside} outside");
        }
        // Four outside needed, three exist: the draw fails whole.
        let err = draw(
            &Hash::of(b"z"),
            &member("hohhot"),
            4,
            &slots,
            std::slice::from_ref(&cands),
        )
        .unwrap_err();
        assert!(matches!(err, DrawFailure::Outside { .. }), "{err:?}");
    }

    #[test]
    fn too_few_candidates_fail_whole() {
        let cands = pool(4, "hohhot");
        let err = draw(
            &Hash::of(b"s"),
            &member("hohhot"),
            0,
            &[Slot {
                count: 3,
                backups: 2,
            }],
            &[cands],
        )
        .unwrap_err();
        assert_eq!(
            err,
            DrawFailure::TooFew {
                requirement: 0,
                eligible: 4,
                available: 4,
                count: 3,
                backups: 2
            }
        );
    }
}
