//! Members (成员单位) and operators (操作员).
//!
//! A member is one city's trading center with a node key and admin keys.
//! Admins register the member's operators and give them roles; every action
//! checks the signer's role. Admins hold every role of their member. Admin
//! keys and node keys change only through governance, never by one member.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ctx::{Ctx, TxOutput};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::types::PublicKey;

/// A member's short identifier, e.g. `hohhot`: 1–32 of `a-z0-9-`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberId(String);

impl MemberId {
    pub fn parse(s: &str) -> Result<MemberId, TxError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ensure(ok, ErrorCode::InvalidInput, || {
            format!("member id {s:?} must be 1-32 characters of a-z, 0-9 and '-'")
        })?;
        Ok(MemberId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({})", self.0)
    }
}

/// A member center and the keys it acts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    /// Full name, e.g. 呼和浩特市公共资源交易中心.
    pub name: String,
    /// GB/T 2260 administrative region code (6 digits).
    pub region_code: String,
    /// The key its node signs consensus messages and authenticates peers with.
    pub node_key: PublicKey,
    pub admin_keys: Vec<PublicKey>,
    /// Where its node listens for peers (a libp2p multiaddr).
    pub p2p_address: String,
    /// Height from which it is a member (0 for genesis members).
    pub joined_height: u64,
    /// Its X25519 key for sealed seat notices (set in genesis or by governance); a member
    /// without one can neither request extractions nor have experts seated.
    pub encryption_key: Option<crate::types::EncryptionKey>,
}

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// 管理员: operators, governance votes, CA recognition; implies every role.
    Admin,
    /// 登记员: market subjects and their certificates.
    Registrar,
    /// 信用管理员: credit records.
    Credit,
    /// 专家管理员: experts and extractions.
    Expert,
    /// 审计员: records expert conduct; otherwise reads.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Registrar,
        Role::Credit,
        Role::Expert,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Registrar => "registrar",
            Role::Credit => "credit",
            Role::Expert => "expert",
            Role::Auditor => "auditor",
        }
    }

    /// The role with its Chinese name, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "admin (管理员)",
            Role::Registrar => "registrar (登记员)",
            Role::Credit => "credit (信用管理员)",
            Role::Expert => "expert (专家管理员)",
            Role::Auditor => "auditor (审计员)",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown role {s:?}; roles: admin, registrar, credit, expert, auditor")
            })
    }
}

/// A key registered by a member to act for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub key: PublicKey,
    pub member: MemberId,
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub active: bool,
}

