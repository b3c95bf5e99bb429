//! The validator's safety state on disk, next to its node key and outside `data/`.
//!
//! Consensus must never sign a message that conflicts with one it signed before, also across
//! restarts ([`SafetyState`]). The state used to live only in RocksDB under `data/`, so an
//! operator who restored `data/` from a backup (or a snapshot copied from another disk) also
//! rolled back the record of what the key had signed, and the node could then propose or vote
//! again at a height and round it had already signed: equivocation. The fault harness
//! (`tests/faults.rs`) restores old data directories to check this.
//!
//! The file is written whole and atomically (temporary file, fsync, rename, fsync of the
//! directory) before any message it covers leaves the node. At start the node takes the later
//! of the file and what RocksDB holds (homes written before this file existed).

use std::io::Write;
use std::path::{Path, PathBuf};

use caihong_chaincode::codec::{self, DecodeError};
use caihong_consensus::{Round, SafetyState, SignedProposal, SignedVote, Step, ValueId};
use serde::{Deserialize, Serialize};

/// The file's name in a home.
pub const FILE_NAME: &str = "signer_state.bin";

/// `HOME/signer_state.bin`.
pub fn path(home: &Path) -> PathBuf {
    home.join(FILE_NAME)
}

/// Writes `state` durably to `path`.
pub fn save(path: &Path, state: &SafetyState) -> std::io::Result<()> {
    let tmp = path.with_extension("bin.tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&codec::encode(state))?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The state in `path`; `None` if the file does not exist. A file that exists but does not
/// decode is an error: starting as if nothing had been signed could equivocate.
pub fn load(path: &Path) -> anyhow::Result<Option<SafetyState>> {
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "{} does not decode ({e}); it records what this node key signed, so the node \
                 will not start without it: restore it, or if the key never signed, delete it",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// A state in the current form, or in the form written before the valid value's
/// proof-of-lock was kept with it (consensus then restores the lock as its own valid value).
pub fn decode(bytes: &[u8]) -> Result<SafetyState, DecodeError> {
    codec::decode::<SafetyState>(bytes).or_else(|current| {
        codec::decode::<SafetyStateWithoutPol>(bytes)
            .map(SafetyState::from)
            .map_err(|_| current)
    })
}

/// [`SafetyState`] before `valid_pol`: the same fields, in the same order, without it.
#[derive(Serialize, Deserialize)]
struct SafetyStateWithoutPol {
    last_signed: Option<(u64, Round, Step)>,
    locked: Option<(Round, ValueId)>,
    valid: Option<(Round, ValueId)>,
    last_proposal: Option<SignedProposal>,
    last_prevote: Option<SignedVote>,
    last_precommit: Option<SignedVote>,
}

impl From<SafetyStateWithoutPol> for SafetyState {
    fn from(old: SafetyStateWithoutPol) -> Self {
        SafetyState {
            last_signed: old.last_signed,
            locked: old.locked,
            valid: old.valid,
            valid_pol: Vec::new(),
            last_proposal: old.last_proposal,
            last_prevote: old.last_prevote,
            last_precommit: old.last_precommit,
        }
    }
}

/// The state that has signed further; either may be missing.
pub fn later(a: Option<SafetyState>, b: Option<SafetyState>) -> Option<SafetyState> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.last_signed > a.last_signed { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caihong_consensus::Step;

    fn signed_at(height: u64, round: u32, step: Step) -> SafetyState {
        SafetyState {
            last_signed: Some((height, round, step)),
            ..SafetyState::default()
        }
    }

    #[test]
    fn saved_state_loads_back_and_replaces_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        assert_eq!(load(&p).unwrap(), None);
        save(&p, &signed_at(3, 0, Step::Prevote)).unwrap();
        save(&p, &signed_at(3, 1, Step::Precommit)).unwrap();
        assert_eq!(load(&p).unwrap(), Some(signed_at(3, 1, Step::Precommit)));
        assert!(!p.with_extension("bin.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_stops_the_node_rather_than_forgetting() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        std::fs::write(&p, b"\xff\xff\xff").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains("signer_state.bin") && e.contains("does not decode"),
            "{e}"
        );
    }

    #[test]
    fn a_state_written_before_the_proof_of_lock_was_kept_still_loads() {
        let lock = Some((0, caihong_consensus::Hash([0xA; 32])));
        let old = SafetyStateWithoutPol {
            last_signed: Some((7, 0, Step::Precommit)),
            locked: lock,
            valid: None,
            last_proposal: None,
            last_prevote: None,
            last_precommit: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        std::fs::write(&p, codec::encode(&old)).unwrap();
        let state = load(&p).unwrap().unwrap();
        assert_eq!(state.last_signed, Some((7, 0, Step::Precommit)));
        assert_eq!((state.locked, state.valid), (lock, None));
        assert!(state.valid_pol.is_empty());
        // The current form is read as itself, not as the old one.
        let current = SafetyState {
            valid: lock,
            ..state
        };
        save(&p, &current).unwrap();
        assert_eq!(load(&p).unwrap(), Some(current));
    }

    #[test]
    fn the_later_state_wins_whichever_side_it_is_on() {
        let old = signed_at(5, 0, Step::Precommit);
        let new = signed_at(9, 2, Step::Prevote);
        assert_eq!(
            later(Some(old.clone()), Some(new.clone())),
            Some(new.clone())
        );
        assert_eq!(
            later(Some(new.clone()), Some(old.clone())),
            Some(new.clone())
        );
        assert_eq!(later(None, Some(old.clone())), Some(old.clone()));
        assert_eq!(later(Some(old.clone()), None), Some(old));
        assert_eq!(later(None, None), None);
    }
}
