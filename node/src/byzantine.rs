//! A misbehaving member, for tests only: compiled with the `byzantine` cargo feature, which
//! release builds do not have, and switched on by `CAIHONG_BYZANTINE` at start.
//!
//! `CAIHONG_BYZANTINE` is a comma-separated list of:
//! - `equivocate`: as proposer, also sign and send a second proposal for the same height and
//!   round with another value;
//! - `double-vote`: after every prevote or precommit, sign and send a conflicting one (nil for
//!   a value, a made-up value for nil);
//! - `bad-state-root`: propose blocks whose header carries a wrong state root;
//! - `corrupt-snapshots`: serve state snapshot chunks with one value changed (a node starting
//!   by state sync must refuse them and finish from the other members);
//! - `crash-after-lock`: not a misbehaviour but a crash no outside signal can time: when the
//!   file `HOME/crash-after-lock` exists and the safety state just persisted is a precommit
//!   that locked in its own round, delete the file and abort, so the lock is on disk and the
//!   precommit never left (tests/locked.rs arms it once per crash).
//!
//! Honest members must stay safe and live, refuse the bad blocks, and keep verifiable evidence
//! of the equivocation (tests/byzantine.rs).

use std::path::{Path, PathBuf};

use caihong_chaincode::Hash;
use caihong_consensus::{ChainId, Ed25519Signer, Message, SafetyState, Step, ValueId};
use ed25519_dalek::SigningKey;

use crate::block::Header;

#[derive(Debug)]
pub struct Byzantine {
    equivocate: bool,
    double_vote: bool,
    bad_state_root: bool,
    corrupt_snapshots: bool,
    /// The arming file of `crash-after-lock`.
    crash_after_lock: Option<PathBuf>,
    signer: Ed25519Signer,
    chain_id: ChainId,
}

impl Byzantine {
    /// The behaviours `CAIHONG_BYZANTINE` asks for; `None` if unset. An unknown word is an
    /// error, so a misspelt test does not pass by behaving honestly.
    pub fn from_env(
        key: &SigningKey,
        chain_id: &str,
        home: &Path,
    ) -> anyhow::Result<Option<Byzantine>> {
        let Ok(list) = std::env::var("CAIHONG_BYZANTINE") else {
            return Ok(None);
        };
        let mut b = Byzantine {
            equivocate: false,
            double_vote: false,
            bad_state_root: false,
            corrupt_snapshots: false,
            crash_after_lock: None,
            signer: Ed25519Signer::new(key.clone()),
            chain_id: ChainId::new(chain_id.to_string()),
        };
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "equivocate" => b.equivocate = true,
                "double-vote" => b.double_vote = true,
                "bad-state-root" => b.bad_state_root = true,
                "corrupt-snapshots" => b.corrupt_snapshots = true,
                "crash-after-lock" => b.crash_after_lock = Some(home.join("crash-after-lock")),
                other => anyhow::bail!(
                    "CAIHONG_BYZANTINE: unknown behaviour {other:?} (equivocate, double-vote, \
                     bad-state-root, corrupt-snapshots, crash-after-lock)"
                ),
            }
        }
        tracing::warn!(behaviours = %list, "BYZANTINE TEST BUILD: this member misbehaves on purpose");
        Ok(Some(b))
    }

    /// Messages conflicting with `sent`, which this member just signed and sent.
    pub fn conflicting(&self, sent: &Message) -> Vec<Message> {
        match sent {
            Message::Proposal(p) if self.equivocate => {
                let mut other = p.proposal.clone();
                other.value = other_value(Some(other.value));
                vec![Message::Proposal(other.sign(&self.chain_id, &self.signer))]
            }
            Message::Vote(v) if self.double_vote => {
                let mut other = v.vote.clone();
                other.value = match other.value {
                    Some(_) => None,
                    None => Some(other_value(None)),
                };
                vec![Message::Vote(other.sign(&self.chain_id, &self.signer))]
            }
            _ => Vec::new(),
        }
    }

    /// `crash-after-lock`: aborts if armed and `persisted` locked in the round of the
    /// precommit it records (called after the state is on disk, before the precommit is sent).
    pub fn crash_if_armed(&self, persisted: &SafetyState) {
        let Some(arm) = &self.crash_after_lock else {
            return;
        };
        let fresh_lock = matches!(
            (persisted.last_signed, persisted.locked),
            (Some((_, round, Step::Precommit)), Some((locked_round, _))) if round == locked_round
        );
        if fresh_lock && std::fs::remove_file(arm).is_ok() {
            eprintln!(
                "BYZANTINE TEST BUILD: crash-after-lock: aborting after persisting {:?}",
                persisted.last_signed
            );
            std::process::abort();
        }
    }

    /// Spoils a header this member is about to propose.
    pub fn corrupt_header(&self, header: &mut Header) {
        if self.bad_state_root {
            header.state_root = Hash::of(&header.state_root.0);
        }
    }
}

/// A value id no honest member proposed.
fn other_value(value: Option<ValueId>) -> ValueId {
    let seed = value.map(|v| v.0).unwrap_or([0; 32]);
    caihong_consensus::Hash(Hash::of_parts(&[&seed, b"byzantine"]).0)
}

impl Byzantine {
    /// Whether this member serves state snapshot chunks with a value changed.
    pub fn corrupts_snapshots(&self) -> bool {
        self.corrupt_snapshots
    }
}
