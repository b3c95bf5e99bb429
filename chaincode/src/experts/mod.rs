//! Evaluation experts (评标专家) shared by the alliance (专家资源共享), and
//! extractions (专家抽取) that draw evaluation committees from them.
//!
//! An expert is registered by a member, its *home*, which alone updates it
//! and sets its status; experts hold no keys, so an expert-role operator
//! (专家管理员) of the home member acts for them (confirming or declining a
//! draw, too). Any member's expert or auditor (审计员) operators record
//! conduct (奖励 commendation, 处罚 penalty) after an evaluation.
//!
//! # Layout
//! - this module: experts, conduct records, queries, the action enum.
//! - [`extraction`]: requests, recusal (回避), the protocol and its threat model.
//! - [`committee`]: anchor, seal, answers, backup promotion, reveal and verification.
//! - [`seal`]: the sealed seat notices' cryptography.
//! - [`view`]: what each member may see of an extraction.
//! - [`draw`]: the pure, documented draw algorithm.
//!
//! # Identity
//! An expert's id is [`expert_id`]: SHA-256 of a domain tag and the national
//! ID number (居民身份证号码), computed by the client. The chain never sees
//! the number. This is pseudonymisation, not anonymity: ID numbers are
//! structured (region, birth date, sequence), so a member who suspects a
//! person can confirm it by hashing; the point is that the number itself is
//! never copied to thirty nodes.
//!
//! # Specialty codes
//! Codes follow the hierarchical evaluation-expert classification (评标专家
//! 专业分类), e.g. `A010101`: one upper-case letter (the category) followed
//! by 0 to 5 two-digit levels, so 1, 3, 5, 7, 9 or 11 characters. Lower case
//! is normalised to upper case. A requirement for `A0101` is met by any
//! expert holding a code that starts with `A0101` (`A0101`, `A010102`, …);
//! because levels are digit pairs, a prefix match is always an ancestor.

pub mod committee;
pub mod draw;
pub mod extraction;
pub mod seal;
pub mod view;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ctx::{BlockContext, Ctx, TxOutput, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{MemberId, Role};
use crate::state::{Overlay, StateReader, WriteSet};
use crate::types::{Date, Hash};
use crate::uscc::Uscc;

pub use committee::{SeatOpening, build_seal, candidates, check_published, rederive};
pub use draw::{Candidate, Picks};
pub use extraction::{
    Anchor, Extraction, ExtractionRequest, ExtractionStatus, Publication, Recusal,
    RemoteEvaluation, RemoteRequest, Requirement, SeatResponse, SeatSlot, Verdict, Window,
    assignments, candidates_at, commitment, extraction, recusal,
};

/// Domain tag of [`expert_id`].
pub const EXPERT_ID_DOMAIN: &[u8] = b"caihong/expert-id/v1";

/// Most specialty codes one expert holds.
pub const MAX_SPECIALTIES: usize = 10;

/// Most digit pairs (levels) after the category letter.
pub const MAX_SPECIALTY_LEVELS: usize = 5;

/// An expert's on-chain id: `SHA-256("caihong/expert-id/v1" ‖ id_number)`,
/// where the number is trimmed and upper-cased (so a final `x` check
/// character and `X` give the same id). Computed by the client; see
/// [`check_national_id`] to catch typos first.
pub fn expert_id(national_id: &str) -> Hash {
    let normalised = national_id.trim().to_ascii_uppercase();
    Hash::of_parts(&[EXPERT_ID_DOMAIN, normalised.as_bytes()])
}

/// Checks an 18-character resident ID number (GB 11643-1999): 17 digits and
/// a check character from weights `2^(17-i) mod 11` (`1 0 X 9 8 7 6 5 4 3 2`).
/// For the client, before [`expert_id`]; the chain never sees the number.
pub fn check_national_id(national_id: &str) -> Result<(), String> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let s = national_id.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return Err("an ID number (身份证号码) is 17 digits and a check character".into());
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let expected = CHECK[(sum % 11) as usize];
    if b[17] != expected {
        return Err(format!(
            "ID number check character (校验码) is {:?}, expected {:?}",
            b[17] as char, expected as char
        ));
    }
    Ok(())
}

