//! What one member may see of an extraction (see the threat model in [`super::extraction`]):
//! the sealed view everyone gets, a home's view of its own slots, the requester's view of the
//! whole committee, and the published view after the reveal. A node builds the view for its
//! own member with that member's encryption key; the record itself is the sealed view.

use serde::Serialize;
use x25519_dalek::StaticSecret;

use super::committee::{candidates, rederive, slot_experts};
use super::extraction::{Extraction, SeatSlot};
use super::seal::{self, REQUESTER_COPY};
use crate::members::MemberId;
use crate::state::StateReader;
use crate::types::Hash;

/// Which view is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewKind {
    /// What every member and reader sees before the reveal: no expert identifiers.
    Sealed,
    /// A home member's own slots, decrypted with its key.
    Home,
    /// The requesting member's whole committee, from its sealed copy of the secret.
    Requester,
    /// After the reveal: the whole committee, as verified by the chain.
    Published,
}

impl ViewKind {
    pub fn describe(self) -> &'static str {
        match self {
            ViewKind::Sealed => "sealed view (密封): who sits is secret until the award",
            ViewKind::Home => "home view: this member's own experts' slots only",
            ViewKind::Requester => "requester view: the whole committee, secret until the award",
            ViewKind::Published => "published view: revealed after the award and verified",
        }
    }
}

/// One slot as the viewer may see it; `expert` only where the view allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotView {
    /// 1-based requirement and slot, as printed and as the CLI takes them.
    pub requirement: u32,
    pub slot: u32,
    pub specialty: String,
    pub backup: bool,
    pub home: MemberId,
    pub seated: bool,
    pub promoted_height: Option<u64>,
    /// `confirmed`, `declined`, `pending` (seated, no answer) or `reserve` (an unused backup).
    pub answer: &'static str,
    pub commitment: Hash,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expert: Option<Hash>,
    /// The slot's opening value, for its home to answer with (home and requester views).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opening: Option<Hash>,
    /// What is wrong with this slot's notice as its home reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// An extraction as one viewer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ExtractionView {
    pub view: ViewKind,
    pub view_note: &'static str,
    /// The member whose view this is (`None` for the plain sealed view).
    pub viewer: Option<MemberId>,
    pub slots: Vec<SlotView>,
}

fn answer(s: &SeatSlot) -> &'static str {
    match &s.response {
        Some(r) if r.accept => "confirmed",
        Some(_) => "declined",
        None if s.seated => "pending",
        None => "reserve",
    }
}

fn slot_view(ext: &Extraction, r: usize, j: usize, s: &SeatSlot) -> SlotView {
    SlotView {
        requirement: r as u32 + 1,
        slot: j as u32 + 1,
        specialty: ext.requirements[r].specialty.clone(),
        backup: s.backup,
        home: s.notice.recipient.clone(),
        seated: s.seated,
        promoted_height: s.promoted_height,
        answer: answer(s),
        commitment: s.notice.commitment,
        expert: None,
        opening: None,
        problem: None,
    }
}

/// The secret, as the requester's node reads it from its sealed copy.
pub fn requester_secret(ext: &Extraction, key: &StaticSecret) -> Option<Vec<u8>> {
    let (r, j) = REQUESTER_COPY;
    seal::open_as_member(key, ext.requester_copy.as_ref()?, ext.id, r, j)
        .filter(|s| super::extraction::commitment(s) == ext.commitment)
}

/// The view for `viewer` holding `key` (its member's encryption key), or the sealed view.
pub fn view(
    state: &dyn StateReader,
    ext: &Extraction,
    viewer: Option<(&MemberId, &StaticSecret)>,
) -> ExtractionView {
    let mut slots: Vec<SlotView> = ext
        .slots
        .iter()
        .enumerate()
        .flat_map(|(r, row)| row.iter().enumerate().map(move |(j, s)| (r, j, s)))
        .map(|(r, j, s)| slot_view(ext, r, j, s))
        .collect();
    let mut kind = ViewKind::Sealed;
    if let Some(p) = &ext.published {
        for v in &mut slots {
            v.expert = p
                .sealed_experts
                .get(v.requirement as usize - 1)
                .and_then(|row| row.get(v.slot as usize - 1))
                .copied()
                .flatten();
        }
        kind = ViewKind::Published;
    } else if let Some((member, key)) = viewer {
        if member == &ext.requester
            && let Some(secret) = requester_secret(ext, key)
            && let Some(cands) = candidates(state, ext.id)
            && let Ok(picks) = rederive(ext, &cands, &secret)
        {
            let experts = slot_experts(&picks);
            for v in &mut slots {
                let (r, j) = (v.requirement - 1, v.slot - 1);
                v.expert = experts
                    .get(r as usize)
                    .and_then(|e| e.get(j as usize))
                    .copied();
                v.opening = Some(seal::seat_blind(&secret, ext.id, r, j));
            }
            kind = ViewKind::Requester;
        } else if slots.iter().any(|v| &v.home == member) {
            for v in slots.iter_mut().filter(|v| &v.home == member) {
                let (r, j) = (v.requirement - 1, v.slot - 1);
                let notice = &ext.slots[r as usize][j as usize].notice;
                match seal::read_notice(key, notice, ext.id, r, j) {
                    Some(o) => {
                        v.expert = Some(o.expert);
                        v.opening = Some(o.blind);
                    }
                    None => {
                        v.problem = Some(
                            "this notice does not decrypt with this member's key or does not \
                             match its commitment: the requester sealed it wrongly (the reveal \
                             will show it)"
                                .into(),
                        )
                    }
                }
            }
            kind = ViewKind::Home;
        }
    }
    ExtractionView {
        view: kind,
        view_note: kind.describe(),
        viewer: match kind {
            ViewKind::Home | ViewKind::Requester => viewer.map(|(m, _)| m.clone()),
            _ => None,
        },
        slots,
    }
}
