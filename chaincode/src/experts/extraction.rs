//! Extractions (专家抽取): a member asks for an evaluation committee
//! (评标委员会), the chain draws it from the shared pool, verifiably.
//!
//! # Lifecycle
//! 1. `RequestExtraction` at height `h`: everything is validated and the
//!    eligible pool is counted now; too few experts fail the transaction
//!    with `INSUFFICIENT_EXPERTS` naming the specialty, the eligible count and
//!    the requested count, and nothing is recorded. Otherwise the request is
//!    stored as [`ExtractionStatus::AwaitingAnchor`].
//! 2. `begin_block` of `h + 1` sees `parent_hash`, the hash of block `h`,
//!    and records it as the [`Anchor`]. Without a commitment the draw
//!    happens right there; with one the extraction waits for the reveal.
//! 3. `RevealExtraction` (by the requester, at heights up to
//!    `anchor recorded height + extraction_reveal_blocks`) draws with the
//!    secret; after that window `FinalizeExtraction` (anyone with the expert
//!    role) draws with the baseline seed and marks [`SeedScheme::RevealMissed`].
//! 4. At the draw, eligibility is computed again on the current state (it
//!    may have changed since the request). If a requirement cannot be met the
//!    extraction becomes [`ExtractionStatus::Failed`] and no expert is
//!    assigned; otherwise the primaries are assigned (busy index, service
//!    index) and the backups wait in order.
//! 5. `Respond`: the home member confirms or declines for its expert. A
//!    decline frees the expert and promotes the first remaining backup of
//!    that requirement that is still eligible and keeps the outside minimum;
//!    with none, the requirement is short and the status says which.
//!
//! # Recusal (回避)
//! After 《评标委员会和评标方法暂行规定》 Art. 12 and 招标投标法实施条例
//! Art. 46, an expert is eligible for a requirement only if
//! - its status is active (正常);
//! - its employer is neither the tenderee nor any bidder;
//! - its home is still a member and, for remote evaluation, is the
//!   requester or one of the participating members;
//! - it is not assigned (drawn as a primary or promoted, not declined) to
//!   another extraction whose window overlaps this one (half-open windows);
//! - it did not serve the same tenderee in a window that ends less than
//!   `expert_tenderee_cooldown_days` before this window starts (or begins
//!   less than that after it ends: the cooldown applies both ways, since
//!   extractions need not be requested in window order);
//! - and it is not already picked in this extraction for another requirement.
//!
//! # Verifiable randomness
//! The draw ([`super::draw`]) is a pure function of a seed and the sorted
//! candidate lists, both stored in the extraction, so anyone can re-derive it
//! ([`rederive`], [`verify`]) and re-check the candidate lists from the state
//! the draw saw ([`candidates_at`]).
//!
//! - **Baseline** (no commitment): `seed = SHA-256(anchor ‖ u64_be(id))`,
//!   where `anchor` is the hash of the block that included the request. The
//!   requester cannot predict it when submitting. It does *not* resist the
//!   proposer of that block: it can compute the seed for candidate blocks
//!   (reorder or drop transactions, vary its payload or timestamp) and keep
//!   the one whose draw it likes; a requester colluding with that proposer
//!   inherits that power.
//! - **Commit-reveal** (with `commitment = SHA-256(secret)`): the requester
//!   commits before the anchor exists, and the proposer never learns the
//!   secret, so grinding the anchor no longer steers the draw:
//!   `seed = SHA-256(anchor ‖ u64_be(id) ‖ secret)`. The secret must be 16 to
//!   256 bytes (use 32 random bytes; a guessable secret lets the proposer
//!   grind again). What it does not resist: once the anchor is known the
//!   requester can compute both the revealed and the baseline draw and choose
//!   by withholding the reveal, a one-bit choice that is visible on chain as
//!   `RevealMissed`; and a requester who shares its secret with the proposer
//!   is back to the baseline. Both are auditable, not prevented.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::draw::{self, Candidate, DrawFailure, Picks, Slot};
use super::{Expert, ExpertStatus, Store, expert, expert_ids_by_specialty, parse_specialty};
use crate::ctx::{BlockContext, Ctx, TxOutput, params, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{MemberId, Role};
use crate::state::{Overlay, StateReader};
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

/// Which seed the draw used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedScheme {
    /// `SHA-256(anchor ‖ id)`; no commitment was made.
    Baseline,
    /// `SHA-256(anchor ‖ id ‖ secret)`; the secret matched the commitment.
    Revealed { secret: Vec<u8> },
    /// A commitment was made but not revealed in time: baseline seed.
    RevealMissed,
}