/// Validates and normalises a specialty code (see the module docs).
pub fn parse_specialty(code: &str) -> Result<String, TxError> {
    let c = code.trim().to_ascii_uppercase();
    let b = c.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_uppercase()
        && b[1..].iter().all(u8::is_ascii_digit)
        && (b.len() - 1) % 2 == 0
        && (b.len() - 1) / 2 <= MAX_SPECIALTY_LEVELS;
    ensure(ok, ErrorCode::InvalidInput, || {
        format!(
            "specialty code {code:?} (专业分类代码) must be an upper-case letter followed by 0 to \
             {MAX_SPECIALTY_LEVELS} two-digit levels, e.g. A010101"
        )
    })?;
    Ok(c)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ExpertStatus {
    /// 正常: can be drawn.
    Active,
    /// 暂停
    Suspended,
    /// 退休/退出
    Retired,
    /// 黑名单 (清退)
    Blacklisted,
}

impl ExpertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpertStatus::Active => "active",
            ExpertStatus::Suspended => "suspended",
            ExpertStatus::Retired => "retired",
            ExpertStatus::Blacklisted => "blacklisted",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            ExpertStatus::Active => "正常",
            ExpertStatus::Suspended => "暂停",
            ExpertStatus::Retired => "退出",
            ExpertStatus::Blacklisted => "黑名单",
        }
    }
}

/// What an operator submits to register or update an expert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpertInfo {
    /// [`expert_id`] of the national ID number, computed client-side.
    pub id: Hash,
    pub name: String,
    /// Specialty codes, e.g. `A010101`; 1 to [`MAX_SPECIALTIES`].
    pub specialties: Vec<String>,
    /// 职称, e.g. 高级工程师.
    pub title: String,
    /// USCC of the employer (工作单位), for recusal.
    pub employer_uscc: String,
}

/// An expert as recorded on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expert {
    pub id: Hash,
    pub name: String,
    /// The registering member; only it updates the expert.
    pub home: MemberId,
    /// Normalised, sorted and deduplicated.
    pub specialties: Vec<String>,
    pub title: String,
    pub employer: Uscc,
    pub status: ExpertStatus,
    /// Why the status was last set (empty at registration).
    pub status_reason: String,
    pub registered_height: u64,
    pub updated_height: u64,
    pub tx_hash: Hash,
}

