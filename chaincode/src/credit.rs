//! Credit records (信用信息): append-only, shared by every member.
//!
//! A record is never changed or deleted. Blacklist removal (撤销黑名单), credit repair (信用修复)
//! and the revocation of a decision (撤销处罚决定) are new records that point at the one they
//! end; each end is also kept under a derived key so lookups stay cheap.
//!
//! A negative record has two periods, and they end differently:
//! - its **publication** (公示): from the decision date through the publication end date
//!   (公示截止期). Repair, blacklist removal or revocation end it early; after it the record stays
//!   on chain for audit, marked as not published. The credit score counts published records.
//! - its **penalty's term** (处罚有效期): from the decision date through the penalty end date.
//!   Only a revocation of the decision (by the authority or a court) ends it early; repair never
//!   does. A penalty that bars bidding but gives no end date runs through the publication end.
//!
//! A subject is *barred* from bidding (一处失信、处处受限) on a day when it has a published
//! blacklist record, or a record whose penalty suspends or cancels bidding (暂停/取消投标资格)
//! inside that penalty's term. Repair is refused while a penalty's term runs unless the chain
//! parameter `repair_during_penalty_term` allows it. Dates are Beijing-time calendar days of the
//! block time (or of the time a query asks about).

use serde::{Deserialize, Serialize};

