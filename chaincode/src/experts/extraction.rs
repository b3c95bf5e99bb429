//! Extractions (专家抽取): a member asks for an evaluation committee (评标委员会), drawn from
//! the shared pool so that nobody can steer it, kept secret until the award (招标投标法
//! Art. 37: 评标委员会成员名单在中标结果确定前应当保密) and verifiable by anyone after it.
//!
//! # Lifecycle
//! 1. `RequestExtraction` at height `h`, with `commitment = SHA-256(secret)` of 16 to 256
//!    secret bytes the requester keeps. Everything is validated and the eligible pool is
//!    counted; too few experts fail the transaction with `INSUFFICIENT_EXPERTS` (naming the
//!    specialty and the counts) and nothing is recorded. Status
//!    [`ExtractionStatus::AwaitingAnchor`].
//! 2. `begin_block` of `h + 1` records the hash of block `h` as the [`Anchor`] and computes
//!    the eligible candidate lists on the state as of then (stored apart, see
//!    [`candidates`]); status [`ExtractionStatus::AwaitingSeal`].
//! 3. `SealExtraction` by the requester within `extraction_seal_blocks`: it runs the draw
//!    ([`super::draw`]) off chain with `seed = SHA-256(anchor ‖ u64_be(id) ‖ secret)` and
//!    submits, per requirement, one sealed notice per drawn slot (primaries then backups, in
//!    draw order), each encrypted to the expert's home member ([`super::seal`]). The chain
//!    checks the shape (slot counts, recipients participating and holding eligible experts,
//!    the outside minimum over the primaries' homes) and records the public slots. A draw
//!    that cannot be completed is revealed instead (`PublishResult` at once: nothing is
//!    secret), and the chain records why it failed. No seal by the deadline: the extraction
//!    fails as abandoned after the anchor, visible to all; the requester may still reveal it,
//!    which shows every member the draw it walked away from.
//! 4. `Respond` by a seat's home: confirm or decline slot `(r, j)`, with a commitment that
//!    binds the answer to the seat's expert. A decline seats the first unused backup slot of
//!    the requirement whose home keeps the outside minimum; the chain does this on public
//!    data, so the requester never chooses a backup.
//! 5. `PublishResult` by the requester after the award (中标结果确定), at the latest
//!    `extraction_reveal_days` after the window ends: it reveals the secret; the chain
//!    re-derives the whole draw from the stored candidates, checks every notice (decrypts it
//!    with the secret-derived key), every seat and response commitment and recusal again, and
//!    records the committee with a [`Verdict`]: verified, or each problem found. Past the
//!    deadline without a reveal, `begin_block` marks the extraction "reveal missed".
//! 6. After a missed reveal the homes may `DiscloseSeats`: each opens its slots' commitments
//!    with the expert and blind from its notices, and the chain checks the commitment and that
//!    the expert was eligible. The draw order cannot be re-derived without the secret, but
//!    every seated expert becomes known and checked.
//!
//! # Threat model: who learns what, when
//! - **Everyone** (every member node, every API caller, anyone reading blocks): from the
//!   request on, the project, window, specialties and counts, tenderee and bidders, the
//!   participating members; after the anchor, how many experts were eligible; after the seal,
//!   per slot its home member, whether it is a primary or backup, and whether it was
//!   confirmed, declined or promoted. Not who sits: the sealed record, blocks and receipts
//!   carry no expert identifier nor any function of one that can be computed without the
//!   secret (commitments are blinded; notices are ciphertext). The candidate lists are public
//!   knowledge anyway (anyone can compute them from the public pool), say who *could* sit, and
//!   are kept out of the sealed view.
//! - **A home member** (its node holds the member's X25519 key): the experts of its own slots
//!   and their slot positions, so that it can notify them (远程异地评标) and answer. It cannot
//!   read other members' notices.
//! - **The requester**: the whole committee from the seal on (it holds the secret; its node
//!   reads its own sealed copy). It cannot change the draw: the secret is committed before the
//!   anchor exists, the anchor is the previous block's hash, and every notice and the order of
//!   the backups are checked against the re-derivation at the reveal.
//! - **After the reveal**: everyone, with the chain's verdict.
//!
//! What this does not prevent, but makes visible: a requester who dislikes the draw can
//! abandon it (no seal) or not reveal; both are recorded for all members. A home or the
//! requester can leak what it knows; that is a breach by a named party, outside the protocol.
//! Busy experts (an overlapping window in an extraction still sealed) are not known to the
//! chain before the reveal: their home knows and declines the seat.
//!
//! # Recusal (回避)
//! After 《评标委员会和评标方法暂行规定》 Art. 12 and 招标投标法实施条例 Art. 46, an expert is a
//! candidate for a requirement only if
//! - its status is active (正常);
//! - its employer is neither the tenderee nor any bidder;
//! - its home is still a member with an encryption key and, for remote evaluation, is the
//!   requester or one of the participating members;
//! - it is not assigned in a published extraction whose window overlaps this one;
//! - it did not serve the same tenderee (published) in a window less than
//!   `expert_tenderee_cooldown_days` apart (both ways);
//! - and it is not already picked in this extraction for another requirement.
//!
//! The candidate lists are fixed at the anchor, so the draw sees them; at the reveal the
//! chain checks each seated expert's current employer again (回避 must hold when the committee
//! sat); a status changed after the anchor is for the home to act on by declining.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::draw::{Candidate, DrawFailure, Picks, Slot};
use super::seal::{SealedBox, SeatNotice};
use super::{Expert, ExpertStatus, expert, expert_ids_by_specialty, parse_specialty};
use crate::ctx::{Ctx, TxOutput, params, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{Member, MemberId, Role};
use crate::state::StateReader;
use crate::types::{Hash, TimestampMs};
use crate::uscc::Uscc;

const DAY_MS: u64 = 86_400_000;
/// Longest evaluation window.
pub const MAX_WINDOW_DAYS: u64 = 30;
pub const MAX_REQUIREMENTS: usize = 16;
/// Most primaries, and most backups, per requirement.
pub const MAX_PER_REQUIREMENT: u32 = 50;
pub const MAX_BIDDERS: usize = 1000;
pub const MIN_SECRET_LEN: usize = 16;
pub const MAX_SECRET_LEN: usize = 256;
/// Most eligible candidates an extraction stores (over all requirements),
/// which bounds the record's size; narrow the specialty codes beyond it.
pub const MAX_CANDIDATES: usize = 4000;
/// Start of the failure reason when the candidate lists would be too large;
/// such a failure stores no lists, so there is nothing to re-derive.
pub const TOO_MANY_CANDIDATES: &str = "too many eligible candidates";

/// One line of a request: `count` primaries and `backups` in reserve (备选)
/// for specialty codes starting with `specialty`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub specialty: String,
    pub count: u32,
    pub backups: u32,
}