impl Expert {
    /// Whether any of its codes meets a requirement for `code`.
    pub fn meets(&self, code: &str) -> bool {
        self.specialties.iter().any(|s| s.starts_with(code))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConductKind {
    /// 奖励
    Commendation,
    /// 处罚
    Penalty,
}

/// A conduct record (专家信用记录): append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConductRecord {
    /// 1, 2, … per expert.
    pub seq: u64,
    pub expert: Hash,
    pub kind: ConductKind,
    pub description: String,
    pub date: Date,
    /// The extraction the conduct happened in, if any.
    pub extraction: Option<u64>,
    pub recorded_by: MemberId,
    pub height: u64,
    pub tx_hash: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpertAction {
    /// Register an expert (专家入库); the signer's member becomes its home.
    Register(Box<ExpertInfo>),
    /// Update name, specialties, title, employer (专家信息变更); home only.
    Update(Box<ExpertInfo>),
    /// Set the status (暂停, 退出, 清退 or back to 正常) with a reason; home only.
    /// Existing draws are not undone: the home declines them if needed.
    SetStatus {
        expert: Hash,
        status: ExpertStatus,
        reason: String,
    },
    /// Record conduct (奖励/处罚) by an expert or auditor operator of any
    /// member. With an extraction, the expert must have been seated in it
    /// (or have declined it) as published: conduct in an extraction is recorded
    /// once its committee is public.
    RecordConduct {
        expert: Hash,
        kind: ConductKind,
        description: String,
        date: Date,
        extraction: Option<u64>,
    },
    /// Request an extraction (申请抽取) with a commitment to a secret; see [`extraction`].
    RequestExtraction(Box<ExtractionRequest>),
    /// Seal the draw (密封): the requester's encrypted seat notices, within
    /// `extraction_seal_blocks` after the anchor.
    SealExtraction {
        extraction: u64,
        seal: Box<seal::Seal>,
    },
    /// Confirm (`accept`) or decline slot `slot` of requirement `requirement` (0-based), by
    /// the expert's home member, with the answer's commitment
    /// ([`seal::response_commitment`]). A decline promotes the next fitting backup slot.
    Respond {
        extraction: u64,
        requirement: u32,
        slot: u32,
        accept: bool,
        commitment: Hash,
    },
    /// The award is made (中标结果确定): reveal the secret; the chain re-derives and verifies
    /// the draw and publishes the committee. Also reveals a draw that cannot be completed.
    PublishResult { extraction: u64, secret: Vec<u8> },
    /// After a missed reveal, a home opens its slots (see [`extraction`]).
    DiscloseSeats {
        extraction: u64,
        openings: Vec<SeatOpening>,
    },
}

pub(crate) fn execute(ctx: &mut Ctx<'_>, action: &ExpertAction) -> Result<TxOutput, TxError> {
    match action {
        ExpertAction::Register(info) => register(ctx, info),
        ExpertAction::Update(info) => update(ctx, info),
        ExpertAction::SetStatus {
            expert,
            status,
            reason,
        } => set_status(ctx, expert, *status, reason),
        ExpertAction::RecordConduct {
            expert,
            kind,
            description,
            date,
            extraction,
        } => record_conduct(ctx, expert, *kind, description, *date, *extraction),
        ExpertAction::RequestExtraction(req) => extraction::request(ctx, req),
        ExpertAction::SealExtraction { extraction, seal } => {
            committee::seal(ctx, *extraction, seal)
        }
        ExpertAction::Respond {
            extraction,
            requirement,
            slot,
            accept,
            commitment,
        } => committee::respond(ctx, *extraction, *requirement, *slot, *accept, commitment),
        ExpertAction::PublishResult { extraction, secret } => {
            committee::publish(ctx, *extraction, secret)
        }
        ExpertAction::DiscloseSeats {
            extraction,
            openings,
        } => committee::disclose(ctx, *extraction, openings),
    }
}

/// Anchors of extractions whose request was included in the previous block, and the end of
/// seal and reveal windows that have closed.
pub(crate) fn begin_block(state: &dyn StateReader, block: &BlockContext) -> WriteSet {
    let mut overlay = Overlay::new(state);
    committee::close_windows(&mut overlay, block);
    committee::anchor_pending(&mut overlay, block);
    overlay.into_writes()
}

struct Checked {
    name: String,
    specialties: Vec<String>,
    title: String,
    employer: Uscc,
}

fn check_info(info: &ExpertInfo) -> Result<Checked, TxError> {
    let name = info.name.trim();
    ensure(
        !name.is_empty() && name.chars().count() <= 64,
        ErrorCode::InvalidInput,
        || "expert name must be 1 to 64 characters".into(),
    )?;
    let title = info.title.trim();
    ensure(
        !title.is_empty() && title.chars().count() <= 64,
        ErrorCode::InvalidInput,
        || "expert title (职称) must be 1 to 64 characters".into(),
    )?;
    ensure(
        !info.specialties.is_empty() && info.specialties.len() <= MAX_SPECIALTIES,
        ErrorCode::InvalidInput,
        || format!("an expert needs 1 to {MAX_SPECIALTIES} specialty codes"),
    )?;
    let specialties: BTreeSet<String> = info
        .specialties
        .iter()
        .map(|c| parse_specialty(c))
        .collect::<Result<_, _>>()?;
    let employer = Uscc::parse(&info.employer_uscc)?;
    Ok(Checked {
        name: name.to_string(),
        specialties: specialties.into_iter().collect(),
        title: title.to_string(),
        employer,
    })
}

fn register(ctx: &mut Ctx<'_>, info: &ExpertInfo) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Expert)?;
    if let Some(existing) = expert(ctx.reader(), &info.id) {
        return fail(
            ErrorCode::AlreadyExists,
            format!(
                "expert {} is already registered by {}; its home member updates it",
                info.id, existing.home
            ),
        );
    }
    let c = check_info(info)?;
    let e = Expert {
        id: info.id,
        name: c.name,
        home: member,
        specialties: c.specialties,
        title: c.title,
        employer: c.employer,
        status: ExpertStatus::Active,
        status_reason: String::new(),
        registered_height: ctx.block.height,
        updated_height: ctx.block.height,
        tx_hash: ctx.tx_hash,
    };
    for code in &e.specialties {
        ctx.put(keys::expert_by_specialty(code, &e.id), &());
    }
    ctx.put(keys::expert(&e.id), &e);
    Ok(TxOutput::Expert(e.id))
}

fn home_expert(ctx: &Ctx<'_>, id: &Hash, member: &MemberId) -> Result<Expert, TxError> {
    let e = expert(ctx.reader(), id).ok_or_else(|| {
        TxError::new(
            ErrorCode::NotFound,
            format!("no expert {id}; register the expert first"),
        )
    })?;
    ensure(&e.home == member, ErrorCode::NotHomeMember, || {
        format!(
            "expert {id} belongs to {}; only its home member may change it",
            e.home
        )
    })?;
    Ok(e)
}

fn update(ctx: &mut Ctx<'_>, info: &ExpertInfo) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Expert)?;
    let current = home_expert(ctx, &info.id, &member)?;
    let c = check_info(info)?;
    for code in &current.specialties {
        if !c.specialties.contains(code) {
            ctx.delete(keys::expert_by_specialty(code, &current.id));
        }
    }
    for code in &c.specialties {
        ctx.put(keys::expert_by_specialty(code, &current.id), &());
    }
    let next = Expert {
        name: c.name,
        specialties: c.specialties,
        title: c.title,
        employer: c.employer,
        updated_height: ctx.block.height,
        tx_hash: ctx.tx_hash,
        ..current
    };
    ctx.put(keys::expert(&next.id), &next);
    Ok(TxOutput::Expert(next.id))
}

fn set_status(
    ctx: &mut Ctx<'_>,
    id: &Hash,
    status: ExpertStatus,
    reason: &str,
) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Expert)?;
    let mut e = home_expert(ctx, id, &member)?;
    ensure(!reason.trim().is_empty(), ErrorCode::InvalidInput, || {
        "a status change needs a reason".into()
    })?;
    ensure(e.status != status, ErrorCode::Conflict, || {
        format!("expert {id} is already {}", status.as_str())
    })?;
    e.status = status;
    e.status_reason = reason.trim().to_string();
    e.updated_height = ctx.block.height;
    e.tx_hash = ctx.tx_hash;
    ctx.put(keys::expert(id), &e);
    Ok(TxOutput::Expert(*id))
}