use crate::ctx::{Ctx, TxOutput, params, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{MemberId, Role};
use crate::params::ScoreParams;
use crate::state::StateReader;
use crate::types::{Date, Hash, TimestampMs, date_of};
use crate::uscc::Uscc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CreditKind {
    /// 违法违规
    Violation,
    /// 黑名单
    Blacklist,
    /// 撤销黑名单 (points at a blacklist record)
    BlacklistRevocation,
    /// 奖励
    Commendation,
    /// 履约
    Performance,
    /// 社会信用 (an external social-credit rating)
    SocialCredit,
    /// 信用修复 (points at the record whose publication it ends early)
    Repair,
    /// 撤销处罚决定: the decision itself revoked by the authority or a court (points at the
    /// record; ends its publication and its penalty's term)
    Revocation,
}

impl CreditKind {
    pub const ALL: [CreditKind; 8] = [
        CreditKind::Violation,
        CreditKind::Blacklist,
        CreditKind::BlacklistRevocation,
        CreditKind::Commendation,
        CreditKind::Performance,
        CreditKind::SocialCredit,
        CreditKind::Repair,
        CreditKind::Revocation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CreditKind::Violation => "violation",
            CreditKind::Blacklist => "blacklist",
            CreditKind::BlacklistRevocation => "blacklist-revocation",
            CreditKind::Commendation => "commendation",
            CreditKind::Performance => "performance",
            CreditKind::SocialCredit => "social-credit",
            CreditKind::Repair => "repair",
            CreditKind::Revocation => "revocation",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            CreditKind::Violation => "违法违规",
            CreditKind::Blacklist => "黑名单",
            CreditKind::BlacklistRevocation => "撤销黑名单",
            CreditKind::Commendation => "奖励",
            CreditKind::Performance => "履约",
            CreditKind::SocialCredit => "社会信用",
            CreditKind::Repair => "信用修复",
            CreditKind::Revocation => "撤销处罚决定",
        }
    }

    pub fn parse(s: &str) -> Result<CreditKind, String> {
        let t = s.trim();
        CreditKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(t) || k.chinese() == t)
            .ok_or_else(|| {
                format!(
                    "unknown credit kind {t:?}; kinds: {}",
                    CreditKind::ALL
                        .iter()
                        .map(|k| format!("{} ({})", k.as_str(), k.chinese()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    fn index(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// 一般
    General,
    /// 严重
    Serious,
}

impl Severity {
    pub fn parse(s: &str) -> Result<Severity, String> {
        match s.trim() {
            "general" | "General" | "一般" => Ok(Severity::General),
            "serious" | "Serious" | "严重" => Ok(Severity::Serious),
            other => Err(format!(
                "unknown severity {other:?}; use general (一般) or serious (严重)"
            )),
        }
    }

    /// The longest publication (公示) of a violation or blacklist, in days: national rules
    /// publish general records up to a year, serious ones up to three.
    pub fn max_publication_days(self) -> i64 {
        match self {
            Severity::General => 366,
            Severity::Serious => 3 * 366,
        }
    }
}

/// Penalty categories: Administrative Penalty Law (2021) Art. 9, plus the
/// bidding restrictions used in public resource trading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PenaltyCategory {
    Warning,
    PublicCriticism,
    Fine,
    ConfiscateIllegalGains,
    ConfiscateIllegalProperty,
    SuspendLicense,
    DowngradeQualification,
    RevokeLicense,
    RestrictBusiness,
    OrderSuspension,
    OrderClosure,
    RestrictPractice,
    Detention,
    /// 暂停投标资格
    BiddingSuspension,
    /// 取消投标资格
    BiddingDisqualification,
    Other,
}

impl PenaltyCategory {
    pub const ALL: [PenaltyCategory; 16] = [
        PenaltyCategory::Warning,
        PenaltyCategory::PublicCriticism,
        PenaltyCategory::Fine,
        PenaltyCategory::ConfiscateIllegalGains,
        PenaltyCategory::ConfiscateIllegalProperty,
        PenaltyCategory::SuspendLicense,
        PenaltyCategory::DowngradeQualification,
        PenaltyCategory::RevokeLicense,
        PenaltyCategory::RestrictBusiness,
        PenaltyCategory::OrderSuspension,
        PenaltyCategory::OrderClosure,
        PenaltyCategory::RestrictPractice,
        PenaltyCategory::Detention,
        PenaltyCategory::BiddingSuspension,
        PenaltyCategory::BiddingDisqualification,
        PenaltyCategory::Other,
    ];

    pub fn chinese(self) -> &'static str {
        match self {
            PenaltyCategory::Warning => "警告",
            PenaltyCategory::PublicCriticism => "通报批评",
            PenaltyCategory::Fine => "罚款",
            PenaltyCategory::ConfiscateIllegalGains => "没收违法所得",
            PenaltyCategory::ConfiscateIllegalProperty => "没收非法财物",
            PenaltyCategory::SuspendLicense => "暂扣许可证件",
            PenaltyCategory::DowngradeQualification => "降低资质等级",
            PenaltyCategory::RevokeLicense => "吊销许可证件",
            PenaltyCategory::RestrictBusiness => "限制开展生产经营活动",
            PenaltyCategory::OrderSuspension => "责令停产停业",
            PenaltyCategory::OrderClosure => "责令关闭",
            PenaltyCategory::RestrictPractice => "限制从业",
            PenaltyCategory::Detention => "行政拘留",
            PenaltyCategory::BiddingSuspension => "暂停投标资格",
            PenaltyCategory::BiddingDisqualification => "取消投标资格",
            PenaltyCategory::Other => "其他",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PenaltyCategory::Warning => "warning",
            PenaltyCategory::PublicCriticism => "public-criticism",
            PenaltyCategory::Fine => "fine",
            PenaltyCategory::ConfiscateIllegalGains => "confiscate-gains",
            PenaltyCategory::ConfiscateIllegalProperty => "confiscate-property",
            PenaltyCategory::SuspendLicense => "suspend-license",
            PenaltyCategory::DowngradeQualification => "downgrade-qualification",
            PenaltyCategory::RevokeLicense => "revoke-license",
            PenaltyCategory::RestrictBusiness => "restrict-business",
            PenaltyCategory::OrderSuspension => "order-suspension",
            PenaltyCategory::OrderClosure => "order-closure",
            PenaltyCategory::RestrictPractice => "restrict-practice",
            PenaltyCategory::Detention => "detention",
            PenaltyCategory::BiddingSuspension => "bidding-suspension",
            PenaltyCategory::BiddingDisqualification => "bidding-disqualification",
            PenaltyCategory::Other => "other",
        }
    }

    /// Accepts the English name or the Chinese term (e.g. `罚款`).
    pub fn parse(s: &str) -> Result<PenaltyCategory, String> {
        let t = s.trim();
        PenaltyCategory::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(t) || c.chinese() == t)
            .ok_or_else(|| format!("unknown penalty category {t:?}"))
    }

    /// Whether this penalty bars the subject from bidding while active.
    pub fn bars_bidding(self) -> bool {
        matches!(
            self,
            PenaltyCategory::BiddingSuspension | PenaltyCategory::BiddingDisqualification
        )
    }
}

/// The fields of a decision, after the 双公示 administrative penalty format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRecordInput {
    pub kind: CreditKind,
    pub subject_uscc: String,
    pub subject_name: String,
    /// 决定文书号 (also the deduplication key with subject and kind).
    pub document_no: String,
    /// 违法行为类型
    pub violation_type: String,
    /// 处罚依据
    pub legal_basis: String,
    /// 处罚类别
    pub penalty_categories: Vec<PenaltyCategory>,
    /// 处罚内容 (and 违法事实)
    pub content: String,
    /// 罚款金额 in fen (分).
    pub fine_fen: u64,
    /// 处罚决定日期
    #[serde(deserialize_with = "crate::types::strict_date::one")]
    pub decision_date: Date,
    /// 处罚有效期: when the penalty itself ends, if it has a term.
    #[serde(default, deserialize_with = "crate::types::strict_date::optional")]
    pub penalty_end_date: Option<Date>,
    /// 公示截止期
    #[serde(deserialize_with = "crate::types::strict_date::one")]
    pub publication_end_date: Date,
    /// 处罚机关
    pub authority_name: String,
    /// 处罚机关统一社会信用代码
    pub authority_uscc: String,
    pub severity: Severity,
    /// For social-credit ratings: the rating given (e.g. `A`).
    pub rating: Option<String>,
}

/// A record as kept on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRecord {
    pub id: u64,
    pub kind: CreditKind,
    pub subject_uscc: Uscc,
    pub subject_name: String,
    pub document_no: String,
    pub violation_type: String,
    pub legal_basis: String,
    pub penalty_categories: Vec<PenaltyCategory>,
    pub content: String,
    pub fine_fen: u64,
    #[serde(deserialize_with = "crate::types::strict_date::one")]
    pub decision_date: Date,
    #[serde(default, deserialize_with = "crate::types::strict_date::optional")]
    pub penalty_end_date: Option<Date>,
    #[serde(deserialize_with = "crate::types::strict_date::one")]
    pub publication_end_date: Date,
    pub authority_name: String,
    pub authority_uscc: Option<Uscc>,
    pub severity: Severity,
    pub rating: Option<String>,
    /// For revocations and repairs: the record they end.
    pub refers_to: Option<u64>,
    /// For revocations and repairs: why.
    pub reason: Option<String>,
    pub recorded_by: MemberId,
    pub height: u64,
    pub tx_hash: Hash,
}

impl CreditRecord {
    /// Whether this is a pointer record (a removal, repair or revocation), which has no
    /// periods of its own.
    fn is_pointer(&self) -> bool {
        matches!(
            self.kind,
            CreditKind::BlacklistRevocation | CreditKind::Repair | CreditKind::Revocation
        )
    }

    /// Last day of the penalty's term, for a penalty that has one: its 处罚有效期, or for a
    /// penalty that bars bidding without one, the publication end.
    pub fn penalty_term_end(&self) -> Option<Date> {
        if self.is_pointer() {
            return None;
        }
        self.penalty_end_date.or_else(|| {
            self.penalty_categories
                .iter()
                .any(|c| c.bars_bidding())
                .then_some(self.publication_end_date)
        })
    }

    /// Published on `date` given how (if at all) its publication ended early.
    pub fn is_published_on(&self, date: Date, ended: Option<&CreditEnd>) -> bool {
        !self.is_pointer()
            && self.decision_date <= date
            && date <= self.publication_end_date
            && ended.is_none_or(|e| date < e.date)
    }

    /// Inside its penalty's term on `date` given whether (and from when) the decision was
    /// revoked; repair does not enter into it.
    pub fn penalty_in_force_on(&self, date: Date, revoked: Option<&CreditEnd>) -> bool {
        self.penalty_term_end().is_some_and(|end| {
            self.decision_date <= date && date <= end && revoked.is_none_or(|r| date < r.date)
        })
    }

    /// Whether the record bars its subject from bidding on `date`: a published blacklist, or
    /// a bidding suspension or disqualification inside its term.
    pub fn bars_bidding_on(
        &self,
        date: Date,
        ended: Option<&CreditEnd>,
        revoked: Option<&CreditEnd>,
    ) -> bool {
        let blacklisted = self.kind == CreditKind::Blacklist && self.is_published_on(date, ended);
        let suspended = self.penalty_categories.iter().any(|c| c.bars_bidding())
            && self.penalty_in_force_on(date, revoked);
        blacklisted || suspended
    }
}

/// How a record's publication or penalty was ended early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditEnd {
    /// First day on which the record is no longer published (or its penalty no longer runs).
    #[serde(deserialize_with = "crate::types::strict_date::one")]
    pub date: Date,
    /// The removal, repair or revocation record that ended it.
    pub by_record: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreditAction {
    /// Record a decision (记录信用信息): violation, blacklist, commendation,
    /// performance or social-credit rating.
    Record(Box<CreditRecordInput>),
    /// Revoke a blacklist entry (撤销黑名单) from `effective_date`; by the
    /// member that recorded it.
    RevokeBlacklist {
        record: u64,
        document_no: String,
        effective_date: Date,
        reason: String,
    },
    /// Credit repair (信用修复): end a record's publication today, by the
    /// member that recorded it, once the minimum period has run (and, unless
    /// the chain allows otherwise, its penalty's term has ended).
    Repair { record: u64, reason: String },
    /// Revocation of the decision (撤销处罚决定, by the authority or a court) from
    /// `effective_date`: ends the record's publication and its penalty's term;
    /// by the member that recorded it.
    Revoke {
        record: u64,
        document_no: String,
        effective_date: Date,
        reason: String,
    },
}

pub(crate) fn execute(ctx: &mut Ctx<'_>, action: &CreditAction) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Credit)?;
    let record = match action {
        CreditAction::Record(input) => new_record(ctx, input, member)?,
        CreditAction::RevokeBlacklist {
            record,
            document_no,
            effective_date,
            reason,
        } => revoke_blacklist(ctx, *record, document_no, *effective_date, reason, member)?,
        CreditAction::Repair { record, reason } => repair(ctx, *record, reason, member)?,
        CreditAction::Revoke {
            record,
            document_no,
            effective_date,
            reason,
        } => revoke_decision(ctx, *record, document_no, *effective_date, reason, member)?,
    };
    let id = record.id;
    ctx.put(keys::credit(id), &record);
    ctx.put(keys::credit_by_uscc(&record.subject_uscc, id), &());
    ctx.put(
        keys::credit_document(
            &record.subject_uscc,
            record.kind.index(),
            &record.document_no,
        ),
        &id,
    );
    if let Some(target) = record.refers_to {
        let end = CreditEnd {
            date: record.decision_date,
            by_record: id,
        };
        if record.kind == CreditKind::Revocation {
            ctx.put(keys::credit_revocation(target), &end);
        }
        // A revocation after a repair leaves the earlier end of publication as it was.
        if ctx.get::<CreditEnd>(&keys::credit_end(target)).is_none() {
            ctx.put(keys::credit_end(target), &end);
        }
    }
    Ok(TxOutput::CreditRecord(id))
}

/// Revocation of a blacklist (撤销) by the member that recorded it: a pointer record that
/// ends the blacklist's active period on its effective date.
fn revoke_blacklist(
    ctx: &mut Ctx<'_>,
    record: u64,
    document_no: &str,
    effective_date: Date,
    reason: &str,
    member: MemberId,
) -> Result<CreditRecord, TxError> {
    let target = own_published_target(ctx, record, &member)?;
    ensure(
        target.kind == CreditKind::Blacklist,
        ErrorCode::InvalidInput,
        || {
            format!(
                "record {record} is a {} record, not a blacklist",
                target.kind.as_str()
            )
        },
    )?;
    let revocation = Revocation {
        document_no,
        effective_date,
        reason,
    };
    revocation_record(
        ctx,
        &target,
        CreditKind::BlacklistRevocation,
        &revocation,
        member,
    )
}

/// Revocation of a decision (撤销处罚决定) by the member that recorded it: a pointer record that
/// ends the record's publication and its penalty's term on its effective date.
fn revoke_decision(
    ctx: &mut Ctx<'_>,
    record: u64,
    document_no: &str,
    effective_date: Date,
    reason: &str,
    member: MemberId,
) -> Result<CreditRecord, TxError> {
    let target = own_record(ctx, record, &member)?;
    ensure(
        matches!(target.kind, CreditKind::Violation | CreditKind::Blacklist),
        ErrorCode::InvalidInput,
        || {
            format!(
                "record {record} is a {} record; only violations and blacklists are decisions \
                 that can be revoked",
                target.kind.as_str()
            )
        },
    )?;
    if let Some(done) = ctx.get::<CreditEnd>(&keys::credit_revocation(record)) {
        return fail(
            ErrorCode::Conflict,
            format!(
                "the decision of record {record} was already revoked from {} by record {}",
                done.date, done.by_record
            ),
        );
    }
    let revocation = Revocation {
        document_no,
        effective_date,
        reason,
    };
    revocation_record(ctx, &target, CreditKind::Revocation, &revocation, member)
}

/// What a removal or revocation names: the deciding document, from when, why.
struct Revocation<'a> {
    document_no: &'a str,
    effective_date: Date,
    reason: &'a str,
}