impl Operator {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorAction {
    /// Register a new operator of the signer's member (admin only). The admin
    /// role itself is granted only by genesis or governance.
    Register {
        key: PublicKey,
        name: String,
        roles: BTreeSet<Role>,
    },
    /// Replace an operator's roles.
    SetRoles {
        key: PublicKey,
        roles: BTreeSet<Role>,
    },
    /// Deactivate an operator; its key can no longer sign.
    Deactivate { key: PublicKey },
}

pub(crate) fn execute(ctx: &mut Ctx<'_>, action: &OperatorAction) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Admin)?;
    match action {
        OperatorAction::Register { key, name, roles } => {
            check_roles(roles)?;
            ensure(!name.trim().is_empty(), ErrorCode::InvalidInput, || {
                "operator name must not be empty".into()
            })?;
            key.verifying_key().map_err(|_| {
                TxError::new(
                    ErrorCode::InvalidInput,
                    format!("{key} is not a valid ed25519 key"),
                )
            })?;
            if let Some(existing) = ctx.get::<Operator>(&keys::operator(key)) {
                return fail(
                    ErrorCode::AlreadyExists,
                    format!(
                        "key {key} is already operator {} of {}",
                        existing.name, existing.member
                    ),
                );
            }
            ctx.put(
                keys::operator(key),
                &Operator {
                    key: *key,
                    member,
                    name: name.trim().to_string(),
                    roles: roles.clone(),
                    active: true,
                },
            );
        }
        OperatorAction::SetRoles { key, roles } => {
            check_roles(roles)?;
            let mut op = own_operator(ctx, key, &member)?;
            ensure(
                !op.roles.contains(&Role::Admin),
                ErrorCode::Unauthorized,
                || "admin keys change only by governance (rotate-admin-key)".into(),
            )?;
            op.roles = roles.clone();
            ctx.put(keys::operator(key), &op);
        }
        OperatorAction::Deactivate { key } => {
            let mut op = own_operator(ctx, key, &member)?;
            ensure(
                !op.roles.contains(&Role::Admin),
                ErrorCode::Unauthorized,
                || "admin keys change only by governance (rotate-admin-key)".into(),
            )?;
            op.active = false;
            ctx.put(keys::operator(key), &op);
        }
    }
    Ok(TxOutput::None)
}

fn check_roles(roles: &BTreeSet<Role>) -> Result<(), TxError> {
    ensure(!roles.is_empty(), ErrorCode::InvalidInput, || {
        "an operator needs at least one role".into()
    })?;
    ensure(
        !roles.contains(&Role::Admin),
        ErrorCode::Unauthorized,
        || "the admin role is granted only by genesis or a governance proposal".into(),
    )
}

fn own_operator(ctx: &Ctx<'_>, key: &PublicKey, member: &MemberId) -> Result<Operator, TxError> {
    let op: Operator = ctx
        .get(&keys::operator(key))
        .ok_or_else(|| TxError::new(ErrorCode::NotFound, format!("no operator with key {key}")))?;
    ensure(&op.member == member, ErrorCode::Unauthorized, || {
        format!(
            "operator {} belongs to {}, not {member}",
            op.name, op.member
        )
    })?;
    Ok(op)
}

/// Writes a member and its admin operators (genesis and governance).
pub(crate) fn insert_member(
    overlay: &mut crate::state::Overlay<impl crate::state::StateReader>,
    member: &Member,
) {
    use crate::codec::encode;
    overlay.put(keys::member(member.id.as_str()), encode(member));
    overlay.put(
        keys::member_by_node_key(&member.node_key),
        encode(&member.id),
    );
    for (i, key) in member.admin_keys.iter().enumerate() {
        let op = Operator {
            key: *key,
            member: member.id.clone(),
            name: format!("{} admin {}", member.id, i + 1),
            roles: BTreeSet::from([Role::Admin]),
            active: true,
        };
        overlay.put(keys::operator(key), encode(&op));
    }
}

/// Every current member, ordered by id.
pub fn members(state: &dyn crate::state::StateReader) -> Vec<Member> {
    crate::ctx::scan::<Member>(state, keys::MEMBER_PREFIX)
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

/// Checks a 6-digit GB/T 2260 region code.
pub fn check_region_code(code: &str) -> Result<(), TxError> {
    ensure(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        ErrorCode::InvalidInput,
        || format!("region code {code:?} must be 6 digits (GB/T 2260)"),
    )
}
/// Who signed: the checks every domain module makes on the signer of its transaction.
impl Ctx<'_> {
    /// The signing operator, who must be active.
    pub fn operator(&self) -> Result<Operator, TxError> {
        let op: Operator = self.get(&keys::operator(&self.signer)).ok_or_else(|| {
            TxError::new(
                ErrorCode::UnknownSigner,
                format!("signer {} is not a registered operator", self.signer),
            )
        })?;
        ensure(op.active, ErrorCode::UnknownSigner, || {
            format!("operator {} ({}) is deactivated", op.name, self.signer)
        })?;
        Ok(op)
    }

    /// Checks the signer holds `role` (admins hold every role of their member)
    /// and returns the member it acts for.
    pub fn require_role(&self, role: Role) -> Result<MemberId, TxError> {
        let op = self.operator()?;
        ensure(op.has_role(role), ErrorCode::Unauthorized, || {
            format!(
                "operator {} of member {} lacks the {} role; its roles: {}",
                op.name,
                op.member,
                role.label(),
                op.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        ensure(
            self.exists(&keys::member(op.member.as_str())),
            ErrorCode::Unauthorized,
            || format!("member {} is no longer in the alliance", op.member),
        )?;
        Ok(op.member)
    }
}