fn record_conduct(
    ctx: &mut Ctx<'_>,
    id: &Hash,
    kind: ConductKind,
    description: &str,
    date: Date,
    extraction_id: Option<u64>,
) -> Result<TxOutput, TxError> {
    let op = ctx.operator()?;
    ensure(
        op.has_role(Role::Expert) || op.has_role(Role::Auditor),
        ErrorCode::Unauthorized,
        || {
            format!(
                "operator {} of member {} needs the {} or {} role to record conduct",
                op.name,
                op.member,
                Role::Expert.label(),
                Role::Auditor.label()
            )
        },
    )?;
    ensure(
        ctx.exists(&keys::member(op.member.as_str())),
        ErrorCode::Unauthorized,
        || format!("member {} is no longer in the alliance", op.member),
    )?;
    ensure(
        expert(ctx.reader(), id).is_some(),
        ErrorCode::NotFound,
        || format!("no expert {id}"),
    )?;
    let description = description.trim();
    ensure(
        !description.is_empty() && description.chars().count() <= 1000,
        ErrorCode::InvalidInput,
        || "a conduct record needs a description of at most 1000 characters".into(),
    )?;
    ensure(date <= ctx.block.date(), ErrorCode::InvalidInput, || {
        format!(
            "conduct date {date} is in the future (today is {})",
            ctx.block.date()
        )
    })?;
    if let Some(x) = extraction_id {
        let ext = extraction::extraction(ctx.reader(), x)
            .ok_or_else(|| TxError::new(ErrorCode::NotFound, format!("no extraction {x}")))?;
        ensure(ext.involved(id), ErrorCode::InvalidInput, || {
            format!("expert {id} was not seated in extraction {x}")
        })?;
    }
    let seq =
        scan::<ConductRecord>(ctx.reader(), &keys::expert_conduct_prefix(id)).len() as u64 + 1;
    let rec = ConductRecord {
        seq,
        expert: *id,
        kind,
        description: description.to_string(),
        date,
        extraction: extraction_id,
        recorded_by: op.member,
        height: ctx.block.height,
        tx_hash: ctx.tx_hash,
    };
    ctx.put(keys::expert_conduct(id, seq), &rec);
    Ok(TxOutput::Expert(*id))
}