/// The pointer record of a removal or revocation of `target`, once its fields check out.
fn revocation_record(
    ctx: &mut Ctx<'_>,
    target: &CreditRecord,
    kind: CreditKind,
    r: &Revocation<'_>,
    member: MemberId,
) -> Result<CreditRecord, TxError> {
    check_revocation(
        target,
        r.document_no,
        r.effective_date,
        r.reason,
        ctx.block.date(),
    )?;
    Ok(pointer_record(
        ctx,
        target,
        kind,
        r.document_no,
        r.effective_date,
        r.reason,
        member,
    ))
}

/// A revocation's own fields: a document, a reason, and a date from the decision to today.
fn check_revocation(
    target: &CreditRecord,
    document_no: &str,
    effective_date: Date,
    reason: &str,
    today: Date,
) -> Result<(), TxError> {
    ensure(
        !reason.trim().is_empty() && !document_no.trim().is_empty(),
        ErrorCode::InvalidInput,
        || "a revocation needs a document number and a reason".into(),
    )?;
    ensure(
        effective_date >= target.decision_date,
        ErrorCode::InvalidInput,
        || {
            format!(
                "revocation date {effective_date} is before the blacklist's decision date {}",
                target.decision_date
            )
        },
    )?;
    ensure(effective_date <= today, ErrorCode::InvalidInput, || {
        format!("revocation date {effective_date} is in the future (today is {today})")
    })
}