/// A committee seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub expert: Hash,
    pub home: MemberId,
    /// Promoted from the backups after a decline.
    pub from_backup: bool,
    pub confirmed: bool,
}

/// The draw of one requirement and what happened since.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementDraw {
    /// Eligible experts at draw time, sorted by id: the draw's input.
    pub candidates: Vec<Candidate>,
    /// As drawn (the draw's output); empty when the extraction failed.
    pub primaries: Vec<Hash>,
    pub backups: Vec<Hash>,
    /// Current seats, in order of seating.
    pub seats: Vec<Seat>,
    /// Backups not yet promoted, in draw order.
    pub backups_left: Vec<Hash>,
    /// Experts who declined.
    pub declined: Vec<Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtractionStatus {
    /// Requested; the next block's begin_block records the anchor.
    AwaitingAnchor,
    /// Anchored; waiting for the requester's reveal until `deadline` (a height).
    AwaitingReveal { deadline: u64 },
    /// Drawn; seats are awaiting confirmation.
    Drawn,
    /// Every seat confirmed.
    Confirmed,
    /// A requirement has unfilled seats and no fitting backup left.
    Short { reason: String },
    /// The draw could not be completed; nobody was assigned.
    Failed { reason: String },
}

/// An extraction as recorded on chain.
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
    pub commitment: Option<Hash>,
    pub requested_height: u64,
    pub tx_hash: Hash,
    pub anchor: Option<Anchor>,
    pub scheme: Option<SeedScheme>,
    pub seed: Option<Hash>,
    pub drawn_height: Option<u64>,
    /// One per requirement once drawn (or failed at the draw).
    pub draws: Vec<RequirementDraw>,
    pub status: ExtractionStatus,
}

impl Extraction {
    pub fn min_outside(&self) -> u32 {
        self.remote.as_ref().map_or(0, |r| r.min_outside)
    }

    /// Whether `expert` holds or held a seat (including a declined one).
    pub fn involved(&self, expert: &Hash) -> bool {
        self.draws
            .iter()
            .any(|d| d.seats.iter().any(|s| &s.expert == expert) || d.declined.contains(expert))
    }

    /// The current committee, requirement by requirement.
    pub fn seats(&self) -> impl Iterator<Item = &Seat> {
        self.draws.iter().flat_map(|d| d.seats.iter())
    }

    fn slots(&self) -> Vec<Slot> {
        self.requirements
            .iter()
            .map(|r| Slot {
                count: r.count,
                backups: r.backups,
            })
            .collect()
    }