/// Remote cross-region evaluation (远程异地评标), as requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRequest {
    /// Participating members besides the requester.
    pub members: Vec<String>,
    /// Primaries that must come from members other than the requester.
    pub min_outside: u32,
}

/// Remote evaluation as recorded: members sorted, without the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEvaluation {
    pub members: Vec<MemberId>,
    pub min_outside: u32,
}

/// What an operator submits to request an extraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractionRequest {
    /// 项目编号
    pub project_code: String,
    /// Evaluation window (评标时间), `[start, end)` in Unix milliseconds.
    pub window_start: TimestampMs,
    pub window_end: TimestampMs,
    pub requirements: Vec<Requirement>,
    pub tenderee_uscc: String,
    pub bidder_usccs: Vec<String>,
    pub remote: Option<RemoteRequest>,
    /// `SHA-256(secret)` for commit-reveal (see [`commitment`]); `None` for
    /// the baseline seed.
    pub commitment: Option<Hash>,
}

/// A half-open time window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: TimestampMs,
    pub end: TimestampMs,
}

impl Window {
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Less than `gap_ms` apart (or overlapping).
    pub fn within(&self, other: &Window, gap_ms: u64) -> bool {
        self.start < other.end.saturating_add(gap_ms)
            && other.start < self.end.saturating_add(gap_ms)
    }
}

/// The block hash the draw is anchored to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Height of the block whose hash this is (the one that included the request).
    pub height: u64,
    pub hash: Hash,
    /// Height at which the anchor was recorded (`height + 1`).
    pub recorded_height: u64,
}