/// Credit repair (信用修复) by the member that recorded a negative record, once its minimum
/// period has run and (by default) its penalty's term has ended: a pointer record that ends
/// its publication today.
fn repair(
    ctx: &mut Ctx<'_>,
    record: u64,
    reason: &str,
    member: MemberId,
) -> Result<CreditRecord, TxError> {
    let target = own_published_target(ctx, record, &member)?;
    ensure(
        !matches!(
            target.kind,
            CreditKind::Commendation | CreditKind::Performance
        ),
        ErrorCode::InvalidInput,
        || {
            format!(
                "record {record} is a {} record; only negative records are repaired",
                target.kind.as_str()
            )
        },
    )?;
    ensure(!reason.trim().is_empty(), ErrorCode::InvalidInput, || {
        "credit repair needs a reason".into()
    })?;
    let today = ctx.block.date();
    let p = ctx.params();
    let min_days = match target.severity {
        Severity::General => p.repair_min_days_general,
        Severity::Serious => p.repair_min_days_serious,
    };
    let run = (today - target.decision_date).num_days();
    if run < min_days as i64 {
        return fail(
            ErrorCode::TooEarly,
            format!(
                "record {record} has run {run} days since {}; {:?} records can be repaired after {min_days} days (from {})",
                target.decision_date,
                target.severity,
                target.decision_date + chrono::Days::new(min_days),
            ),
        );
    }
    let revoked = ctx.get::<CreditEnd>(&keys::credit_revocation(record));
    if p.repair_during_penalty_term == 0
        && target.penalty_in_force_on(today, revoked.as_ref())
        && let Some(end) = target.penalty_term_end()
    {
        return fail(
            ErrorCode::TooEarly,
            format!(
                "record {record}'s penalty runs until {end} (处罚有效期): credit repair comes once \
                 the penalty's obligations are fulfilled, from {}; only a revocation of the \
                 decision (credit revoke) ends the penalty early",
                end + chrono::Days::new(1)
            ),
        );
    }
    let doc = format!("repair-of-{record}");
    Ok(pointer_record(
        ctx,
        &target,
        CreditKind::Repair,
        &doc,
        today,
        reason,
        member,
    ))
}

