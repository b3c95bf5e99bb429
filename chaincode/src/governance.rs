//! Governance (治理): membership and chain parameters change only by proposal
//! and vote of member admins.
//!
//! One vote per member, cast by any of its admins. A proposal passes when
//! more than two thirds of the current members approve, and fails once that
//! can no longer happen. A passed change takes effect at
//! `pass height + activation_delay_blocks`, applied by [`begin_block`] at
//! that height on every node alike. Votes after the expiry height fail with
//! `PROPOSAL_EXPIRED`. A change that became invalid before it took effect
//! (say, two proposals adding the same city) is recorded as failed, not applied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::encode;
use crate::ctx::{BlockContext, Ctx, TxOutput, params, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{Member, MemberId, Operator, Role, check_region_code, insert_member, members};
use crate::state::{Overlay, StateReader, WriteSet};
use crate::types::{EncryptionKey, PublicKey};

/// What a proposal would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalKind {
    /// Admit a new city (新增成员).
    AddMember {
        id: String,
        name: String,
        region_code: String,
        node_key: PublicKey,
        admin_keys: Vec<PublicKey>,
        p2p_address: String,
    },
    /// Remove a member (移除成员); its records stay, its keys stop working.
    RemoveMember { id: String },
    /// Replace a member's node key (轮换节点密钥).
    RotateNodeKey { member: String, new_key: PublicKey },
    /// Replace one of a member's admin keys (轮换管理员密钥).
    RotateAdminKey {
        member: String,
        old_key: PublicKey,
        new_key: PublicKey,
    },
    /// Change a chain parameter (链上参数), see [`crate::params::PARAMETER_NAMES`].
    SetParameter { name: String, value: i64 },
    /// Register or replace a member's X25519 encryption key (登记加密公钥), to which seat
    /// notices of sealed extractions are encrypted. Notices already sealed stay readable only
    /// with the key they were sealed to.
    SetEncryptionKey { member: String, key: EncryptionKey },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalStatus {
    Open,
    /// Passed; takes effect at `effective_height`.
    Passed {
        effective_height: u64,
    },
    Rejected,
    Applied {
        height: u64,
    },
    /// Passed but no longer applicable when its height came.
    Failed {
        height: u64,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: u64,
    pub kind: ProposalKind,
    pub proposer: MemberId,
    pub created_height: u64,
    /// Last height at which votes count.
    pub expires_height: u64,
    pub votes: BTreeMap<MemberId, bool>,
    pub status: ProposalStatus,
}

impl Proposal {
    /// `Open` proposals past their expiry height are expired.
    pub fn is_expired_at(&self, height: u64) -> bool {
        self.status == ProposalStatus::Open && height > self.expires_height
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GovernanceAction {
    /// Propose a change; the proposer's member votes yes.
    Propose { kind: ProposalKind },
    /// Vote for the signer's member.
    Vote { proposal: u64, approve: bool },
}

pub(crate) fn execute(ctx: &mut Ctx<'_>, action: &GovernanceAction) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Admin)?;
    match action {
        GovernanceAction::Propose { kind } => {
            check_kind(ctx.reader(), kind)?;
            let id = ctx.next_id(keys::PROPOSAL_NEXT_ID);
            let p = ctx.params();
            let mut proposal = Proposal {
                id,
                kind: kind.clone(),
                proposer: member.clone(),
                created_height: ctx.block.height,
                expires_height: ctx.block.height + p.proposal_ttl_blocks,
                votes: BTreeMap::from([(member, true)]),
                status: ProposalStatus::Open,
            };
            tally(ctx, &mut proposal);
            ctx.put(keys::proposal(id), &proposal);
            Ok(TxOutput::Proposal(id))
        }
        GovernanceAction::Vote { proposal, approve } => {
            let mut prop: Proposal = ctx.get(&keys::proposal(*proposal)).ok_or_else(|| {
                TxError::new(ErrorCode::NotFound, format!("no proposal {proposal}"))
            })?;
            if prop.is_expired_at(ctx.block.height) {
                return fail(
                    ErrorCode::ProposalExpired,
                    format!(
                        "proposal {proposal} expired at height {}; make a new proposal",
                        prop.expires_height
                    ),
                );
            }
            ensure(
                prop.status == ProposalStatus::Open,
                ErrorCode::ProposalClosed,
                || format!("proposal {proposal} is closed: {:?}", prop.status),
            )?;
            ensure(
                !prop.votes.contains_key(&member),
                ErrorCode::Conflict,
                || format!("member {member} has already voted on proposal {proposal}"),
            )?;
            prop.votes.insert(member, *approve);
            tally(ctx, &mut prop);
            ctx.put(keys::proposal(*proposal), &prop);
            Ok(TxOutput::Proposal(*proposal))
        }
    }
}

/// Counts the votes of current members and closes the proposal when decided.
fn tally(ctx: &mut Ctx<'_>, prop: &mut Proposal) {
    let current: Vec<MemberId> = members(ctx.reader()).into_iter().map(|m| m.id).collect();
    let n = current.len() as u64;
    let yes = current
        .iter()
        .filter(|m| prop.votes.get(*m) == Some(&true))
        .count() as u64;
    let no = current
        .iter()
        .filter(|m| prop.votes.get(*m) == Some(&false))
        .count() as u64;
    if 3 * yes > 2 * n {
        let effective_height = ctx.block.height + ctx.params().activation_delay_blocks.max(1);
        prop.status = ProposalStatus::Passed { effective_height };
        ctx.put(keys::pending_change(effective_height, prop.id), &());
    } else if 3 * (n - no) <= 2 * n {
        prop.status = ProposalStatus::Rejected;
    }
}

/// Checks a change against the current state (at proposal and again at apply): one arm per
/// proposal kind, hence its length.
fn check_kind(state: &dyn StateReader, kind: &ProposalKind) -> Result<(), TxError> {
    let member_exists = |id: &str| state.get(&keys::member(id)).is_some();
    let key_free = |key: &PublicKey| -> Result<(), TxError> {
        ensure(
            state.get(&keys::operator(key)).is_none()
                && state.get(&keys::member_by_node_key(key)).is_none(),
            ErrorCode::AlreadyExists,
            || format!("key {key} is already in use"),
        )?;
        key.verifying_key().map(|_| ()).map_err(|_| {
            TxError::new(
                ErrorCode::InvalidInput,
                format!("{key} is not a valid ed25519 key"),
            )
        })
    };
    match kind {
        ProposalKind::AddMember {
            id,
            name,
            region_code,
            node_key,
            admin_keys,
            p2p_address,
        } => {
            MemberId::parse(id)?;
            ensure(!member_exists(id), ErrorCode::AlreadyExists, || {
                format!("member {id} exists already")
            })?;
            ensure(!name.trim().is_empty(), ErrorCode::InvalidInput, || {
                "member name must not be empty".into()
            })?;
            ensure(
                !p2p_address.trim().is_empty(),
                ErrorCode::InvalidInput,
                || "the new member's p2p address must not be empty".into(),
            )?;
            check_region_code(region_code)?;
            ensure(!admin_keys.is_empty(), ErrorCode::InvalidInput, || {
                "a member needs at least one admin key".into()
            })?;
            key_free(node_key)?;
            for (i, k) in admin_keys.iter().enumerate() {
                key_free(k)?;
                ensure(
                    !admin_keys[..i].contains(k) && k != node_key,
                    ErrorCode::InvalidInput,
                    || format!("key {k} appears twice"),
                )?;
            }
        }
        ProposalKind::RemoveMember { id } => {
            ensure(member_exists(id), ErrorCode::NotFound, || {
                format!("no member {id}")
            })?;
            ensure(members(state).len() > 1, ErrorCode::Conflict, || {
                "the last member cannot be removed".into()
            })?;
        }
        ProposalKind::RotateNodeKey { member, new_key } => {
            ensure(member_exists(member), ErrorCode::NotFound, || {
                format!("no member {member}")
            })?;
            key_free(new_key)?;
        }
        ProposalKind::RotateAdminKey {
            member,
            old_key,
            new_key,
        } => {
            let m: Member = read(state, &keys::member(member))
                .ok_or_else(|| TxError::new(ErrorCode::NotFound, format!("no member {member}")))?;
            ensure(m.admin_keys.contains(old_key), ErrorCode::NotFound, || {
                format!("{old_key} is not an admin key of {member}")
            })?;
            key_free(new_key)?;
        }
        ProposalKind::SetEncryptionKey { member, key } => {
            ensure(member_exists(member), ErrorCode::NotFound, || {
                format!("no member {member}")
            })?;
            ensure(
                crate::experts::seal::valid_encryption_key(key),
                ErrorCode::InvalidInput,
                || format!("{key} is not a usable X25519 public key (low order)"),
            )?;
        }
        ProposalKind::SetParameter { name, value } => {
            params(state)
                .set(name, *value)
                .map_err(|e| TxError::new(ErrorCode::InvalidInput, e))?;
        }
    }
    Ok(())
}

/// Applies every passed change whose effective height has come.
pub(crate) fn begin_block(state: &dyn StateReader, block: &BlockContext) -> WriteSet {
    let mut overlay = Overlay::new(state);
    for (key, ()) in scan::<()>(state, keys::PENDING_PREFIX) {
        let effective =
            u64::from_be_bytes(key[keys::PENDING_PREFIX.len()..][..8].try_into().unwrap());
        if effective > block.height {
            break;
        }
        let id = keys::trailing_u64(&key);
        overlay.delete(key);
        let Some(mut prop) = read::<Proposal>(&overlay, &keys::proposal(id)) else {
            continue;
        };
        prop.status = match check_kind(&overlay, &prop.kind) {
            Ok(()) => {
                apply_change(&mut overlay, &prop.kind, block.height);
                ProposalStatus::Applied {
                    height: block.height,
                }
            }
            Err(e) => ProposalStatus::Failed {
                height: block.height,
                reason: e.message,
            },
        };
        overlay.put(keys::proposal(id), encode(&prop));
    }
    overlay.into_writes()
}

fn apply_change<S: StateReader>(overlay: &mut Overlay<S>, kind: &ProposalKind, height: u64) {
    match kind {
        ProposalKind::AddMember {
            id,
            name,
            region_code,
            node_key,
            admin_keys,
            p2p_address,
        } => {
            let member = Member {
                id: MemberId::parse(id).expect("checked"),
                name: name.trim().to_string(),
                region_code: region_code.clone(),
                node_key: *node_key,
                admin_keys: admin_keys.clone(),
                p2p_address: p2p_address.trim().to_string(),
                joined_height: height,
                encryption_key: None,
            };
            insert_member(overlay, &member);
        }
        ProposalKind::RemoveMember { id } => {
            let m: Member = read(&*overlay, &keys::member(id)).expect("checked");
            overlay.delete(keys::member(id));
            overlay.delete(keys::member_by_node_key(&m.node_key));
            for (k, mut op) in scan::<Operator>(&*overlay, keys::OPERATOR_PREFIX) {
                if op.member == m.id && op.active {
                    op.active = false;
                    overlay.put(k, encode(&op));
                }
            }
        }
        ProposalKind::RotateNodeKey { member, new_key } => {
            let mut m: Member = read(&*overlay, &keys::member(member)).expect("checked");
            overlay.delete(keys::member_by_node_key(&m.node_key));
            m.node_key = *new_key;
            overlay.put(keys::member_by_node_key(new_key), encode(&m.id));
            overlay.put(keys::member(member), encode(&m));
        }
        ProposalKind::RotateAdminKey {
            member,
            old_key,
            new_key,
        } => {
            let mut m: Member = read(&*overlay, &keys::member(member)).expect("checked");
            for k in m.admin_keys.iter_mut() {
                if k == old_key {
                    *k = *new_key;
                }
            }
            if let Some(mut old) = read::<Operator>(&*overlay, &keys::operator(old_key)) {
                old.active = false;
                overlay.put(keys::operator(old_key), encode(&old));
            }
            let op = Operator {
                key: *new_key,
                member: m.id.clone(),
                name: format!("{} admin (rotated at {height})", m.id),
                roles: [Role::Admin].into(),
                active: true,
            };
            overlay.put(keys::operator(new_key), encode(&op));
            overlay.put(keys::member(member), encode(&m));
        }
        ProposalKind::SetParameter { name, value } => {
            let mut p = params(&*overlay);
            p.set(name, *value).expect("checked");
            overlay.put(keys::PARAMS.to_vec(), encode(&p));
        }
        ProposalKind::SetEncryptionKey { member, key } => {
            let mut m: Member = read(&*overlay, &keys::member(member)).expect("checked");
            m.encryption_key = Some(*key);
            overlay.put(keys::member(member), encode(&m));
        }
    }
}

/// A proposal by id.
pub fn proposal(state: &dyn StateReader, id: u64) -> Option<Proposal> {
    read(state, &keys::proposal(id))
}

/// Every proposal, oldest first.
pub fn proposals(state: &dyn StateReader) -> Vec<Proposal> {
    scan::<Proposal>(state, keys::PROPOSAL_PREFIX)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}
