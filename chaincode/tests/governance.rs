//! Governance: proposals pass with more than two thirds of current members,
//! take effect at a later height, and expire.

use caihong_chaincode::governance::{self, GovernanceAction, ProposalKind, ProposalStatus};
use caihong_chaincode::members::{self, OperatorAction, Role};
use caihong_chaincode::params::ChainParams;
use caihong_chaincode::sandbox::{Sandbox, key, public};
use caihong_chaincode::{Action, ErrorCode, TxOutput, TxStatus, exec};

fn propose(sb: &mut Sandbox, member: &str, kind: ProposalKind) -> u64 {
    let r = sb.run(
        &Sandbox::admin_key(member),
        Action::Governance(GovernanceAction::Propose { kind }),
    );
    match r.status {
        TxStatus::Success(TxOutput::Proposal(id)) => id,
        s => panic!("propose failed: {s:?}"),
    }
}

fn vote(sb: &mut Sandbox, member: &str, id: u64, approve: bool) -> TxStatus {
    sb.run(
        &Sandbox::admin_key(member),
        Action::Governance(GovernanceAction::Vote {
            proposal: id,
            approve,
        }),
    )
    .status
}

fn add_lanzhou() -> ProposalKind {
    ProposalKind::AddMember {
        id: "lanzhou".into(),
        name: "兰州市公共资源交易中心".into(),
        region_code: "620100".into(),
        node_key: public(&Sandbox::node_key("lanzhou")),
        admin_keys: vec![public(&Sandbox::admin_key("lanzhou"))],
        p2p_address: "/ip4/10.0.0.5/tcp/26656".into(),
    }
}

#[test]
fn adding_a_city_needs_more_than_two_thirds_and_takes_effect_later() {
    let mut sb = Sandbox::new(4);
    let id = propose(&mut sb, "hohhot", add_lanzhou());
    vote(&mut sb, "baotou", id, true);
    // 2 of 4 is not more than two thirds.
    let p = governance::proposal(&sb.state, id).unwrap();
    assert_eq!(p.status, ProposalStatus::Open);
    vote(&mut sb, "ordos", id, true);
    // 3 of 4 is.
    let p = governance::proposal(&sb.state, id).unwrap();
    let ProposalStatus::Passed { effective_height } = p.status else {
        panic!("not passed: {:?}", p.status)
    };
    assert_eq!(effective_height, sb.height + 2);
    assert_eq!(members::members(&sb.state).len(), 4);
    // The change counts blocks: a node makes them without waiting for transactions.
    let pending = |sb: &Sandbox| caihong_chaincode::exec::block_work_pending(&sb.state);
    assert!(pending(&sb));
    sb.empty_block();
    assert!(pending(&sb));
    assert_eq!(
        members::members(&sb.state).len(),
        4,
        "not before its height"
    );
    sb.empty_block();
    assert_eq!(sb.height, effective_height);
    assert!(!pending(&sb), "applied: nothing left that counts blocks");
    let ids: Vec<String> = members::members(&sb.state)
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    assert!(ids.contains(&"lanzhou".to_string()));
    assert!(matches!(
        governance::proposal(&sb.state, id).unwrap().status,
        ProposalStatus::Applied { .. }
    ));
    // The new member's admin can act at once.
    let r = sb.run(
        &Sandbox::admin_key("lanzhou"),
        Action::Operator(OperatorAction::Register {
            key: public(&key("lz-reg")),
            name: "lz registrar".into(),
            roles: [Role::Registrar].into(),
        }),
    );
    assert!(r.is_success(), "{r:?}");
    // Late vote on an applied proposal.
    let TxStatus::Failed(e) = vote(&mut sb, "yinchuan", id, true) else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::ProposalClosed);
}

#[test]
fn enough_no_votes_reject() {
    let mut sb = Sandbox::new(4);
    let id = propose(&mut sb, "hohhot", add_lanzhou());
    vote(&mut sb, "baotou", id, false);
    assert_eq!(
        governance::proposal(&sb.state, id).unwrap().status,
        ProposalStatus::Open
    );
    vote(&mut sb, "ordos", id, false);
    assert_eq!(
        governance::proposal(&sb.state, id).unwrap().status,
        ProposalStatus::Rejected
    );
}

#[test]
fn one_vote_per_member_and_only_admins_vote() {
    let mut sb = Sandbox::new(4);
    let id = propose(&mut sb, "hohhot", add_lanzhou());
    let TxStatus::Failed(e) = vote(&mut sb, "hohhot", id, true) else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::Conflict);
    let reg = sb.operator("baotou", "reg", &[Role::Registrar]);
    let r = sb.run(
        &reg,
        Action::Governance(GovernanceAction::Vote {
            proposal: id,
            approve: true,
        }),
    );
    let TxStatus::Failed(e) = r.status else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::Unauthorized);
}