fn new_record(
    ctx: &mut Ctx<'_>,
    input: &CreditRecordInput,
    member: MemberId,
) -> Result<CreditRecord, TxError> {
    let bad = |m: String| TxError::new(ErrorCode::InvalidInput, m);
    ensure(
        !matches!(
            input.kind,
            CreditKind::BlacklistRevocation | CreditKind::Repair | CreditKind::Revocation
        ),
        ErrorCode::InvalidInput,
        || {
            "removals, repairs and revocations are their own actions (revoke-blacklist, \
             repair, revoke)"
                .into()
        },
    )?;
    let uscc = Uscc::parse(&input.subject_uscc)?;
    let authority_uscc = if input.authority_uscc.trim().is_empty() {
        None
    } else {
        Some(Uscc::parse(&input.authority_uscc).map_err(|e| {
            TxError::new(
                ErrorCode::InvalidUscc,
                format!("deciding authority's USCC: {e}"),
            )
        })?)
    };
    if input.subject_name.trim().is_empty() {
        return Err(bad("subject name (行政相对人名称) must not be empty".into()));
    }
    if input.document_no.trim().is_empty() {
        return Err(bad(
            "decision document number (决定文书号) must not be empty".into(),
        ));
    }
    if input.kind == CreditKind::Violation && input.penalty_categories.is_empty() {
        return Err(bad(
            "a violation needs at least one penalty category (处罚类别)".into(),
        ));
    }
    check_record_dates(input, ctx.block.date())?;
    if input.kind == CreditKind::SocialCredit
        && input.rating.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        return Err(bad("a social-credit record needs its rating".into()));
    }
    let doc_key = keys::credit_document(&uscc, input.kind.index(), input.document_no.trim());
    if let Some(existing) = ctx.get::<u64>(&doc_key) {
        return fail(
            ErrorCode::AlreadyExists,
            format!(
                "decision {} for {uscc} is already recorded as credit record {existing}",
                input.document_no.trim()
            ),
        );
    }
    Ok(CreditRecord {
        id: ctx.next_id(keys::CREDIT_NEXT_ID),
        kind: input.kind,
        subject_uscc: uscc,
        subject_name: input.subject_name.trim().to_string(),
        document_no: input.document_no.trim().to_string(),
        violation_type: input.violation_type.trim().to_string(),
        legal_basis: input.legal_basis.trim().to_string(),
        penalty_categories: input.penalty_categories.clone(),
        content: input.content.trim().to_string(),
        fine_fen: input.fine_fen,
        decision_date: input.decision_date,
        penalty_end_date: input.penalty_end_date,
        publication_end_date: input.publication_end_date,
        authority_name: input.authority_name.trim().to_string(),
        authority_uscc,
        severity: input.severity,
        rating: input.rating.clone(),
        refers_to: None,
        reason: None,
        recorded_by: member,
        height: ctx.block.height,
        tx_hash: ctx.tx_hash,
    })
}