/// A drawn slot as everyone sees it: its home, its sealed notice, and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSlot {
    /// Drawn as a backup (备选) rather than a primary.
    pub backup: bool,
    pub notice: SeatNotice,
    /// Holds a seat now: a primary not declined, or a promoted backup not declined.
    pub seated: bool,
    /// Height at which a backup was promoted.
    pub promoted_height: Option<u64>,
    pub response: Option<SeatResponse>,
}

/// A home's answer for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatResponse {
    pub accept: bool,
    /// [`super::seal::response_commitment`]: opened at the reveal.
    pub commitment: Hash,
    pub height: u64,
}

/// The chain's finding after the reveal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Every notice, seat and response matches the re-derived draw, and recusal holds.
    Verified,
    /// What failed, one line each.
    Failed { problems: Vec<String> },
}

/// What the reveal made public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// Height of the `PublishResult` (the award, 中标结果确定, and the reveal).
    pub height: u64,
    pub time_ms: TimestampMs,
    pub secret: Vec<u8>,
    pub seed: Hash,
    /// The re-derived draw, per requirement (empty when the draw failed).
    pub picks: Vec<Picks>,
    /// Per requirement and slot, the expert the notice was sealed for (as decrypted with the
    /// secret; `None` where the notice did not decrypt).
    pub sealed_experts: Vec<Vec<Option<Hash>>>,
    pub verdict: Verdict,
}

/// An expert disclosed by its home after a missed reveal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    pub requirement: u32,
    pub slot: u32,
    pub expert: Hash,
    pub height: u64,
    /// Whether the expert was among the requirement's candidates at the anchor.
    pub eligible: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtractionStatus {
    /// Requested; the next block's begin_block records the anchor.
    AwaitingAnchor,
    /// Anchored; waiting for the requester's seal until `deadline` (a height).
    AwaitingSeal { deadline: u64 },
    /// Sealed; seats are awaiting confirmation.
    Sealed,
    /// Every seat confirmed.
    Confirmed,
    /// A requirement has unfilled seats and no fitting backup left.
    Short { reason: String },
    /// No committee: the draw could not be completed, or the requester did not seal.
    Failed { reason: String },
}

/// An extraction as recorded on chain. Until the reveal it holds no expert identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extraction {
    pub id: u64,
    pub project_code: String,
    pub requester: MemberId,
    pub window: Window,
    pub requirements: Vec<Requirement>,
    pub tenderee: Uscc,
    /// Sorted, deduplicated.
    pub bidders: Vec<Uscc>,
    pub remote: Option<RemoteEvaluation>,
    /// `SHA-256(secret)`.
    pub commitment: Hash,
    pub requested_height: u64,
    pub tx_hash: Hash,
    pub anchor: Option<Anchor>,
    /// Eligible experts per requirement at the anchor.
    pub eligible: Vec<u32>,
    pub sealed_height: Option<u64>,
    /// Per requirement: `count` primary slots then `backups` backup slots, in draw order.
    pub slots: Vec<Vec<SeatSlot>>,
    /// The secret sealed to the requester's own key.
    pub requester_copy: Option<SealedBox>,
    /// When the reveal is due at the latest (window end + `extraction_reveal_days`).
    pub reveal_due_ms: Option<TimestampMs>,
    /// Height at which the reveal deadline passed without a reveal.
    pub reveal_missed: Option<u64>,
    pub published: Option<Publication>,
    pub disclosures: Vec<Disclosure>,
    pub status: ExtractionStatus,
}

impl Extraction {
    pub fn min_outside(&self) -> u32 {
        self.remote.as_ref().map_or(0, |r| r.min_outside)
    }

    /// Whether `expert` held a slot that was seated or declined, as published (by the reveal
    /// or a home's disclosure); `false` while the committee is sealed. A backup slot never
    /// promoted held no seat, disclosed or not.
    pub fn involved(&self, expert: &Hash) -> bool {
        let served = |r: usize, j: usize| {
            self.slots
                .get(r)
                .and_then(|row| row.get(j))
                .is_some_and(|s| s.seated || s.response.is_some())
        };
        let revealed = self.published.iter().any(|p| {
            p.sealed_experts.iter().enumerate().any(|(r, experts)| {
                experts
                    .iter()
                    .enumerate()
                    .any(|(j, e)| e.as_ref() == Some(expert) && served(r, j))
            })
        });
        revealed
            || self
                .disclosures
                .iter()
                .any(|d| &d.expert == expert && served(d.requirement as usize, d.slot as usize))
    }