/// An expert by id.
pub fn expert(state: &dyn StateReader, id: &Hash) -> Option<Expert> {
    read(state, &keys::expert(id))
}

/// Every expert holding a code that starts with `prefix`, by id, each once.
/// An invalid prefix finds nobody.
pub fn experts_by_specialty(state: &dyn StateReader, prefix: &str) -> Vec<Expert> {
    let Ok(code) = parse_specialty(prefix) else {
        return Vec::new();
    };
    expert_ids_by_specialty(state, &code)
        .into_iter()
        .filter_map(|id| expert(state, &id))
        .collect()
}

/// Ids of experts holding a code starting with `code` (validated), sorted.
pub(crate) fn expert_ids_by_specialty(state: &dyn StateReader, code: &str) -> BTreeSet<Hash> {
    state
        .scan_prefix(&keys::expert_specialty_prefix(code))
        .into_iter()
        .map(|(k, _)| keys::trailing_hash(&k))
        .collect()
}

/// An expert's conduct records, oldest first.
pub fn conduct(state: &dyn StateReader, id: &Hash) -> Vec<ConductRecord> {
    scan::<ConductRecord>(state, &keys::expert_conduct_prefix(id))
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expert_id_is_domain_separated_and_normalised() {
        let a = expert_id("11010519491231002X");
        assert_eq!(a, expert_id(" 11010519491231002x "));
        assert_eq!(
            a,
            Hash::of(b"caihong/expert-id/v111010519491231002X"),
            "documented construction"
        );
        assert_ne!(a, Hash::of(b"11010519491231002X"));
        assert_ne!(a, expert_id("110105194912310021"));
    }

    #[test]
    fn national_id_check_character() {
        // GB 11643 example number.
        assert!(check_national_id("11010519491231002X").is_ok());
        assert!(check_national_id("11010519491231002x").is_ok());
        let e = check_national_id("110105194912310021").unwrap_err();
        assert!(e.contains("expected 'X'"), "{e}");
        assert!(check_national_id("1101051949123100").is_err());
    }

    #[test]
    fn specialty_codes() {
        for ok in ["A", "A01", "A010101", "b0203", "Z0102030405"] {
            assert!(parse_specialty(ok).is_ok(), "{ok}");
        }
        assert_eq!(parse_specialty(" a0101 ").unwrap(), "A0101");
        for bad in [
            "",
            "01",
            "A1",
            "A0101X",
            "AA01",
            "A010203040506",
            "A01-01",
            "Ａ01",
        ] {
            let e = parse_specialty(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput, "{bad}");
        }
    }
}