    fn may_draw_from(&self, home: &MemberId) -> bool {
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

/// The baseline seed, `SHA-256(anchor ‖ u64_be(id))`.
pub fn baseline_seed(anchor: &Hash, id: u64) -> Hash {
    Hash::of_parts(&[&anchor.0, &id.to_be_bytes()])
}

/// The commit-reveal seed, `SHA-256(anchor ‖ u64_be(id) ‖ secret)`.
pub fn revealed_seed(anchor: &Hash, id: u64, secret: &[u8]) -> Hash {
    Hash::of_parts(&[&anchor.0, &id.to_be_bytes(), secret])
}

fn seed_for(anchor: &Hash, id: u64, scheme: &SeedScheme) -> Hash {
    match scheme {
        SeedScheme::Baseline | SeedScheme::RevealMissed => baseline_seed(anchor, id),
        SeedScheme::Revealed { secret } => revealed_seed(anchor, id, secret),
    }
}

/// Why an expert is not eligible for an extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recusal {
    Inactive(ExpertStatus),
    /// Employed by the tenderee or a bidder.
    Employer,
    /// Home not among the participating members, or no longer a member.
    NotParticipating,
    /// Assigned to an overlapping extraction.
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
    if !ext.may_draw_from(&e.home) || state.get(&keys::member(e.home.as_str())).is_none() {
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

/// Re-derives the picks of a drawn extraction from the record alone: the
/// seed from the anchor, id and scheme, then the draw over the stored
/// candidate lists. A failed draw re-derives to its failure reason.
pub fn rederive(ext: &Extraction) -> Result<Vec<Picks>, String> {
    let (Some(anchor), Some(scheme)) = (&ext.anchor, &ext.scheme) else {
        return Err(format!("extraction {} has not been drawn yet", ext.id));
    };
    if ext.draws.len() != ext.requirements.len() {
        return Err(format!(
            "extraction {} has {} candidate lists for {} requirements",
            ext.id,
            ext.draws.len(),
            ext.requirements.len()
        ));
    }
    let seed = seed_for(&anchor.hash, ext.id, scheme);
    let candidates: Vec<Vec<Candidate>> = ext.draws.iter().map(|d| d.candidates.clone()).collect();
    draw::draw(
        &seed,
        &ext.requester,
        ext.min_outside(),
        &ext.slots(),
        &candidates,
    )
    .map_err(|f| describe(ext, &f))
}

/// Checks a drawn extraction against its own data: seed, commitment,
/// candidate lists sorted, and picks (or failure) as re-derived.
pub fn verify(ext: &Extraction) -> Result<(), String> {
    let (Some(anchor), Some(scheme), Some(seed)) = (&ext.anchor, &ext.scheme, &ext.seed) else {
        return Err(format!("extraction {} has not been drawn yet", ext.id));
    };
    if &seed_for(&anchor.hash, ext.id, scheme) != seed {
        return Err("stored seed does not match anchor, id and scheme".into());
    }
    match (scheme, &ext.commitment) {
        (SeedScheme::Revealed { secret }, Some(c)) if &commitment(secret) == c => {}
        (SeedScheme::Revealed { .. }, _) => {
            return Err("revealed secret does not match the commitment".into());
        }
        (SeedScheme::RevealMissed, None) => {
            return Err("reveal marked missed but no commitment was made".into());
        }
        (SeedScheme::Baseline, Some(_)) => {
            return Err("baseline seed used although a commitment was made".into());
        }
        _ => {}
    }
    let oversize = matches!(&ext.status, ExtractionStatus::Failed { reason }
        if ext.draws.is_empty() && reason.starts_with(TOO_MANY_CANDIDATES));
    if oversize {
        return Ok(());
    }
    for (i, d) in ext.draws.iter().enumerate() {
        if !d.candidates.windows(2).all(|w| w[0].id < w[1].id) {
            return Err(format!(
                "candidates of requirement {} are not sorted",
                i + 1
            ));
        }
    }
    match (rederive(ext), &ext.status) {
        (Err(reason), ExtractionStatus::Failed { reason: stored }) if &reason == stored => Ok(()),
        (Err(reason), _) => Err(format!(
            "re-derived draw fails ({reason}) but it is recorded"
        )),
        (Ok(_), ExtractionStatus::Failed { reason }) => Err(format!(
            "re-derived draw succeeds but it is recorded as failed ({reason})"
        )),
        (Ok(picks), _) => {
            for (i, (p, d)) in picks.iter().zip(&ext.draws).enumerate() {
                if p.primaries != d.primaries || p.backups != d.backups {
                    return Err(format!(
                        "requirement {} ({}): recorded picks differ from the re-derived ones",
                        i + 1,
                        ext.requirements[i].specialty
                    ));
                }
            }
            Ok(())
        }
    }
}

fn describe(ext: &Extraction, f: &DrawFailure) -> String {
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
        commitment: req.commitment,
        requested_height: ctx.block.height,
        tx_hash: ctx.tx_hash,
        anchor: None,
        scheme: None,
        seed: None,
        drawn_height: None,
        draws: Vec::new(),
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

/// begin_block: anchor the extractions included in earlier blocks (in
/// practice the previous one) and draw those without a commitment.
pub(crate) fn anchor_pending(overlay: &mut Overlay<&dyn StateReader>, block: &BlockContext) {
    let pending = scan::<()>(&*overlay, keys::EXTRACTION_ANCHOR_PREFIX);
    let reveal_blocks = params(&*overlay).extraction_reveal_blocks;
    for (key, ()) in pending {
        let at = keys::EXTRACTION_ANCHOR_PREFIX.len();
        let height = u64::from_be_bytes(key[at..at + 8].try_into().expect("8-byte height"));
        if height >= block.height {
            break;
        }
        let id = keys::trailing_u64(&key);
        overlay.delete(key);
        let Some(mut ext) = extraction(&*overlay, id) else {
            continue;
        };
        ext.anchor = Some(Anchor {
            height: block.height - 1,
            hash: block.parent_hash,
            recorded_height: block.height,
        });
        if ext.commitment.is_some() {
            let deadline = block.height + reveal_blocks;
            ext.status = ExtractionStatus::AwaitingReveal { deadline };
            overlay.write(keys::extraction(id), &ext);
            overlay.write(keys::extraction_reveal(deadline, id), &());
        } else {
            run_draw(overlay, ext, SeedScheme::Baseline, block.height);
        }
    }
}

/// Forgets reveal windows that closed before `block`: the extraction now waits for anyone's
/// finalize, which needs no block of its own.
pub(crate) fn close_reveal_windows(overlay: &mut Overlay<&dyn StateReader>, block: &BlockContext) {
    for (key, ()) in scan::<()>(&*overlay, keys::EXTRACTION_REVEAL_PREFIX) {
        let at = keys::EXTRACTION_REVEAL_PREFIX.len();
        let deadline = u64::from_be_bytes(key[at..at + 8].try_into().expect("8-byte height"));
        if deadline >= block.height {
            break;
        }
        overlay.delete(key);
    }
}

/// Draws on the current state and records the outcome.
fn run_draw<S: Store>(s: &mut S, mut ext: Extraction, scheme: SeedScheme, height: u64) {
    let anchor = ext.anchor.expect("drawn only once anchored");
    if let ExtractionStatus::AwaitingReveal { deadline } = ext.status {
        s.erase(keys::extraction_reveal(deadline, ext.id));
    }
    let seed = seed_for(&anchor.hash, ext.id, &scheme);
    let candidates = candidates_at(s.reader(), &ext);
    ext.scheme = Some(scheme);
    ext.seed = Some(seed);
    ext.drawn_height = Some(height);
    let listed: usize = candidates.iter().map(Vec::len).sum();
    if listed > MAX_CANDIDATES {
        ext.status = ExtractionStatus::Failed {
            reason: format!(
                "{TOO_MANY_CANDIDATES}: {listed} eligible at the draw, more than {MAX_CANDIDATES}"
            ),
        };
        s.write(keys::extraction(ext.id), &ext);
        return;
    }
    let outcome = draw::draw(
        &seed,
        &ext.requester,
        ext.min_outside(),
        &ext.slots(),
        &candidates,
    );
    match outcome {
        Ok(picks) => {
            ext.draws = picks
                .into_iter()
                .zip(candidates)
                .map(|(p, cands)| {
                    let seats = p
                        .primaries
                        .iter()
                        .map(|id| Seat {
                            expert: *id,
                            home: cands
                                .iter()
                                .find(|c| &c.id == id)
                                .expect("picked from candidates")
                                .home
                                .clone(),
                            from_backup: false,
                            confirmed: false,
                        })
                        .collect();
                    RequirementDraw {
                        candidates: cands,
                        backups_left: p.backups.clone(),
                        primaries: p.primaries,
                        backups: p.backups,
                        seats,
                        declined: Vec::new(),
                    }
                })
                .collect();
            let seated: Vec<Hash> = ext.seats().map(|s| s.expert).collect();
            for id in seated {
                assign(s, &ext, &id);
            }
            ext.status = ExtractionStatus::Drawn;
        }
        Err(f) => {
            ext.status = ExtractionStatus::Failed {
                reason: describe(&ext, &f),
            };
            ext.draws = candidates
                .into_iter()
                .map(|candidates| RequirementDraw {
                    candidates,
                    ..RequirementDraw::default()
                })
                .collect();
        }
    }
    s.write(keys::extraction(ext.id), &ext);
}

fn assign<S: Store>(s: &mut S, ext: &Extraction, id: &Hash) {
    s.write(keys::expert_assignment(id, ext.id), &ext.window);
    s.write(keys::expert_service(id, &ext.tenderee, ext.id), &ext.window);
}

fn release<S: Store>(s: &mut S, ext: &Extraction, id: &Hash) {
    s.erase(keys::expert_assignment(id, ext.id));
    s.erase(keys::expert_service(id, &ext.tenderee, ext.id));
}

fn load(ctx: &Ctx<'_>, id: u64) -> Result<Extraction, TxError> {
    extraction(ctx.reader(), id)
        .ok_or_else(|| TxError::new(ErrorCode::NotFound, format!("no extraction {id}")))
}

fn awaiting_reveal(ext: &Extraction) -> Result<u64, TxError> {
    match &ext.status {
        ExtractionStatus::AwaitingReveal { deadline } => Ok(*deadline),
        ExtractionStatus::AwaitingAnchor => fail(
            ErrorCode::Conflict,
            format!(
                "extraction {} is not anchored yet; its anchor is recorded in the block after \
                 the request",
                ext.id
            ),
        ),
        _ if ext.commitment.is_none() => fail(
            ErrorCode::Conflict,
            format!(
                "extraction {} has no commitment; it was drawn with the baseline seed",
                ext.id
            ),
        ),
        _ => fail(
            ErrorCode::Conflict,
            format!("extraction {} has already been drawn", ext.id),
        ),
    }
}

pub(crate) fn reveal(ctx: &mut Ctx<'_>, id: u64, secret: &[u8]) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Expert)?;
    let ext = load(ctx, id)?;
    ensure(member == ext.requester, ErrorCode::Unauthorized, || {
        format!(
            "only the requesting member {} reveals extraction {id}",
            ext.requester
        )
    })?;
    let deadline = awaiting_reveal(&ext)?;
    ensure(ctx.block.height <= deadline, ErrorCode::Conflict, || {
        format!(
            "the reveal window of extraction {id} closed at height {deadline}; anyone may now \
             finalize it with the baseline seed"
        )
    })?;
    ensure(
        (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()),
        ErrorCode::InvalidInput,
        || format!("a secret is {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes"),
    )?;
    ensure(
        Some(commitment(secret)) == ext.commitment,
        ErrorCode::InvalidInput,
        || format!("SHA-256 of the secret does not match the commitment of extraction {id}"),
    )?;
    let height = ctx.block.height;
    run_draw(
        ctx,
        ext,
        SeedScheme::Revealed {
            secret: secret.to_vec(),
        },
        height,
    );
    Ok(TxOutput::Extraction(id))
}

pub(crate) fn finalize(ctx: &mut Ctx<'_>, id: u64) -> Result<TxOutput, TxError> {
    ctx.require_role(Role::Expert)?;
    let ext = load(ctx, id)?;
    let deadline = awaiting_reveal(&ext)?;
    ensure(ctx.block.height > deadline, ErrorCode::TooEarly, || {
        format!(
            "extraction {id} may still be revealed until height {deadline} (now {})",
            ctx.block.height
        )
    })?;
    let height = ctx.block.height;
    run_draw(ctx, ext, SeedScheme::RevealMissed, height);
    Ok(TxOutput::Extraction(id))
}

pub(crate) fn respond(
    ctx: &mut Ctx<'_>,
    id: u64,
    expert_id: &Hash,
    accept: bool,
) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Expert)?;
    let mut ext = load(ctx, id)?;
    ensure(
        matches!(
            ext.status,
            ExtractionStatus::Drawn | ExtractionStatus::Confirmed | ExtractionStatus::Short { .. }
        ),
        ErrorCode::Conflict,
        || {
            format!(
                "extraction {id} is {:?}: no seats to answer for",
                ext.status
            )
        },
    )?;
    let found = ext.draws.iter().enumerate().find_map(|(r, d)| {
        d.seats
            .iter()
            .position(|s| &s.expert == expert_id)
            .map(|p| (r, p))
    });
    let Some((r, p)) = found else {
        let why = if ext.draws.iter().any(|d| d.declined.contains(expert_id)) {
            "has already declined"
        } else if ext.draws.iter().any(|d| d.backups_left.contains(expert_id)) {
            "is a backup, not seated; a backup answers once promoted"
        } else {
            "was not drawn"
        };
        return fail(
            ErrorCode::Conflict,
            format!("expert {expert_id} {why} in extraction {id}"),
        );
    };
    let home = ext.draws[r].seats[p].home.clone();
    ensure(home == member, ErrorCode::NotHomeMember, || {
        format!("expert {expert_id} belongs to {home}; only its home member answers for it")
    })?;
    ensure(
        ctx.block.time_ms < ext.window.end,
        ErrorCode::Conflict,
        || format!("the evaluation window of extraction {id} has ended"),
    )?;
    if accept {
        let seat = &mut ext.draws[r].seats[p];
        ensure(!seat.confirmed, ErrorCode::Conflict, || {
            format!("expert {expert_id} has already confirmed extraction {id}")
        })?;
        seat.confirmed = true;
    } else {
        ext.draws[r].seats.remove(p);
        ext.draws[r].declined.push(*expert_id);
        release(ctx, &ext, expert_id);
        promote(ctx, &mut ext, r);
    }
    settle(&mut ext);
    ctx.put(keys::extraction(id), &ext);
    Ok(TxOutput::Extraction(id))
}

/// Seats the first backup of requirement `r` that is still eligible and
/// keeps the outside minimum, if any.
fn promote<S: Store>(s: &mut S, ext: &mut Extraction, r: usize) {
    let outside_now = ext.seats().filter(|s| s.home != ext.requester).count() as u64;
    let min_outside = u64::from(ext.min_outside());
    let chosen = ext.draws[r].backups_left.iter().position(|b| {
        let Some(e) = expert(s.reader(), b) else {
            return false;
        };
        let outside = u64::from(e.home != ext.requester);
        recusal(s.reader(), ext, &e).is_none() && outside_now + outside >= min_outside
    });
    let Some(pos) = chosen else {
        return;
    };
    let id = ext.draws[r].backups_left.remove(pos);
    let home = expert(s.reader(), &id).expect("checked above").home;
    ext.draws[r].seats.push(Seat {
        expert: id,
        home,
        from_backup: true,
        confirmed: false,
    });
    assign(s, ext, &id);
}

fn settle(ext: &mut Extraction) {
    let short: Vec<String> = ext
        .requirements
        .iter()
        .zip(&ext.draws)
        .filter(|(r, d)| (d.seats.len() as u32) < r.count)
        .map(|(r, d)| {
            format!(
                "specialty {}: {} of {} seats filled, no eligible backup left that keeps the \
                 rules",
                r.specialty,
                d.seats.len(),
                r.count
            )
        })
        .collect();
    ext.status = if !short.is_empty() {
        ExtractionStatus::Short {
            reason: short.join("; "),
        }
    } else if ext.seats().all(|s| s.confirmed) {
        ExtractionStatus::Confirmed
    } else {
        ExtractionStatus::Drawn
    };
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
        assert_eq!(baseline_seed(&anchor, 7), Hash::of(&bytes));
        bytes.extend_from_slice(b"secret");
        assert_eq!(revealed_seed(&anchor, 7, b"secret"), Hash::of(&bytes));
        assert_eq!(commitment(b"secret"), Hash::of(b"secret"));
    }
}