    /// Slots that hold a seat now, as `(requirement, slot)`.
    pub fn seated(&self) -> impl Iterator<Item = (usize, usize, &SeatSlot)> {
        self.slots.iter().enumerate().flat_map(|(r, slots)| {
            slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.seated)
                .map(move |(j, s)| (r, j, s))
        })
    }

    pub(crate) fn draw_slots(&self) -> Vec<Slot> {
        self.requirements
            .iter()
            .map(|r| Slot {
                count: r.count,
                backups: r.backups,
            })
            .collect()
    }

    pub(crate) fn may_draw_from(&self, home: &MemberId) -> bool {
        match &self.remote {
            None => true,
            Some(r) => home == &self.requester || r.members.contains(home),
        }
    }
}

/// `SHA-256(secret)`: what a requester puts in `commitment`.
pub fn commitment(secret: &[u8]) -> Hash {
    Hash::of(secret)
}

/// The draw's seed, `SHA-256(anchor ‖ u64_be(id) ‖ secret)`.
pub fn draw_seed(anchor: &Hash, id: u64, secret: &[u8]) -> Hash {
    Hash::of_parts(&[&anchor.0, &id.to_be_bytes(), secret])
}

/// Why an expert is not eligible for an extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recusal {
    Inactive(ExpertStatus),
    /// Employed by the tenderee or a bidder.
    Employer,
    /// Home not among the participating members, no longer a member, or without an
    /// encryption key to receive a seat notice.
    NotParticipating,
    /// Assigned to an overlapping published extraction.
    Busy {
        extraction: u64,
    },
    /// Served the tenderee too recently.
    Cooldown {
        extraction: u64,
    },
}

/// Why `e` may not serve in `ext` now, if it may not. Ignores whether it is
/// already picked in `ext` (the draw handles that).
pub fn recusal(state: &dyn StateReader, ext: &Extraction, e: &Expert) -> Option<Recusal> {
    if e.status != ExpertStatus::Active {
        return Some(Recusal::Inactive(e.status));
    }
    if e.employer == ext.tenderee || ext.bidders.binary_search(&e.employer).is_ok() {
        return Some(Recusal::Employer);
    }
    let home_can_read = read::<Member>(state, &keys::member(e.home.as_str()))
        .is_some_and(|m| m.encryption_key.is_some());
    if !ext.may_draw_from(&e.home) || !home_can_read {
        return Some(Recusal::NotParticipating);
    }
    for (k, w) in scan::<Window>(state, &keys::expert_assignment_prefix(&e.id)) {
        let other = keys::trailing_u64(&k);
        if other != ext.id && w.overlaps(&ext.window) {
            return Some(Recusal::Busy { extraction: other });
        }
    }
    let served = scan::<Window>(state, &keys::expert_service_prefix(&e.id, &ext.tenderee));
    if served.is_empty() {
        return None;
    }
    let gap = params(state)
        .expert_tenderee_cooldown_days
        .saturating_mul(DAY_MS);
    for (k, w) in served {
        let other = keys::trailing_u64(&k);
        if other != ext.id && w.within(&ext.window, gap) {
            return Some(Recusal::Cooldown { extraction: other });
        }
    }
    None
}

/// How many experts matching a code were left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    pub inactive: usize,
    pub employer: usize,
    pub not_participating: usize,
    pub busy: usize,
    pub cooldown: usize,
    pub cooldown_days: u64,
}

impl fmt::Display for Exclusions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.inactive, "not active".to_string()),
            (
                self.employer,
                "employed by the tenderee or a bidder".to_string(),
            ),
            (
                self.not_participating,
                "outside the participating members".to_string(),
            ),
            (self.busy, "drawn for an overlapping window".to_string()),
            (
                self.cooldown,
                format!("served this tenderee within {} days", self.cooldown_days),
            ),
        ];
        let listed: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, why)| format!("{n} {why}"))
            .collect();
        if listed.is_empty() {
            f.write_str("none recused")
        } else {
            write!(f, "recused or excluded: {}", listed.join(", "))
        }
    }
}