/// A record's dates against `today` and each other, and its publication period against the
/// national maximum for its severity.
fn check_record_dates(input: &CreditRecordInput, today: Date) -> Result<(), TxError> {
    let bad = |m: String| TxError::new(ErrorCode::InvalidInput, m);
    if input.decision_date > today {
        return Err(bad(format!(
            "decision date {} is in the future (today is {today})",
            input.decision_date
        )));
    }
    if input.publication_end_date < input.decision_date {
        return Err(bad(format!(
            "publication end date (公示截止期) {} is before the decision date {}",
            input.publication_end_date, input.decision_date
        )));
    }
    if let Some(end) = input.penalty_end_date
        && end < input.decision_date
    {
        return Err(bad(format!(
            "penalty end date (处罚有效期) {end} is before the decision date {}",
            input.decision_date
        )));
    }
    if matches!(input.kind, CreditKind::Violation | CreditKind::Blacklist) {
        let max_days = input.severity.max_publication_days();
        let days = (input.publication_end_date - input.decision_date).num_days();
        if days > max_days {
            return Err(bad(format!(
                "publication period of {days} days exceeds the national maximum for {:?} records ({max_days} days)",
                input.severity
            )));
        }
    }
    Ok(())
}

/// The record a removal, repair or revocation points at: one this member recorded, with
/// periods of its own.
fn own_record(ctx: &Ctx<'_>, id: u64, member: &MemberId) -> Result<CreditRecord, TxError> {
    let target = record(ctx.reader(), id)
        .ok_or_else(|| TxError::new(ErrorCode::NotFound, format!("no credit record {id}")))?;
    ensure(
        &target.recorded_by == member,
        ErrorCode::NotHomeMember,
        || {
            format!(
                "record {id} was recorded by {}; only that member may end it",
                target.recorded_by
            )
        },
    )?;
    ensure(!target.is_pointer(), ErrorCode::InvalidInput, || {
        format!(
            "record {id} is a {} record and cannot be ended",
            target.kind.as_str()
        )
    })?;
    Ok(target)
}

