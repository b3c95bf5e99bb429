//! Market subjects (市场主体): legal entities identified by their USCC.
//!
//! The registering member is the subject's home; only the home updates it or
//! hands it to another member. Every change is a new version, and all
//! versions stay queryable.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ctx::{Ctx, TxOutput, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{MemberId, Role};
use crate::state::StateReader;
use crate::types::{Date, Hash};
use crate::uscc::Uscc;

/// Roles of a subject in trading, from 《公共资源交易平台系统数据规范》.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SubjectRole {
    /// 招标人
    Tenderee,
    /// 招标代理机构
    TenderingAgency,
    /// 投标人
    Bidder,
    /// 采购人
    Purchaser,
    /// 供应商
    Supplier,
    /// 出让人
    Transferor,
    /// 受让人
    Transferee,
}

impl SubjectRole {
    pub const ALL: [SubjectRole; 7] = [
        SubjectRole::Tenderee,
        SubjectRole::TenderingAgency,
        SubjectRole::Bidder,
        SubjectRole::Purchaser,
        SubjectRole::Supplier,
        SubjectRole::Transferor,
        SubjectRole::Transferee,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubjectRole::Tenderee => "tenderee",
            SubjectRole::TenderingAgency => "agency",
            SubjectRole::Bidder => "bidder",
            SubjectRole::Purchaser => "purchaser",
            SubjectRole::Supplier => "supplier",
            SubjectRole::Transferor => "transferor",
            SubjectRole::Transferee => "transferee",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            SubjectRole::Tenderee => "招标人",
            SubjectRole::TenderingAgency => "招标代理机构",
            SubjectRole::Bidder => "投标人",
            SubjectRole::Purchaser => "采购人",
            SubjectRole::Supplier => "供应商",
            SubjectRole::Transferor => "出让人",
            SubjectRole::Transferee => "受让人",
        }
    }

    /// Accepts the English name or the Chinese term.
    pub fn parse(s: &str) -> Result<SubjectRole, String> {
        let t = s.trim();
        SubjectRole::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(t) || r.chinese() == t)
            .ok_or_else(|| {
                format!(
                    "unknown subject role {t:?}; roles: {}",
                    SubjectRole::ALL
                        .iter()
                        .map(|r| format!("{} ({})", r.as_str(), r.chinese()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// A qualification (资质) held by a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualification {
    pub name: String,
    pub level: String,
    pub certificate_no: String,
    pub valid_until: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectStatus {
    /// 正常
    Active,
    /// 暂停
    Suspended,
    /// 注销
    Deregistered,
}

/// What an operator submits to register or update a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectInfo {
    pub uscc: String,
    pub name: String,
    pub roles: BTreeSet<SubjectRole>,
    pub legal_representative: String,
    pub qualifications: Vec<Qualification>,
    pub status: SubjectStatus,
}

/// One version of a subject as recorded on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub uscc: Uscc,
    pub name: String,
    pub roles: BTreeSet<SubjectRole>,
    pub legal_representative: String,
    /// From the USCC (positions 3–8).
    pub region_code: String,
    pub qualifications: Vec<Qualification>,
    pub status: SubjectStatus,
    /// The member that keeps this subject (its home).
    pub home: MemberId,
    /// 1 for the registration, +1 for every change.
    pub version: u32,
    pub height: u64,
    pub tx_hash: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectAction {
    /// Register a subject (主体登记); the signer's member becomes its home.
    Register(SubjectInfo),
    /// Update a subject (主体变更); home member only.
    Update(SubjectInfo),
    /// Hand the subject to another member (移交); home member only.
    HandOver { uscc: String, to: String },
}

pub(crate) fn execute(ctx: &mut Ctx<'_>, action: &SubjectAction) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Registrar)?;
    // The version `next` supersedes, if any: it moves to the history table.
    let mut superseded = None;
    let next = match action {
        SubjectAction::Register(info) => {
            let uscc = Uscc::parse(&info.uscc)?;
            if let Some(existing) = subject(ctx.reader(), &uscc) {
                return fail(
                    ErrorCode::AlreadyExists,
                    format!(
                        "subject {uscc} is already registered by {} (version {}); use update",
                        existing.home, existing.version
                    ),
                );
            }
            check_info(info)?;
            from_info(ctx, uscc, info, member, 1)
        }
        SubjectAction::Update(info) => {
            let uscc = Uscc::parse(&info.uscc)?;
            let current = home_subject(ctx, &uscc, &member)?;
            check_info(info)?;
            let next = from_info(ctx, uscc, info, member, current.version + 1);
            superseded = Some(current);
            next
        }
        SubjectAction::HandOver { uscc, to } => {
            let uscc = Uscc::parse(uscc)?;
            let current = home_subject(ctx, &uscc, &member)?;
            let to = MemberId::parse(to)?;
            ensure(
                ctx.exists(&keys::member(to.as_str())),
                ErrorCode::NotFound,
                || format!("no member {to} to hand subject {uscc} to"),
            )?;
            ensure(to != member, ErrorCode::InvalidInput, || {
                format!("subject {uscc} is already kept by {to}")
            })?;
            let next = Subject {
                home: to,
                version: current.version + 1,
                height: ctx.block.height,
                tx_hash: ctx.tx_hash,
                ..current.clone()
            };
            superseded = Some(current);
            next
        }
    };
    // The current version lives only under `subj/`; a version goes to `subj_v/` when a newer
    // one replaces it. A registration is then one state key, not two (chains written before
    // this layout also hold their current version under `subj_v/`; `history` reads both).
    if let Some(old) = superseded {
        ctx.put(keys::subject_version(&old.uscc, old.version), &old);
    }
    ctx.put(keys::subject(&next.uscc), &next);
    Ok(TxOutput::SubjectVersion {
        uscc: next.uscc.to_string(),
        version: next.version,
    })
}

fn home_subject(ctx: &Ctx<'_>, uscc: &Uscc, member: &MemberId) -> Result<Subject, TxError> {
    let current = subject(ctx.reader(), uscc).ok_or_else(|| {
        TxError::new(
            ErrorCode::NotFound,
            format!("no subject {uscc}; register it first"),
        )
    })?;
    ensure(&current.home == member, ErrorCode::NotHomeMember, || {
        format!(
            "subject {uscc} is kept by {}; only its home member may change it",
            current.home
        )
    })?;
    Ok(current)
}

fn check_info(info: &SubjectInfo) -> Result<(), TxError> {
    let bad = |m: String| TxError::new(ErrorCode::InvalidInput, m);
    if info.name.trim().is_empty() {
        return Err(bad("subject name must not be empty".into()));
    }
    if info.roles.is_empty() {
        return Err(bad(
            "a subject needs at least one role (e.g. bidder 投标人)".into(),
        ));
    }
    for q in &info.qualifications {
        if q.name.trim().is_empty() || q.certificate_no.trim().is_empty() {
            return Err(bad(
                "a qualification needs a name and a certificate number".into()
            ));
        }
    }
    Ok(())
}

fn from_info(
    ctx: &Ctx<'_>,
    uscc: Uscc,
    info: &SubjectInfo,
    home: MemberId,
    version: u32,
) -> Subject {
    Subject {
        region_code: uscc.region_code().to_string(),
        uscc,
        name: info.name.trim().to_string(),
        roles: info.roles.clone(),
        legal_representative: info.legal_representative.trim().to_string(),
        qualifications: info.qualifications.clone(),
        status: info.status,
        home,
        version,
        height: ctx.block.height,
        tx_hash: ctx.tx_hash,
    }
}

/// The current version of a subject.
pub fn subject(state: &dyn StateReader, uscc: &Uscc) -> Option<Subject> {
    read(state, &keys::subject(uscc))
}

/// Every version of a subject, oldest first: the superseded ones, then the current one.
pub fn history(state: &dyn StateReader, uscc: &Uscc) -> Vec<Subject> {
    let mut versions: Vec<Subject> = scan::<Subject>(state, &keys::subject_versions(uscc))
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    if let Some(current) = subject(state, uscc) {
        // Before the current version was kept only under `subj/`, it was also written here.
        if versions.last().map(|v| v.version) != Some(current.version) {
            versions.push(current);
        }
    }
    versions
}