/// Eligible experts for `code` in `ext`, sorted by id, and the exclusions.
fn eligible(state: &dyn StateReader, ext: &Extraction, code: &str) -> (Vec<Candidate>, Exclusions) {
    let mut ex = Exclusions {
        cooldown_days: params(state).expert_tenderee_cooldown_days,
        ..Exclusions::default()
    };
    let mut out = Vec::new();
    for id in expert_ids_by_specialty(state, code) {
        let Some(e) = expert(state, &id) else {
            continue;
        };
        match recusal(state, ext, &e) {
            None => out.push(Candidate {
                id,
                home: e.home.clone(),
            }),
            Some(Recusal::Inactive(_)) => ex.inactive += 1,
            Some(Recusal::Employer) => ex.employer += 1,
            Some(Recusal::NotParticipating) => ex.not_participating += 1,
            Some(Recusal::Busy { .. }) => ex.busy += 1,
            Some(Recusal::Cooldown { .. }) => ex.cooldown += 1,
        }
    }
    (out, ex)
}

/// The candidate lists an extraction's draw would use on `state`: run it on
/// the state the draw saw to check the lists stored in the record.
pub fn candidates_at(state: &dyn StateReader, ext: &Extraction) -> Vec<Vec<Candidate>> {
    ext.requirements
        .iter()
        .map(|r| eligible(state, ext, &r.specialty).0)
        .collect()
}

pub(crate) fn describe(ext: &Extraction, f: &DrawFailure) -> String {
    match f {
        DrawFailure::TooFew {
            requirement,
            eligible,
            available,
            count,
            backups,
        } => format!(
            "not enough eligible experts for specialty {} (requirement {}): {eligible} eligible, \
             {available} not already drawn for an earlier requirement, {} requested ({count} + \
             {backups} backups)",
            ext.requirements[*requirement].specialty,
            requirement + 1,
            count + backups
        ),
        DrawFailure::Outside {
            requirement,
            required_outside,
            seated_outside,
            min_outside,
        } => format!(
            "remote evaluation needs {min_outside} experts from members other than {}: \
             specialty {} (requirement {}) had to seat {required_outside} of them and could \
             seat {seated_outside}",
            ext.requester,
            ext.requirements[*requirement].specialty,
            requirement + 1
        ),
    }
}

/// An extraction by id.
pub fn extraction(state: &dyn StateReader, id: u64) -> Option<Extraction> {
    read(state, &keys::extraction(id))
}

/// Extractions an expert is currently assigned to, with their windows.
pub fn assignments(state: &dyn StateReader, expert: &Hash) -> Vec<(u64, Window)> {
    scan::<Window>(state, &keys::expert_assignment_prefix(expert))
        .into_iter()
        .map(|(k, w)| (keys::trailing_u64(&k), w))
        .collect()
}

pub(crate) fn request(ctx: &mut Ctx<'_>, req: &ExtractionRequest) -> Result<TxOutput, TxError> {
    let requester = ctx.require_role(Role::Expert)?;
    let project_code = req.project_code.trim();
    ensure(
        !project_code.is_empty() && project_code.chars().count() <= 64,
        ErrorCode::InvalidInput,
        || "project code (项目编号) must be 1 to 64 characters".into(),
    )?;
    let window = checked_window(ctx, req)?;
    let requirements = checked_requirements(ctx, req)?;
    let total: u64 = requirements.iter().map(|r| u64::from(r.count)).sum();
    let tenderee = Uscc::parse(&req.tenderee_uscc)?;
    ensure(
        req.bidder_usccs.len() <= MAX_BIDDERS,
        ErrorCode::InvalidInput,
        || format!("at most {MAX_BIDDERS} bidders"),
    )?;
    let bidders: BTreeSet<Uscc> = req
        .bidder_usccs
        .iter()
        .map(|b| Uscc::parse(b))
        .collect::<Result<_, _>>()?;
    let remote = match &req.remote {
        None => None,
        Some(r) => Some(checked_remote(ctx, r, &requester, total)?),
    };
    let Some(commitment) = req.commitment else {
        return fail(
            ErrorCode::InvalidInput,
            "an extraction needs a commitment (SHA-256 of a secret the requester keeps): the \
             committee stays sealed until the requester reveals that secret after the award",
        );
    };
    let has_key = read::<Member>(ctx.reader(), &keys::member(requester.as_str()))
        .is_some_and(|m| m.encryption_key.is_some());
    ensure(has_key, ErrorCode::Conflict, || {
        format!(
            "member {requester} has no encryption key (加密公钥) registered: its own sealed copy \
             of the committee needs one; propose `set-encryption-key` through governance first"
        )
    })?;
    let id = ctx.next_id(keys::EXTRACTION_NEXT_ID);
    let ext = Extraction {
        id,
        project_code: project_code.to_string(),
        requester,
        window,
        requirements,
        tenderee,
        bidders: bidders.into_iter().collect(),
        remote,
        commitment,
        requested_height: ctx.block.height,
        tx_hash: ctx.tx_hash,
        anchor: None,
        eligible: Vec::new(),
        sealed_height: None,
        slots: Vec::new(),
        requester_copy: None,
        reveal_due_ms: None,
        reveal_missed: None,
        published: None,
        disclosures: Vec::new(),
        status: ExtractionStatus::AwaitingAnchor,
    };
    precheck(ctx.reader(), &ext)?;
    ctx.put(keys::extraction_anchor(ctx.block.height, id), &());
    ctx.put(keys::extraction(id), &ext);
    Ok(TxOutput::Extraction(id))
}

