//! One consensus height in memory: `n` validators, every message delivered at once to every
//! other, from `StartHeight` until all have decided. This is consensus's own cost per block
//! (signing and verifying proposals and votes, tallying), without network or storage.
//!
//! `cargo bench -p caihong-consensus --bench round`

use std::collections::VecDeque;

use caihong_consensus::{
    ChainId, Config, Consensus, Ed25519Signer, Hash, Input, Output, Signer, ValidatorSet,
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn signer(i: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed([i; 32])
}

fn validator_set(n: u8) -> ValidatorSet {
    ValidatorSet::equal_power((1..=n).map(|i| signer(i).public_key()))
        .expect("a valid validator set")
}

/// Runs height 1 to decision on every node; returns how many decided.
fn one_height(nodes: &mut [Consensus<Ed25519Signer>], set: &ValidatorSet) -> usize {
    let value = Hash([7; 32]);
    let mut queue: VecDeque<(usize, Input)> = (0..nodes.len())
        .map(|i| {
            (
                i,
                Input::StartHeight {
                    height: 1,
                    validators: set.clone(),
                },
            )
        })
        .collect();
    let mut decided = 0;
    while let Some((i, input)) = queue.pop_front() {
        for output in nodes[i].handle(input) {
            match output {
                Output::Broadcast(message) => {
                    for j in (0..nodes.len()).filter(|&j| j != i) {
                        queue.push_back((j, Input::from(message.clone())));
                    }
                }
                Output::GetValue { height, round } => queue.push_back((
                    i,
                    Input::ProposeValue {
                        height,
                        round,
                        value,
                    },
                )),
                Output::ValidateValue { height, value, .. } => queue.push_back((
                    i,
                    Input::ValidationResult {
                        height,
                        value,
                        valid: true,
                    },
                )),
                Output::Decide { .. } => decided += 1,
                _ => {}
            }
        }
    }
    decided
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("consensus");
    for n in [4u8, 7] {
        let set = validator_set(n);
        group.bench_function(format!("height_to_decision/{n}_validators"), |b| {
            b.iter_batched(
                || {
                    (1..=n)
                        .map(|i| {
                            Consensus::new(
                                Config::default(),
                                ChainId::new("bench"),
                                signer(i),
                                None,
                            )
                        })
                        .collect::<Vec<_>>()
                },
                |mut nodes| {
                    let decided = one_height(&mut nodes, &set);
                    assert_eq!(decided, n as usize, "every validator decides");
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(round, benches);
criterion_main!(round);