/// As [`own_record`], for an end of publication: refused when it already ended early.
fn own_published_target(
    ctx: &Ctx<'_>,
    id: u64,
    member: &MemberId,
) -> Result<CreditRecord, TxError> {
    let target = own_record(ctx, id, member)?;
    if let Some(end) = ctx.get::<CreditEnd>(&keys::credit_end(id)) {
        return fail(
            ErrorCode::Conflict,
            format!(
                "the publication of record {id} already ended on {} by record {}",
                end.date, end.by_record
            ),
        );
    }
    Ok(target)
}

fn pointer_record(
    ctx: &mut Ctx<'_>,
    target: &CreditRecord,
    kind: CreditKind,
    document_no: &str,
    date: Date,
    reason: &str,
    member: MemberId,
) -> CreditRecord {
    CreditRecord {
        id: ctx.next_id(keys::CREDIT_NEXT_ID),
        kind,
        subject_uscc: target.subject_uscc.clone(),
        subject_name: target.subject_name.clone(),
        document_no: document_no.trim().to_string(),
        violation_type: String::new(),
        legal_basis: String::new(),
        penalty_categories: Vec::new(),
        content: String::new(),
        fine_fen: 0,
        decision_date: date,
        penalty_end_date: None,
        publication_end_date: date,
        authority_name: String::new(),
        authority_uscc: None,
        severity: target.severity,
        rating: None,
        refers_to: Some(target.id),
        reason: Some(reason.trim().to_string()),
        recorded_by: member,
        height: ctx.block.height,
        tx_hash: ctx.tx_hash,
    }
}

/// A record as of a day: how (if at all) it was ended early, and whether it is published and
/// its penalty in force that day, so other regions' public sites can follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView {
    pub record: CreditRecord,
    /// The early end of its publication (repair, removal or revocation).
    pub ended: Option<CreditEnd>,
    /// The revocation of its decision, which also ended the penalty's term.
    #[serde(default)]
    pub revoked: Option<CreditEnd>,
    /// The day this view is of.
    #[serde(deserialize_with = "crate::types::strict_date::one")]
    pub as_of: Date,
    /// Published (公示) on `as_of`; after publication the record is kept for audit only.
    pub published: bool,
    /// Last day of publication: the publication end date, or the day before an early end.
    #[serde(default, deserialize_with = "crate::types::strict_date::optional")]
    pub published_until: Option<Date>,
    /// Inside its penalty's term (处罚有效期) on `as_of`.
    pub penalty_in_force: bool,
    /// Last day of the penalty's term, for a penalty that has one (the day before a revocation).
    #[serde(default, deserialize_with = "crate::types::strict_date::optional")]
    pub penalty_until: Option<Date>,
}

pub fn record(state: &dyn StateReader, id: u64) -> Option<CreditRecord> {
    read(state, &keys::credit(id))
}

/// Record `id` as of `date`.
pub fn record_view(state: &dyn StateReader, id: u64, date: Date) -> Option<RecordView> {
    let record = record(state, id)?;
    let ended: Option<CreditEnd> = read(state, &keys::credit_end(id));
    let revoked: Option<CreditEnd> = read(state, &keys::credit_revocation(id));
    let day_before = |e: &CreditEnd| e.date - chrono::Days::new(1);
    let published_until = (!record.is_pointer()).then(|| {
        ended
            .as_ref()
            .map(day_before)
            .map_or(record.publication_end_date, |d| {
                d.min(record.publication_end_date)
            })
    });
    let penalty_until = record
        .penalty_term_end()
        .map(|end| revoked.as_ref().map(day_before).map_or(end, |d| d.min(end)));
    Some(RecordView {
        published: record.is_published_on(date, ended.as_ref()),
        penalty_in_force: record.penalty_in_force_on(date, revoked.as_ref()),
        published_until,
        penalty_until,
        as_of: date,
        ended,
        revoked,
        record,
    })
}