#[test]
fn expired_proposals_cannot_pass() {
    let params = ChainParams {
        proposal_ttl_blocks: 3,
        ..Default::default()
    };
    let mut sb = Sandbox::with_params(4, params);
    let id = propose(&mut sb, "hohhot", add_lanzhou());
    for _ in 0..3 {
        sb.empty_block();
    }
    let TxStatus::Failed(e) = vote(&mut sb, "baotou", id, true) else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::ProposalExpired);
    assert!(e.message.contains("expired at height"), "{}", e.message);
}

#[test]
fn remove_member_disables_its_keys() {
    let mut sb = Sandbox::new(4);
    let id = propose(
        &mut sb,
        "hohhot",
        ProposalKind::RemoveMember {
            id: "yinchuan".into(),
        },
    );
    vote(&mut sb, "baotou", id, true);
    vote(&mut sb, "ordos", id, true);
    sb.empty_block();
    sb.empty_block();
    assert_eq!(members::members(&sb.state).len(), 3);
    let e = sb.run_err(
        &Sandbox::admin_key("yinchuan"),
        Action::Governance(GovernanceAction::Propose {
            kind: add_lanzhou(),
        }),
    );
    assert_eq!(e.code, ErrorCode::UnknownSigner);
}

#[test]
fn rotating_an_admin_key_needs_no_new_genesis() {
    let mut sb = Sandbox::new(4);
    let new_admin = key("ordos/admin-2");
    let id = propose(
        &mut sb,
        "ordos",
        ProposalKind::RotateAdminKey {
            member: "ordos".into(),
            old_key: public(&Sandbox::admin_key("ordos")),
            new_key: public(&new_admin),
        },
    );
    vote(&mut sb, "hohhot", id, true);
    vote(&mut sb, "baotou", id, true);
    sb.empty_block();
    sb.empty_block();
    let e = sb.run_err(
        &Sandbox::admin_key("ordos"),
        Action::Governance(GovernanceAction::Propose {
            kind: add_lanzhou(),
        }),
    );
    assert_eq!(e.code, ErrorCode::UnknownSigner);
    let r = sb.run(
        &new_admin,
        Action::Governance(GovernanceAction::Propose {
            kind: add_lanzhou(),
        }),
    );
    assert!(r.is_success(), "{r:?}");
}

#[test]
fn rotating_a_node_key_updates_the_member() {
    let mut sb = Sandbox::new(4);
    let new_node = key("baotou/node-2");
    let id = propose(
        &mut sb,
        "baotou",
        ProposalKind::RotateNodeKey {
            member: "baotou".into(),
            new_key: public(&new_node),
        },
    );
    vote(&mut sb, "hohhot", id, true);
    vote(&mut sb, "ordos", id, true);
    sb.empty_block();
    sb.empty_block();
    let m = members::members(&sb.state)
        .into_iter()
        .find(|m| m.id.as_str() == "baotou")
        .unwrap();
    assert_eq!(m.node_key, public(&new_node));
}

#[test]
fn parameters_change_by_vote_and_bad_values_are_refused() {
    let mut sb = Sandbox::new(4);
    let e = sb.run_err(
        &Sandbox::admin_key("hohhot"),
        Action::Governance(GovernanceAction::Propose {
            kind: ProposalKind::SetParameter {
                name: "min_committee_size".into(),
                value: 4,
            },
        }),
    );
    assert_eq!(e.code, ErrorCode::InvalidInput);
    let id = propose(
        &mut sb,
        "hohhot",
        ProposalKind::SetParameter {
            name: "min_committee_size".into(),
            value: 7,
        },
    );
    vote(&mut sb, "baotou", id, true);
    vote(&mut sb, "ordos", id, true);
    sb.empty_block();
    sb.empty_block();
    assert_eq!(exec::params(&sb.state).min_committee_size, 7);
}

#[test]
fn a_change_invalid_by_its_height_is_recorded_as_failed() {
    let mut sb = Sandbox::new(4);
    let a = propose(&mut sb, "hohhot", add_lanzhou());
    let b = propose(&mut sb, "baotou", add_lanzhou());
    for m in ["ordos", "yinchuan"] {
        for id in [a, b] {
            vote(&mut sb, m, id, true);
        }
    }
    // `a` passed first; `b` passed one block later, before `a` took effect.
    for _ in 0..3 {
        sb.empty_block();
    }
    assert!(matches!(
        governance::proposal(&sb.state, a).unwrap().status,
        ProposalStatus::Applied { .. }
    ));
    let status = governance::proposal(&sb.state, b).unwrap().status;
    let ProposalStatus::Failed { reason, .. } = status else {
        panic!("{status:?}")
    };
    assert!(reason.contains("exists already"), "{reason}");
}