/// The evaluation window: after the block, ending after it starts, at most
/// [`MAX_WINDOW_DAYS`] long.
fn checked_window(ctx: &Ctx<'_>, req: &ExtractionRequest) -> Result<Window, TxError> {
    let window = Window {
        start: req.window_start,
        end: req.window_end,
    };
    ensure(window.start < window.end, ErrorCode::InvalidInput, || {
        "evaluation window must end after it starts".into()
    })?;
    ensure(
        window.end - window.start <= MAX_WINDOW_DAYS * DAY_MS,
        ErrorCode::InvalidInput,
        || format!("evaluation window is longer than {MAX_WINDOW_DAYS} days"),
    )?;
    ensure(
        window.start > ctx.block.time_ms,
        ErrorCode::InvalidInput,
        || {
            format!(
                "evaluation window starts at {} ms, not after the block time {} ms",
                window.start, ctx.block.time_ms
            )
        },
    )?;
    Ok(window)
}

/// The requirements by specialty, within the limits, asking for an odd committee of at least
/// the chain's minimum size (评标委员会).
fn checked_requirements(
    ctx: &Ctx<'_>,
    req: &ExtractionRequest,
) -> Result<Vec<Requirement>, TxError> {
    ensure(
        !req.requirements.is_empty() && req.requirements.len() <= MAX_REQUIREMENTS,
        ErrorCode::InvalidInput,
        || format!("an extraction needs 1 to {MAX_REQUIREMENTS} requirements"),
    )?;
    let mut requirements = Vec::with_capacity(req.requirements.len());
    for (i, r) in req.requirements.iter().enumerate() {
        let specialty = parse_specialty(&r.specialty)?;
        ensure(
            (1..=MAX_PER_REQUIREMENT).contains(&r.count) && r.backups <= MAX_PER_REQUIREMENT,
            ErrorCode::InvalidInput,
            || {
                format!(
                    "requirement {} ({specialty}): count must be 1 to {MAX_PER_REQUIREMENT} and \
                     backups at most {MAX_PER_REQUIREMENT}",
                    i + 1
                )
            },
        )?;
        requirements.push(Requirement {
            specialty,
            count: r.count,
            backups: r.backups,
        });
    }
    let total: u64 = requirements.iter().map(|r| u64::from(r.count)).sum();
    let min_size = ctx.params().min_committee_size;
    ensure(
        total >= min_size && total % 2 == 1,
        ErrorCode::InvalidInput,
        || {
            format!(
                "an evaluation committee (评标委员会) must have an odd number of at least \
                 {min_size} members; the requirements ask for {total} primaries"
            )
        },
    )?;
    Ok(requirements)
}