/// Every record naming `uscc`, oldest first, as of `date`.
pub fn records_for(state: &dyn StateReader, uscc: &Uscc, date: Date) -> Vec<RecordView> {
    scan::<()>(state, &keys::credit_by_uscc_prefix(uscc))
        .into_iter()
        .filter_map(|(k, ())| record_view(state, keys::trailing_u64(&k), date))
        .collect()
}

/// Every record committed at `since_height` or later, in commit order (for sync).
///
/// Ids are handed out in commit order and a record is never deleted, so the records' heights
/// rise with their ids: the first one at `since_height` is found by bisection over `1..next`,
/// with no height index in the state (chains written before this also have `cr_h/` keys; they
/// are no longer read).
pub fn records_since(
    state: &dyn StateReader,
    since_height: u64,
    limit: usize,
) -> Vec<CreditRecord> {
    let next: u64 = read(state, keys::CREDIT_NEXT_ID).unwrap_or(1);
    let (mut low, mut high) = (1, next);
    while low < high {
        let mid = low + (high - low) / 2;
        match record(state, mid) {
            Some(r) if r.height < since_height => low = mid + 1,
            _ => high = mid,
        }
    }
    (low..next)
        .take(limit)
        .filter_map(|id| record(state, id))
        .collect()
}

/// Whether a subject is barred from bidding (一处失信、处处受限) at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    pub uscc: Uscc,
    #[serde(deserialize_with = "crate::types::strict_date::one")]
    pub date: Date,
    pub barred: bool,
    /// The records that bar it: published blacklists, and bidding suspensions or
    /// disqualifications inside their term.
    pub records: Vec<CreditRecord>,
}

pub fn restriction(state: &dyn StateReader, uscc: &Uscc, time_ms: TimestampMs) -> Restriction {
    let date = date_of(time_ms);
    let records: Vec<CreditRecord> = records_for(state, uscc, date)
        .into_iter()
        .filter(|v| {
            v.record
                .bars_bidding_on(date, v.ended.as_ref(), v.revoked.as_ref())
        })
        .map(|v| v.record)
        .collect();
    Restriction {
        uscc: uscc.clone(),
        date,
        barred: !records.is_empty(),
        records,
    }
}

/// A deterministic credit score (信用分) with its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditScore {
    pub uscc: Uscc,
    #[serde(deserialize_with = "crate::types::strict_date::one")]
    pub date: Date,
    pub score: i64,
    /// (record id, contribution) for every published record that counted.
    pub contributions: Vec<(u64, i64)>,
}

fn weight(record: &CreditRecord, p: &ScoreParams) -> i64 {
    match (record.kind, record.severity) {
        (CreditKind::Violation, Severity::General) => p.violation_general,
        (CreditKind::Violation, Severity::Serious) => p.violation_serious,
        (CreditKind::Blacklist, _) => p.blacklist,
        (CreditKind::Commendation, _) => p.commendation,
        (CreditKind::Performance, _) => p.performance,
        _ => 0,
    }
}

/// Score = base + the weight of every published record, clamped to [min, max];
/// weights are chain parameters (`score.*`).
pub fn score(state: &dyn StateReader, uscc: &Uscc, time_ms: TimestampMs) -> CreditScore {
    let date = date_of(time_ms);
    let p = params(state).score;
    let contributions: Vec<(u64, i64)> = records_for(state, uscc, date)
        .into_iter()
        .filter(|v| v.published)
        .map(|v| (v.record.id, weight(&v.record, &p)))
        .filter(|(_, w)| *w != 0)
        .collect();
    let raw = contributions
        .iter()
        .fold(p.base, |acc, (_, w)| acc.saturating_add(*w));
    CreditScore {
        uscc: uscc.clone(),
        date,
        score: raw.clamp(p.min, p.max),
        contributions,
    }
}
