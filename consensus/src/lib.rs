//! # caihong-consensus
//!
//! Tendermint BFT (Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus", 2018,
//! Algorithm 1) as a pure state machine: no clocks, threads, sockets or disks. The node hosts
//! it; this crate decides. `n = 3f+1` or more validators, weighted by voting power, agree on one
//! value (block hash) per height while validators with up to `f` of the power (just under a third)
//! behave arbitrarily.
//!
//! # Layout
//! - [`types`]: heights, rounds, [`Hash`]/[`ValueId`], [`PublicKey`], [`Signature`], [`ChainId`].
//! - [`crypto`]: the [`Signer`] trait, [`Ed25519Signer`], domain-separated sign bytes.
//! - [`validators`]: [`ValidatorSet`] with voting power, quorums and weighted round-robin
//!   proposer selection.
//! - [`messages`]: [`Proposal`], [`Vote`] and their signed forms; serde for gossip.
//! - [`certificate`]: [`CommitCertificate`], verifiable by anyone with the validator set.
//! - [`evidence`]: [`Evidence`] of equivocation, verifiable from the two messages alone.
//! - [`safety`]: [`SafetyState`], what must survive a crash so a validator never double-signs.
//! - [`consensus`]: [`Consensus`], the state machine, with its [`Input`] and [`Output`] enums.
//!
//! # Hosting consensus
//! The host (the node) owns the clock, the network, the disk and the blocks. It creates one
//! [`Consensus`] per process, feeds it [`Input`]s one at a time, and carries out the returned
//! [`Output`]s **in order** (like raft-rs' ready loop):
//!
//! | output | the host must |
//! |---|---|
//! | [`Output::PersistSafetyState`] | write it durably (fsync) **before** doing any later output; it always precedes the broadcast of a message just signed, and also comes alone when the valid value changes |
//! | [`Output::Broadcast`] | send the message to every validator and follower (consensus has already counted its own; do not loop it back) |
//! | [`Output::ScheduleTimeout`] | feed [`Input::Timeout`] after the given duration; stale timeouts are ignored, so nothing needs cancelling |
//! | [`Output::GetValue`] | build a block and answer [`Input::ProposeValue`] with its hash; disseminate the block body itself |
//! | [`Output::ValidateValue`] | fetch and check the block (re-execute it) and answer [`Input::ValidationResult`] |
//! | [`Output::Decide`] | store block + [`CommitCertificate`] atomically, then feed [`Input::StartHeight`] for the next height with its [`ValidatorSet`] |
//! | [`Output::Evidence`] | keep and gossip it; [`Evidence::verify`] lets anyone check it |
//!
//! ## Start and restart
//! [`Consensus::new`] takes the config, chain id, a [`Signer`] and the last persisted
//! [`SafetyState`] (`None` on first start). Then feed [`Input::StartHeight`] with the first
//! height not yet stored and its validator set. If the safety state is about that height, the
//! node resumes in the round and step it last signed, with its lock, its valid value and that
//! value's proof-of-lock (so it can still re-propose it, L15-L16), and will not sign anything
//! at or before the last signed `(height, round, step)`: a restarted node never double-signs,
//! and a node that lost its safety state must not be restarted as a validator.
//!
//! ## Validator set changes
//! Each [`Input::StartHeight`] carries that height's set; the host derives it from committed
//! chain state so all nodes agree. A node whose key is not in the set follows as an observer:
//! it counts votes and decides, but signs nothing.
//!
//! ## Catching up
//! Messages for the next height are buffered (bounded) until it starts; anything further ahead
//! is dropped. The host serves catch-up in both directions:
//! - when it receives a message for a height it has already decided, it sends that peer the
//!   commit certificates (and blocks) from that height on: the peer is behind, and the nodes
//!   ahead of it may be followers of the next height that send nothing it could notice;
//! - when it sees a peer at a higher height, it asks that peer for what it misses.
//!
//! It feeds received certificates one height at a time as [`Input::CommitCertificate`]:
//! consensus verifies each against the height's set and decides it, and the host answers the
//! [`Output::Decide`] as usual. Anyone else (an outside region, a
//! light client) can check a decided block hash with [`CommitCertificate::verify`].
//!
//! ## Liveness beyond the paper
//! Rounds are skipped on `f+1` power of messages from a higher round (L55); timeouts grow
//! linearly with the round ([`Config::timeout`]); when a round stalls, the node rebroadcasts its
//! own latest proposal and votes ([`TimeoutKind::Rebroadcast`]); and lagging nodes catch up by
//! certificate.
//!
//! # Example: one validator deciding three heights
//! ```
//! use caihong_consensus::*;
//! use std::collections::VecDeque;
//!
//! let chain = ChainId::new("caihong-doc");
//! let signer = Ed25519Signer::from_seed([7; 32]);
//! let set = ValidatorSet::equal_power([signer.public_key()]).unwrap();
//! let mut node = Consensus::new(Config::default(), chain, signer, None);
//! let mut inputs = VecDeque::from([Input::StartHeight { height: 1, validators: set.clone() }]);
//! let mut persisted = None;
//! let mut decided = Vec::new();
//! while let Some(input) = inputs.pop_front() {
//!     for output in node.handle(input) {
//!         match output {
//!             Output::PersistSafetyState(s) => persisted = Some(*s), // fsync here
//!             Output::Broadcast(_msg) => {}                         // gossip to peers
//!             Output::ScheduleTimeout { .. } => {}                  // arm a timer
//!             Output::GetValue { height, round } => {
//!                 let value = Hash::digest(format!("block {height}").as_bytes());
//!                 inputs.push_back(Input::ProposeValue { height, round, value });
//!             }
//!             Output::ValidateValue { height, value, .. } => {
//!                 inputs.push_back(Input::ValidationResult { height, value, valid: true });
//!             }
//!             Output::Decide { height, value, certificate } => {
//!                 assert!(certificate.verify(&set, &ChainId::new("caihong-doc")).is_ok());
//!                 decided.push((height, value));
//!                 if height < 3 {
//!                     inputs.push_back(Input::StartHeight { height: height + 1, validators: set.clone() });
//!                 }
//!             }
//!             Output::Evidence(_) => {}
//!         }
//!     }
//! }
//! assert_eq!(decided.len(), 3);
//! assert_eq!(persisted.unwrap().last_signed, Some((3, 0, Step::Precommit)));
//! ```
//!
//! # Errors
//! - Inputs are never trusted: a bad signature, a vote from a non-validator, a malformed or
//!   stale message is dropped (and equivocation reported as [`Output::Evidence`]); nothing a
//!   peer sends can make [`Consensus::handle`] fail or panic.
//! - What a caller hands in that cannot be used returns a typed error: [`ValidatorSetError`],
//!   [`CertificateError`], [`EvidenceError`].
//! - Panics (`expect`, `unreachable!`, `debug_assert!`) only mark this crate's own invariants,
//!   such as "a running height has a validator set" or "a lock comes with a valid value"; one
//!   firing is a bug here, never bad input.
//!
//! # Testing
//! `tests/sim` is a deterministic, seeded simulator of many nodes over a faulty network with
//! Byzantine validators, crashes and validator set changes; it checks agreement, validity,
//! no double signing, certificate validity, termination and, at every step, that a lock comes
//! with a valid value at least as recent (persisted with its proof-of-lock). Run long sweeps
//! with `cargo run -p caihong-consensus --release --example simulate -- --help`, and sweeps at
//! scale (100,000 seeds over n = 4, 7, 10 on every core) with `consensus/run-sim.sh`; results
//! are in `docs/CONSENSUS.md`. Earlier long runs with all faults on and f Byzantine validators
//! printed:
//!
//! ```text
//! --validators 4 --seeds 300 --heights 100 --faults
//! seeds=300 heights=30000 safety_violations=0 liveness_failures=0
//! --validators 7 --seeds 40 --heights 100 --faults
//! seeds=40 heights=4000 safety_violations=0 liveness_failures=0
//! --validators 10 --seeds 20 --heights 100 --faults
//! seeds=20 heights=2000 safety_violations=0 liveness_failures=0
//! ```

pub mod certificate;
pub mod consensus;
pub mod crypto;
pub mod evidence;
pub mod messages;
pub mod safety;
pub mod types;
pub mod validators;
mod vote_keeper;

pub use certificate::{CertificateError, CommitCertificate, CommitSig};
pub use consensus::{Config, Consensus, Input, Output, Timeout, TimeoutKind};
pub use crypto::{Ed25519Signer, Signer, verify_signature};
pub use evidence::{Evidence, EvidenceError};
pub use messages::{Message, Proposal, SignedProposal, SignedVote, Vote};
pub use safety::SafetyState;
pub use types::{ChainId, Hash, Height, PublicKey, Round, Signature, Step, ValueId, VoteKind};
pub use validators::{MAX_TOTAL_POWER, Validator, ValidatorSet, ValidatorSetError};