/// Remote evaluation (远程异地评标): the participating members besides the requester, all in
/// the alliance, and a minimum from outside no larger than the committee.
fn checked_remote(
    ctx: &Ctx<'_>,
    r: &RemoteRequest,
    requester: &MemberId,
    total: u64,
) -> Result<RemoteEvaluation, TxError> {
    let mut members = BTreeSet::new();
    for m in &r.members {
        let m = MemberId::parse(m)?;
        ensure(
            ctx.exists(&keys::member(m.as_str())),
            ErrorCode::NotFound,
            || format!("participating member {m} is not in the alliance"),
        )?;
        if m != *requester {
            members.insert(m);
        }
    }
    ensure(!members.is_empty(), ErrorCode::InvalidInput, || {
        "remote evaluation (远程异地评标) needs at least one participating member besides \
         the requester"
            .into()
    })?;
    ensure(
        u64::from(r.min_outside) <= total,
        ErrorCode::InvalidInput,
        || {
            format!(
                "min_outside {} exceeds the committee of {total}",
                r.min_outside
            )
        },
    )?;
    Ok(RemoteEvaluation {
        members: members.into_iter().collect(),
        min_outside: r.min_outside,
    })
}

/// Counts the pool before anything is recorded: per requirement, across
/// requirements, and from outside the requester.
fn precheck(state: &dyn StateReader, ext: &Extraction) -> Result<(), TxError> {
    let mut union: BTreeSet<Hash> = BTreeSet::new();
    let mut outside: BTreeSet<Hash> = BTreeSet::new();
    let mut counted_candidates = 0;
    for (i, r) in ext.requirements.iter().enumerate() {
        let (cands, ex) = eligible(state, ext, &r.specialty);
        counted_candidates += cands.len();
        let wanted = r.count + r.backups;
        if (cands.len() as u64) < u64::from(wanted) {
            return fail(
                ErrorCode::InsufficientExperts,
                format!(
                    "not enough eligible experts for specialty {} (requirement {}): {} eligible, \
                     {wanted} requested ({} + {} backups); {ex}",
                    r.specialty,
                    i + 1,
                    cands.len(),
                    r.count,
                    r.backups
                ),
            );
        }
        for c in cands {
            if c.home != ext.requester {
                outside.insert(c.id);
            }
            union.insert(c.id);
        }
    }
    let listed: usize = counted_candidates;
    ensure(listed <= MAX_CANDIDATES, ErrorCode::InvalidInput, || {
        format!(
            "{TOO_MANY_CANDIDATES}: the requirements match {listed} eligible experts, more than \
             {MAX_CANDIDATES}; narrow the specialty codes"
        )
    })?;
    let wanted: u64 = ext
        .requirements
        .iter()
        .map(|r| u64::from(r.count + r.backups))
        .sum();
    ensure(
        union.len() as u64 >= wanted,
        ErrorCode::InsufficientExperts,
        || {
            format!(
                "the requirements together need {wanted} different experts (with backups); only \
                 {} are eligible across them",
                union.len()
            )
        },
    )?;
    let min_outside = ext.min_outside();
    ensure(
        outside.len() as u64 >= u64::from(min_outside),
        ErrorCode::InsufficientExperts,
        || {
            format!(
                "remote evaluation needs {min_outside} experts from members other than {}; only {} \
                 eligible",
                ext.requester,
                outside.len()
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_overlap_half_open_and_cooldown_is_symmetric() {
        let a = Window { start: 10, end: 20 };
        assert!(a.overlaps(&Window { start: 19, end: 30 }));
        assert!(!a.overlaps(&Window { start: 20, end: 30 }));
        assert!(!a.overlaps(&Window { start: 0, end: 10 }));
        // Cooldown 5: a window starting 25 is too close, 26 is not... and back.
        assert!(a.within(&Window { start: 24, end: 30 }, 5));
        assert!(!a.within(&Window { start: 25, end: 30 }, 5));
        assert!(a.within(&Window { start: 0, end: 6 }, 5));
        assert!(!a.within(&Window { start: 0, end: 5 }, 5));
    }

    #[test]
    fn seeds_follow_the_documented_construction() {
        let anchor = Hash::of(b"block");
        let mut bytes = anchor.0.to_vec();
        bytes.extend_from_slice(&7u64.to_be_bytes());
        bytes.extend_from_slice(b"secret");
        assert_eq!(draw_seed(&anchor, 7, b"secret"), Hash::of(&bytes));
        assert_eq!(commitment(b"secret"), Hash::of(b"secret"));
    }
}
