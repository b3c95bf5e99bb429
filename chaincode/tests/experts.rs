//! The shared expert pool (专家资源共享) and extractions (专家抽取): who may
//! change what, recusal (回避), the committee rules, the verifiable draw,
//! commit-reveal with its fallback, and confirm/decline with backups.

use std::collections::{BTreeMap, BTreeSet};

use caihong_chaincode::experts::{
    self, ConductKind, Expert, ExpertAction, ExpertInfo, ExpertStatus, Extraction,
    ExtractionRequest, ExtractionStatus, RemoteRequest, Requirement, SeedScheme, draw,
    extraction::{baseline_seed, revealed_seed},
};
use caihong_chaincode::members::Role;
use caihong_chaincode::params::ChainParams;
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::{Action, Date, ErrorCode, Hash, TxOutput, TxStatus, uscc};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

const DAY: u64 = 86_400_000;
const MEMBERS: [&str; 4] = ["hohhot", "baotou", "ordos", "yinchuan"];

/// A valid USCC for test organisation `n`.
fn org(n: u32) -> String {
    uscc::build("91150100", &format!("MA{n:06}"))
        .unwrap()
        .as_str()
        .to_string()
}

fn tenderee() -> String {
    org(900)
}

struct Fx {
    sb: Sandbox,
    /// An expert-role operator per member.
    ops: BTreeMap<&'static str, SigningKey>,
    next_person: u32,
}

impl Fx {
    fn new() -> Fx {
        Fx::with_params(ChainParams::default())
    }

    fn with_params(params: ChainParams) -> Fx {
        let mut sb = Sandbox::with_params(4, params);
        let ops = MEMBERS
            .iter()
            .map(|m| (*m, sb.operator(m, "experts", &[Role::Expert])))
            .collect();
        Fx {
            sb,
            ops,
            next_person: 0,
        }
    }

    fn op(&self, member: &str) -> &SigningKey {
        &self.ops[member]
    }

    fn info(&mut self, specialties: &[&str], employer: u32) -> ExpertInfo {
        self.next_person += 1;
        ExpertInfo {
            id: experts::expert_id(&format!("ID-{}", self.next_person)),
            name: format!("专家{}", self.next_person),
            specialties: specialties.iter().map(|s| s.to_string()).collect(),
            title: "高级工程师".into(),
            employer_uscc: org(employer),
        }
    }

    /// Registers `n` experts of `member` in one block; each its own employer.
    fn pool(&mut self, member: &'static str, n: usize, specialty: &str) -> Vec<Hash> {
        let infos: Vec<ExpertInfo> = (0..n)
            .map(|_| {
                let e = self.next_person + 1;
                self.info(&[specialty], e)
            })
            .collect();
        let k = self.op(member).clone();
        let actions: Vec<(&SigningKey, Action)> = infos
            .iter()
            .map(|i| {
                (
                    &k,
                    Action::Expert(ExpertAction::Register(Box::new(i.clone()))),
                )
            })
            .collect();
        let txs = self.sb.sign(&actions);
        for r in self.sb.block(&txs) {
            assert!(r.is_success(), "{r:?}");
        }
        infos.into_iter().map(|i| i.id).collect()
    }

    fn register(&mut self, member: &str, info: &ExpertInfo) -> TxStatus {
        let k = self.op(member).clone();
        self.sb
            .run(
                &k,
                Action::Expert(ExpertAction::Register(Box::new(info.clone()))),
            )
            .status
    }

    fn act(&mut self, member: &str, a: ExpertAction) -> TxStatus {
        let k = self.op(member).clone();
        self.sb.run(&k, Action::Expert(a)).status
    }

    fn act_err(&mut self, member: &str, a: ExpertAction) -> caihong_chaincode::TxError {
        let k = self.op(member).clone();
        self.sb.run_err(&k, Action::Expert(a))
    }

    /// A request for `count` primaries + `backups` of `specialty`, window two
    /// days from now (8 hours), tenderee org(900), no bidders.
    fn req(&self, specialty: &str, count: u32, backups: u32) -> ExtractionRequest {
        let start = self.sb.time_ms + 2 * DAY;
        ExtractionRequest {
            project_code: "HHHT-2024-001".into(),
            window_start: start,
            window_end: start + 8 * 3_600_000,
            requirements: vec![Requirement {
                specialty: specialty.into(),
                count,
                backups,
            }],
            tenderee_uscc: tenderee(),
            bidder_usccs: vec![],
            remote: None,
            commitment: None,
        }
    }

    fn request(&mut self, member: &str, r: ExtractionRequest) -> u64 {
        match self.act(member, ExpertAction::RequestExtraction(Box::new(r))) {
            TxStatus::Success(TxOutput::Extraction(id)) => id,
            s => panic!("request failed: {s:?}"),
        }
    }

    /// Requests and runs the next block, where the baseline draw happens.
    fn drawn(&mut self, member: &str, r: ExtractionRequest) -> Extraction {
        let id = self.request(member, r);
        self.sb.empty_block();
        self.ext(id)
    }

    fn ext(&self, id: u64) -> Extraction {
        experts::extraction(&self.sb.state, id).unwrap()
    }

    fn expert(&self, id: &Hash) -> Expert {
        experts::expert(&self.sb.state, id).unwrap()
    }
}

fn seated(ext: &Extraction) -> Vec<Hash> {
    ext.seats().map(|s| s.expert).collect()
}

fn respond(extraction: u64, expert: Hash, accept: bool) -> ExpertAction {
    ExpertAction::Respond {
        extraction,
        expert,
        accept,
    }
}

// ---------------------------------------------------------------- experts

#[test]
fn a_registered_expert_is_found_by_any_ancestor_code_once() {
    let mut fx = Fx::new();
    let info = fx.info(&["A010101", "a010102", "B02"], 1);
    let out = fx.register("hohhot", &info);
    assert_eq!(out, TxStatus::Success(TxOutput::Expert(info.id)));
    let e = fx.expert(&info.id);
    assert_eq!(e.home.as_str(), "hohhot");
    assert_eq!(e.status, ExpertStatus::Active);
    assert_eq!(e.specialties, vec!["A010101", "A010102", "B02"]);
    for (prefix, found) in [
        ("A", 1),
        ("A01", 1),
        ("A0101", 1),
        ("A010102", 1),
        ("A0102", 0),
        ("B02", 1),
        ("B0201", 0),
        ("C", 0),
        ("not a code", 0),
    ] {
        assert_eq!(
            experts::experts_by_specialty(&fx.sb.state, prefix).len(),
            found,
            "{prefix}"
        );
    }
    assert!(experts::conduct(&fx.sb.state, &info.id).is_empty());
}

#[test]
fn registration_needs_the_expert_role_and_a_fresh_id() {
    let mut fx = Fx::new();
    let registrar = fx.sb.operator("hohhot", "registrar", &[Role::Registrar]);
    let info = fx.info(&["A01"], 1);
    let e = fx.sb.run_err(
        &registrar,
        Action::Expert(ExpertAction::Register(Box::new(info.clone()))),
    );
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert!(e.message.contains("expert"), "{}", e.message);
    // Admins hold every role.
    let admin = Sandbox::admin_key("baotou");
    let r = fx.sb.run(
        &admin,
        Action::Expert(ExpertAction::Register(Box::new(info.clone()))),
    );
    assert!(r.is_success(), "{r:?}");
    let TxStatus::Failed(e) = fx.register("hohhot", &info) else {
        panic!("duplicate registered")
    };
    assert_eq!(e.code, ErrorCode::AlreadyExists);
    assert!(e.message.contains("baotou"), "{}", e.message);
}

#[test]
fn malformed_experts_are_rejected() {
    let mut fx = Fx::new();
    for bad in ["A1", "01", "AA01", "A01-02", "A010203040506"] {
        let info = fx.info(&[bad], 1);
        let TxStatus::Failed(e) = fx.register("hohhot", &info) else {
            panic!("{bad} accepted")
        };
        assert_eq!(e.code, ErrorCode::InvalidInput, "{bad}");
        assert!(e.message.contains("specialty code"), "{}", e.message);
    }
    let mut info = fx.info(&[], 1);
    let TxStatus::Failed(e) = fx.register("hohhot", &info) else {
        panic!("no specialties accepted")
    };
    assert_eq!(e.code, ErrorCode::InvalidInput);
    info.specialties = vec!["A01".into()];
    info.employer_uscc = "91150100MA0N12340X".into();
    let TxStatus::Failed(e) = fx.register("hohhot", &info) else {
        panic!("bad USCC accepted")
    };
    assert_eq!(e.code, ErrorCode::InvalidUscc);
    info.employer_uscc = org(1);
    info.name = "  ".into();
    let TxStatus::Failed(e) = fx.register("hohhot", &info) else {
        panic!("empty name accepted")
    };
    assert_eq!(e.code, ErrorCode::InvalidInput);
}

#[test]
fn only_the_home_member_updates_and_the_index_follows() {
    let mut fx = Fx::new();
    let mut info = fx.info(&["A0101", "A0201"], 1);
    fx.register("hohhot", &info);
    info.specialties = vec!["B02".into(), "A0201".into()];
    info.title = "教授级高级工程师".into();
    let e = fx.act_err("baotou", ExpertAction::Update(Box::new(info.clone())));
    assert_eq!(e.code, ErrorCode::NotHomeMember);
    assert!(e.message.contains("hohhot"), "{}", e.message);
    assert!(
        fx.expert(&info.id)
            .specialties
            .contains(&"A0101".to_string())
    );

    let out = fx.act("hohhot", ExpertAction::Update(Box::new(info.clone())));
    assert_eq!(out, TxStatus::Success(TxOutput::Expert(info.id)));
    let e = fx.expert(&info.id);
    assert_eq!(e.title, "教授级高级工程师");
    assert_eq!(e.specialties, vec!["A0201", "B02"]);
    assert!(experts::experts_by_specialty(&fx.sb.state, "A01").is_empty());
    assert_eq!(experts::experts_by_specialty(&fx.sb.state, "A02").len(), 1);
    assert_eq!(experts::experts_by_specialty(&fx.sb.state, "B").len(), 1);

    let unknown = fx.info(&["A01"], 2);
    let e = fx.act_err("hohhot", ExpertAction::Update(Box::new(unknown)));
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[test]
fn status_is_set_by_the_home_member_with_a_reason() {
    let mut fx = Fx::new();
    let info = fx.info(&["A01"], 1);
    fx.register("hohhot", &info);
    let set = |status, reason: &str| ExpertAction::SetStatus {
        expert: info.id,
        status,
        reason: reason.into(),
    };
    let e = fx.act_err("ordos", set(ExpertStatus::Suspended, "违规"));
    assert_eq!(e.code, ErrorCode::NotHomeMember);
    let e = fx.act_err("hohhot", set(ExpertStatus::Suspended, " "));
    assert_eq!(e.code, ErrorCode::InvalidInput);
    let e = fx.act_err("hohhot", set(ExpertStatus::Active, "正常"));
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(
        fx.act("hohhot", set(ExpertStatus::Blacklisted, "串通"))
            .is_success()
    );
    let e = fx.expert(&info.id);
    assert_eq!(e.status, ExpertStatus::Blacklisted);
    assert_eq!(e.status_reason, "串通");
}

trait Succeeded {
    fn is_success(&self) -> bool;
}
impl Succeeded for TxStatus {
    fn is_success(&self) -> bool {
        matches!(self, TxStatus::Success(_))
    }
}

#[test]
fn conduct_is_recorded_by_expert_or_auditor_operators_of_any_member() {
    let mut fx = Fx::new();
    let ids = fx.pool("hohhot", 6, "A01");
    let auditor = fx.sb.operator("ordos", "audit", &[Role::Auditor]);
    let registrar = fx.sb.operator("ordos", "reg", &[Role::Registrar]);
    let today = fx.sb.today();
    let record = |expert, kind, date: Date, extraction| {
        Action::Expert(ExpertAction::RecordConduct {
            expert,
            kind,
            description: "评标认真".into(),
            date,
            extraction,
        })
    };
    let r = fx.sb.run(
        &registrar,
        record(ids[0], ConductKind::Commendation, today, None),
    );
    assert!(matches!(r.status, TxStatus::Failed(ref e) if e.code == ErrorCode::Unauthorized));
    let r = fx.sb.run(
        &auditor,
        record(ids[0], ConductKind::Commendation, today, None),
    );
    assert!(r.is_success(), "{r:?}");
    let tomorrow = today.succ_opt().unwrap();
    let e = fx.sb.run_err(
        &auditor,
        record(ids[0], ConductKind::Penalty, tomorrow, None),
    );
    assert_eq!(e.code, ErrorCode::InvalidInput);

    let ext = fx.drawn("hohhot", fx.req("A01", 5, 0));
    let outsider = ids.iter().find(|id| !seated(&ext).contains(id)).unwrap();
    let e = fx.sb.run_err(
        &auditor,
        record(*outsider, ConductKind::Penalty, today, Some(ext.id)),
    );
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("not seated"), "{}", e.message);
    let e = fx.sb.run_err(
        &auditor,
        record(ids[0], ConductKind::Penalty, today, Some(99)),
    );
    assert_eq!(e.code, ErrorCode::NotFound);
    let member = seated(&ext)[0];
    let op = fx.op("baotou").clone();
    let r = fx.sb.run(
        &op,
        record(member, ConductKind::Penalty, today, Some(ext.id)),
    );
    assert!(r.is_success(), "{r:?}");
    let list = experts::conduct(&fx.sb.state, &member);
    let last = list.last().unwrap();
    assert_eq!(last.kind, ConductKind::Penalty);
    assert_eq!(last.extraction, Some(ext.id));
    assert_eq!(last.recorded_by.as_str(), "baotou");
    assert_eq!(
        experts::conduct(&fx.sb.state, &ids[0]).len(),
        1 + usize::from(member == ids[0])
    );
}

// ---------------------------------------------------------- the request

#[test]
fn a_committee_is_odd_and_at_least_the_minimum() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 9, "A01");
    for n in [3, 4, 6] {
        let e = fx.act_err(
            "hohhot",
            ExpertAction::RequestExtraction(Box::new(fx.req("A01", n, 0))),
        );
        assert_eq!(e.code, ErrorCode::InvalidInput, "{n}");
        assert!(
            e.message.contains("odd") && e.message.contains(&format!("{n} primaries")),
            "{}",
            e.message
        );
    }
    // Two requirements adding up to 7 are fine.
    let mut r = fx.req("A01", 4, 0);
    r.requirements.push(Requirement {
        specialty: "A01".into(),
        count: 3,
        backups: 0,
    });
    fx.request("hohhot", r);
}

#[test]
fn malformed_requests_are_rejected() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 9, "A01");
    let cases: Vec<(ExtractionRequest, ErrorCode)> = vec![
        (
            ExtractionRequest {
                project_code: " ".into(),
                ..fx.req("A01", 5, 0)
            },
            ErrorCode::InvalidInput,
        ),
        (
            ExtractionRequest {
                window_end: fx.req("A01", 5, 0).window_start,
                ..fx.req("A01", 5, 0)
            },
            ErrorCode::InvalidInput,
        ),
        (
            ExtractionRequest {
                window_start: fx.sb.time_ms - DAY,
                ..fx.req("A01", 5, 0)
            },
            ErrorCode::InvalidInput,
        ),
        (fx.req("A1", 5, 0), ErrorCode::InvalidInput),
        (
            ExtractionRequest {
                tenderee_uscc: "bogus".into(),
                ..fx.req("A01", 5, 0)
            },
            ErrorCode::InvalidUscc,
        ),
        (
            ExtractionRequest {
                remote: Some(RemoteRequest {
                    members: vec!["lanzhou".into()],
                    min_outside: 1,
                }),
                ..fx.req("A01", 5, 0)
            },
            ErrorCode::NotFound,
        ),
        (
            ExtractionRequest {
                remote: Some(RemoteRequest {
                    members: vec!["baotou".into()],
                    min_outside: 6,
                }),
                ..fx.req("A01", 5, 0)
            },
            ErrorCode::InvalidInput,
        ),
    ];
    for (i, (r, code)) in cases.into_iter().enumerate() {
        let e = fx.act_err("hohhot", ExpertAction::RequestExtraction(Box::new(r)));
        assert_eq!(e.code, code, "case {i}: {}", e.message);
    }
    let registrar = fx.sb.operator("hohhot", "reg", &[Role::Registrar]);
    let e = fx.sb.run_err(
        &registrar,
        Action::Expert(ExpertAction::RequestExtraction(Box::new(
            fx.req("A01", 5, 0),
        ))),
    );
    assert_eq!(e.code, ErrorCode::Unauthorized);
}

#[test]
fn too_few_experts_fail_with_specialty_and_counts_and_record_nothing() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 4, "A0101");
    fx.pool("baotou", 2, "A0102");
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(fx.req("A0101", 5, 2))),
    );
    assert_eq!(e.code, ErrorCode::InsufficientExperts);
    for part in ["A0101", "4 eligible", "7 requested", "5 + 2 backups"] {
        assert!(e.message.contains(part), "{part}: {}", e.message);
    }
    // Nothing recorded: no extraction, no pending anchor, id not consumed.
    assert!(experts::extraction(&fx.sb.state, 1).is_none());
    let id = fx.request("hohhot", fx.req("A01", 5, 1));
    assert_eq!(id, 1);
}

// ------------------------------------------------------------- recusal

#[test]
fn experts_employed_by_the_tenderee_or_a_bidder_are_recused() {
    let mut fx = Fx::new();
    let mut ids = fx.pool("hohhot", 5, "A01");
    let at_tenderee = ExpertInfo {
        employer_uscc: tenderee(),
        ..fx.info(&["A01"], 0)
    };
    let at_bidder = fx.info(&["A0102"], 777);
    fx.register("baotou", &at_tenderee);
    fx.register("baotou", &at_bidder);
    let mut r = fx.req("A01", 5, 2);
    r.bidder_usccs = vec![org(777), org(778)];
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(r.clone())),
    );
    assert_eq!(e.code, ErrorCode::InsufficientExperts);
    assert!(e.message.contains("5 eligible"), "{}", e.message);
    assert!(
        e.message.contains("2 employed by the tenderee or a bidder"),
        "{}",
        e.message
    );
    ids.extend(fx.pool("ordos", 2, "A01"));
    let ext = fx.drawn("hohhot", r);
    assert_eq!(ext.status, ExtractionStatus::Drawn);
    let picked: BTreeSet<Hash> = ext.draws[0]
        .primaries
        .iter()
        .chain(&ext.draws[0].backups)
        .copied()
        .collect();
    assert_eq!(picked, ids.into_iter().collect());
    assert!(
        !ext.draws[0]
            .candidates
            .iter()
            .any(|c| c.id == at_tenderee.id || c.id == at_bidder.id)
    );
}

#[test]
fn inactive_experts_are_never_drawn() {
    let mut fx = Fx::new();
    let ids = fx.pool("hohhot", 7, "A01");
    for (id, status) in [
        (ids[0], ExpertStatus::Suspended),
        (ids[1], ExpertStatus::Retired),
    ] {
        let s = fx.act(
            "hohhot",
            ExpertAction::SetStatus {
                expert: id,
                status,
                reason: "test".into(),
            },
        );
        assert!(s.is_success());
    }
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(fx.req("A01", 5, 1))),
    );
    assert!(e.message.contains("2 not active"), "{}", e.message);
    let ext = fx.drawn("hohhot", fx.req("A01", 5, 0));
    let drawn = seated(&ext);
    assert_eq!(drawn.len(), 5);
    assert!(!drawn.contains(&ids[0]) && !drawn.contains(&ids[1]));
}

#[test]
fn an_expert_is_not_drawn_for_two_overlapping_windows() {
    let mut fx = Fx::new();
    let ids = fx.pool("hohhot", 5, "A01");
    let first = fx.drawn("hohhot", fx.req("A01", 5, 0));
    assert_eq!(seated(&first).len(), 5);
    for id in &ids {
        assert_eq!(
            experts::assignments(&fx.sb.state, id),
            vec![(first.id, first.window)]
        );
    }
    // Overlapping by an hour, another tenderee: everyone is busy.
    let mut r = fx.req("A01", 5, 0);
    r.tenderee_uscc = org(901);
    r.window_start = first.window.end - 3_600_000;
    r.window_end = r.window_start + 4 * 3_600_000;
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(r.clone())),
    );
    assert_eq!(e.code, ErrorCode::InsufficientExperts);
    assert!(
        e.message.contains("5 drawn for an overlapping window"),
        "{}",
        e.message
    );
    // Back to back is not overlapping.
    r.window_start = first.window.end;
    r.window_end = r.window_start + 3_600_000;
    let second = fx.drawn("hohhot", r);
    assert_eq!(second.status, ExtractionStatus::Drawn);
}

#[test]
fn an_expert_who_served_the_tenderee_is_recused_for_the_cooldown() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 5, "A01");
    let first = fx.drawn("hohhot", fx.req("A01", 5, 0));
    let cooldown = ChainParams::default().expert_tenderee_cooldown_days;
    // Ten days later, same tenderee: recused.
    let mut r = fx.req("A01", 5, 0);
    r.window_start = first.window.end + 10 * DAY;
    r.window_end = r.window_start + 3_600_000;
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(r.clone())),
    );
    assert_eq!(e.code, ErrorCode::InsufficientExperts);
    assert!(
        e.message
            .contains(&format!("5 served this tenderee within {cooldown} days")),
        "{}",
        e.message
    );
    // One millisecond short of the cooldown: still recused.
    r.window_start = first.window.end + cooldown * DAY - 1;
    r.window_end = r.window_start + 3_600_000;
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(r.clone())),
    );
    assert_eq!(e.code, ErrorCode::InsufficientExperts);
    // Another tenderee ten days later: fine.
    let mut other = r.clone();
    other.tenderee_uscc = org(901);
    other.window_start = first.window.end + 10 * DAY;
    other.window_end = other.window_start + 3_600_000;
    assert_eq!(fx.drawn("hohhot", other).status, ExtractionStatus::Drawn);
    // The same tenderee once the cooldown has run.
    r.window_start = first.window.end + cooldown * DAY;
    r.window_end = r.window_start + 3_600_000;
    assert_eq!(fx.drawn("hohhot", r).status, ExtractionStatus::Drawn);
}

#[test]
fn remote_evaluation_draws_enough_outside_experts_from_participants_only() {
    let mut fx = Fx::new();
    let hohhot = fx.pool("hohhot", 6, "A01");
    let baotou = fx.pool("baotou", 3, "A01");
    let ordos = fx.pool("ordos", 2, "A01");
    let yinchuan = fx.pool("yinchuan", 4, "A01");
    let remote = |min_outside| RemoteRequest {
        members: vec!["baotou".into(), "ordos".into()],
        min_outside,
    };
    // 5 outside participants exist (yinchuan does not participate).
    let mut r = fx.req("A01", 5, 0);
    r.remote = Some(remote(6));
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(r.clone())),
    );
    assert_eq!(e.code, ErrorCode::InvalidInput, "{}", e.message);
    let mut r = fx.req("A01", 7, 0);
    r.remote = Some(remote(6));
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(r.clone())),
    );
    assert_eq!(e.code, ErrorCode::InsufficientExperts);
    assert!(
        e.message
            .contains("needs 6 experts from members other than hohhot; only 5"),
        "{}",
        e.message
    );
    // Several draws (different anchors): always 4 or more from outside, never yinchuan.
    for round in 0..4u32 {
        let mut r = fx.req("A01", 5, 0);
        r.tenderee_uscc = org(950 + round);
        r.window_start += u64::from(round) * DAY;
        r.window_end = r.window_start + 3_600_000;
        r.remote = Some(remote(4));
        let ext = fx.drawn("hohhot", r);
        assert_eq!(ext.status, ExtractionStatus::Drawn, "round {round}");
        let drawn = seated(&ext);
        let outside = drawn
            .iter()
            .filter(|id| baotou.contains(id) || ordos.contains(id))
            .count();
        assert!(outside >= 4, "round {round}: {outside} outside");
        assert!(drawn.iter().all(|id| !yinchuan.contains(id)));
        assert!(
            drawn
                .iter()
                .all(|id| hohhot.contains(id) || baotou.contains(id) || ordos.contains(id))
        );
        assert_eq!(ext.draws[0].candidates.len(), 11);
    }
}

// --------------------------------------------------- verifiable draws

#[test]
fn the_baseline_draw_happens_at_the_next_block_and_re_derives() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 6, "A0101");
    fx.pool("ordos", 6, "A0102");
    let mut r = fx.req("A0101", 3, 1);
    r.requirements.push(Requirement {
        specialty: "A01".into(),
        count: 2,
        backups: 2,
    });
    let id = fx.request("hohhot", r);
    let request_height = fx.sb.height;
    let block_hash = fx.sb.parent_hash;
    let snapshot = fx.sb.state.clone();
    let ext = fx.ext(id);
    assert_eq!(ext.status, ExtractionStatus::AwaitingAnchor);
    assert!(ext.seats().next().is_none());

    fx.sb.empty_block();
    let ext = fx.ext(id);
    assert_eq!(ext.status, ExtractionStatus::Drawn);
    let anchor = ext.anchor.unwrap();
    assert_eq!(anchor.height, request_height);
    assert_eq!(anchor.hash, block_hash);
    assert_eq!(ext.scheme, Some(SeedScheme::Baseline));
    assert_eq!(ext.seed, Some(baseline_seed(&block_hash, id)));
    assert_eq!(ext.drawn_height, Some(request_height + 1));
    // Anyone re-derives the picks from the record and the stored candidates,
    // and re-checks the candidates from the state the draw saw.
    let picks = experts::rederive(&ext).unwrap();
    assert_eq!(picks[0].primaries, ext.draws[0].primaries);
    assert_eq!(picks[1].backups, ext.draws[1].backups);
    assert_eq!(
        experts::candidates_at(&snapshot, &ext),
        ext.draws
            .iter()
            .map(|d| d.candidates.clone())
            .collect::<Vec<_>>()
    );
    experts::verify(&ext).unwrap();
    // The algorithm, applied by hand: shuffle requirement 0's candidates.
    let mut order = ext.draws[0].candidates.clone();
    draw::shuffle(&ext.seed.unwrap(), 0, &mut order);
    let head: Vec<Hash> = order[..3].iter().map(|c| c.id).collect();
    assert_eq!(ext.draws[0].primaries, head);
    // Eight different experts, the first requirement's only from A0101.
    let all: BTreeSet<Hash> = picks
        .iter()
        .flat_map(|p| p.primaries.iter().chain(&p.backups))
        .copied()
        .collect();
    assert_eq!(all.len(), 8);
    for id in &ext.draws[0].primaries {
        assert!(fx.expert(id).meets("A0101"));
    }
    // A tampered record no longer verifies.
    let mut forged = ext.clone();
    forged.draws[0].primaries.swap(0, 1);
    assert!(experts::verify(&forged).unwrap_err().contains("differ"));
    let mut forged = ext.clone();
    forged.anchor.as_mut().unwrap().hash = Hash::of(b"other block");
    assert!(experts::verify(&forged).is_err());
    let mut forged = ext;
    forged.draws[1].candidates.reverse();
    assert!(experts::verify(&forged).unwrap_err().contains("not sorted"));
}

#[test]
fn commit_reveal_draws_with_the_secret_and_rejects_wrong_ones() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 8, "A01");
    let secret = b"32 random bytes, kept by hohhot!".to_vec();
    let mut r = fx.req("A01", 5, 1);
    r.commitment = Some(experts::commitment(&secret));
    // A reveal in the request's own block comes before any anchor.
    let k = fx.op("hohhot").clone();
    let txs = fx.sb.sign(&[
        (
            &k,
            Action::Expert(ExpertAction::RequestExtraction(Box::new(r))),
        ),
        (
            &k,
            Action::Expert(ExpertAction::RevealExtraction {
                extraction: 1,
                secret: secret.clone(),
            }),
        ),
    ]);
    let receipts = fx.sb.block(&txs);
    assert!(receipts[0].is_success(), "{receipts:?}");
    let TxStatus::Failed(e) = &receipts[1].status else {
        panic!("revealed before the anchor")
    };
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(e.message.contains("not anchored"), "{}", e.message);
    let id = 1;
    let block_hash = fx.sb.parent_hash;
    assert_eq!(fx.ext(id).status, ExtractionStatus::AwaitingAnchor);
    fx.sb.empty_block();
    let ext = fx.ext(id);
    let deadline =
        ext.anchor.unwrap().recorded_height + ChainParams::default().extraction_reveal_blocks;
    assert_eq!(ext.status, ExtractionStatus::AwaitingReveal { deadline });
    assert!(ext.seats().next().is_none());

    let e = fx.act_err(
        "hohhot",
        ExpertAction::RevealExtraction {
            extraction: id,
            secret: b"a wrong secret of enough length".to_vec(),
        },
    );
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("does not match"), "{}", e.message);
    let e = fx.act_err(
        "baotou",
        ExpertAction::RevealExtraction {
            extraction: id,
            secret: secret.clone(),
        },
    );
    assert_eq!(e.code, ErrorCode::Unauthorized);
    let e = fx.act_err(
        "baotou",
        ExpertAction::FinalizeExtraction { extraction: id },
    );
    assert_eq!(e.code, ErrorCode::TooEarly);

    let out = fx.act(
        "hohhot",
        ExpertAction::RevealExtraction {
            extraction: id,
            secret: secret.clone(),
        },
    );
    assert_eq!(out, TxStatus::Success(TxOutput::Extraction(id)));
    assert!(
        !caihong_chaincode::exec::block_work_pending(&fx.sb.state),
        "a revealed extraction no longer asks for blocks"
    );
    let ext = fx.ext(id);
    assert_eq!(ext.status, ExtractionStatus::Drawn);
    assert_eq!(ext.anchor.unwrap().hash, block_hash);
    assert_eq!(ext.seed, Some(revealed_seed(&block_hash, id, &secret)));
    assert_ne!(ext.seed, Some(baseline_seed(&block_hash, id)));
    assert_eq!(seated(&ext).len(), 5);
    experts::verify(&ext).unwrap();
    // Once drawn, neither a second reveal nor a finalize applies.
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RevealExtraction {
            extraction: id,
            secret,
        },
    );
    assert_eq!(e.code, ErrorCode::Conflict);
}

#[test]
fn a_missed_reveal_falls_back_to_the_baseline_seed() {
    let mut fx = Fx::with_params(ChainParams {
        extraction_reveal_blocks: 3,
        ..ChainParams::default()
    });
    fx.pool("hohhot", 8, "A01");
    let secret = vec![7u8; 32];
    let mut r = fx.req("A01", 5, 1);
    r.commitment = Some(experts::commitment(&secret));
    let pending = |fx: &Fx| caihong_chaincode::exec::block_work_pending(&fx.sb.state);
    assert!(!pending(&fx), "nothing counts blocks before the request");
    let id = fx.request("hohhot", r);
    let block_hash = fx.sb.parent_hash;
    assert!(pending(&fx), "the anchor needs the next block");
    fx.sb.empty_block();
    let ExtractionStatus::AwaitingReveal { deadline } = fx.ext(id).status else {
        panic!("{:?}", fx.ext(id).status)
    };
    while fx.sb.height < deadline {
        assert!(pending(&fx), "the reveal window counts blocks");
        fx.sb.empty_block();
    }
    // A reveal is still taken in the next block (height == deadline)...
    assert!(pending(&fx));
    fx.sb.empty_block();
    // ...and after it the window is closed: a finalize needs no block of its own.
    assert!(!pending(&fx), "the closed window no longer asks for blocks");
    // The next block is past the deadline: the reveal is refused.
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RevealExtraction {
            extraction: id,
            secret,
        },
    );
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(e.message.contains("closed"), "{}", e.message);
    // Any member's expert operator finalizes.
    let out = fx.act(
        "yinchuan",
        ExpertAction::FinalizeExtraction { extraction: id },
    );
    assert!(out.is_success(), "{out:?}");
    let ext = fx.ext(id);
    assert_eq!(ext.scheme, Some(SeedScheme::RevealMissed));
    assert_eq!(ext.seed, Some(baseline_seed(&block_hash, id)));
    assert_eq!(ext.status, ExtractionStatus::Drawn);
    experts::verify(&ext).unwrap();
    let e = fx.act_err(
        "yinchuan",
        ExpertAction::FinalizeExtraction { extraction: id },
    );
    assert_eq!(e.code, ErrorCode::Conflict);
}

#[test]
fn a_pool_that_shrank_before_the_draw_fails_whole() {
    let mut fx = Fx::new();
    let ids = fx.pool("hohhot", 6, "A01");
    let r = fx.req("A01", 5, 1);
    let k = fx.op("hohhot").clone();
    let suspend = Action::Expert(ExpertAction::SetStatus {
        expert: ids[0],
        status: ExpertStatus::Suspended,
        reason: "回避".into(),
    });
    let txs = fx.sb.sign(&[
        (
            &k,
            Action::Expert(ExpertAction::RequestExtraction(Box::new(r))),
        ),
        (&k, suspend),
    ]);
    let receipts = fx.sb.block(&txs);
    assert!(receipts.iter().all(|r| r.is_success()), "{receipts:?}");
    fx.sb.empty_block();
    let ext = fx.ext(1);
    let ExtractionStatus::Failed { reason } = &ext.status else {
        panic!("{:?}", ext.status)
    };
    assert!(
        reason.contains("A01") && reason.contains("5 eligible") && reason.contains("6 requested"),
        "{reason}"
    );
    assert!(ext.seats().next().is_none());
    for id in &ids {
        assert!(experts::assignments(&fx.sb.state, id).is_empty());
    }
    // Even a failure re-derives to the same reason.
    experts::verify(&ext).unwrap();
    let e = fx.act_err("hohhot", respond(1, ids[1], true));
    assert_eq!(e.code, ErrorCode::Conflict);
}

// ------------------------------------------------- confirm and decline

#[test]
fn a_decline_promotes_the_first_backup_and_confirmations_complete() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 4, "A01");
    fx.pool("baotou", 4, "A01");
    let ext = fx.drawn("hohhot", fx.req("A01", 5, 2));
    let id = ext.id;
    let first = ext.draws[0].seats[0].clone();
    let backups = ext.draws[0].backups.clone();
    let other = MEMBERS.iter().find(|m| **m != first.home.as_str()).unwrap();
    let e = fx.act_err(other, respond(id, first.expert, false));
    assert_eq!(e.code, ErrorCode::NotHomeMember);
    let e = fx.act_err(first.home.as_str(), respond(id, backups[0], true));
    assert_eq!(e.code, ErrorCode::Conflict);

    let home = first.home.as_str().to_string();
    assert!(fx.act(&home, respond(id, first.expert, false)).is_success());
    let ext = fx.ext(id);
    assert!(!seated(&ext).contains(&first.expert));
    assert_eq!(ext.draws[0].declined, vec![first.expert]);
    let promoted = ext.draws[0].seats.last().unwrap();
    assert_eq!(promoted.expert, backups[0]);
    assert!(promoted.from_backup);
    assert_eq!(ext.draws[0].backups_left, vec![backups[1]]);
    assert!(experts::assignments(&fx.sb.state, &first.expert).is_empty());
    assert_eq!(experts::assignments(&fx.sb.state, &backups[0]).len(), 1);
    // The original draw stays verifiable.
    experts::verify(&ext).unwrap();
    let e = fx.act_err(&home, respond(id, first.expert, true));
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(e.message.contains("declined"), "{}", e.message);

    for seat in ext.draws[0].seats.clone() {
        assert_eq!(ext.status, ExtractionStatus::Drawn);
        let s = fx.act(seat.home.as_str(), respond(id, seat.expert, true));
        assert!(s.is_success(), "{s:?}");
    }
    let ext = fx.ext(id);
    assert_eq!(ext.status, ExtractionStatus::Confirmed);
    let seat = &ext.draws[0].seats[0];
    let e = fx.act_err(seat.home.as_str(), respond(id, seat.expert, true));
    assert_eq!(e.code, ErrorCode::Conflict);
}

#[test]
fn declines_beyond_the_backups_leave_the_requirement_short() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 6, "A01");
    let ext = fx.drawn("hohhot", fx.req("A01", 5, 1));
    let id = ext.id;
    let seats = ext.draws[0].seats.clone();
    assert!(
        fx.act("hohhot", respond(id, seats[0].expert, false))
            .is_success()
    );
    assert_eq!(fx.ext(id).status, ExtractionStatus::Drawn);
    assert!(
        fx.act("hohhot", respond(id, seats[1].expert, false))
            .is_success()
    );
    let ext = fx.ext(id);
    let ExtractionStatus::Short { reason } = &ext.status else {
        panic!("{:?}", ext.status)
    };
    assert!(
        reason.contains("A01") && reason.contains("4 of 5"),
        "{reason}"
    );
    assert_eq!(seated(&ext).len(), 4);
}

#[test]
fn a_backup_that_became_busy_is_skipped_at_promotion() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 7, "A01");
    let ext = fx.drawn("hohhot", fx.req("A01", 5, 2));
    let backups = ext.draws[0].backups.clone();
    // The first backup gets suspended meanwhile.
    assert!(
        fx.act(
            "hohhot",
            ExpertAction::SetStatus {
                expert: backups[0],
                status: ExpertStatus::Suspended,
                reason: "病假".into(),
            },
        )
        .is_success()
    );
    let decliner = ext.draws[0].seats[2].expert;
    assert!(
        fx.act("hohhot", respond(ext.id, decliner, false))
            .is_success()
    );
    let ext = fx.ext(ext.id);
    assert_eq!(ext.draws[0].seats.last().unwrap().expert, backups[1]);
    assert_eq!(ext.draws[0].backups_left, vec![backups[0]]);
}

#[test]
fn promotion_keeps_the_outside_minimum() {
    // All five primaries must come from outside; backups may be insiders,
    // and an insider backup is never promoted into an outside seat.
    for round in 0..6u32 {
        let mut fx = Fx::new();
        let insiders = fx.pool("hohhot", 4, "A01");
        fx.pool("baotou", 6, "A01");
        let mut r = fx.req("A01", 5, 3);
        r.tenderee_uscc = org(960 + round);
        r.project_code = format!("P{round}");
        r.remote = Some(RemoteRequest {
            members: vec!["baotou".into()],
            min_outside: 5,
        });
        let ext = fx.drawn("hohhot", r);
        assert!(seated(&ext).iter().all(|id| !insiders.contains(id)));
        let decliner = ext.draws[0].seats[0].expert;
        assert!(
            fx.act("baotou", respond(ext.id, decliner, false))
                .is_success()
        );
        let ext = fx.ext(ext.id);
        let drawn = seated(&ext);
        assert!(
            drawn.iter().all(|id| !insiders.contains(id)),
            "round {round}"
        );
        let outside_backup = ext.draws[0].backups.iter().any(|b| !insiders.contains(b));
        if outside_backup {
            assert_eq!(drawn.len(), 5, "round {round}");
        } else {
            assert!(
                matches!(ext.status, ExtractionStatus::Short { .. }),
                "round {round}"
            );
        }
    }
}

// ------------------------------------------------------------- properties

fn pure_candidates(n: usize, homes: &[u8]) -> Vec<draw::Candidate> {
    let mut v: Vec<draw::Candidate> = (0..n)
        .map(|i| draw::Candidate {
            id: Hash::of(&(i as u64).to_be_bytes()),
            home: caihong_chaincode::members::MemberId::parse(
                MEMBERS[homes[i % homes.len()] as usize % 4],
            )
            .unwrap(),
        })
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The pure draw: same seed, same picks; picks come from the candidates,
    /// each expert once, and the outside minimum holds whenever it succeeds.
    #[test]
    fn draw_is_reproducible_and_picks_each_candidate_once(
        seed in any::<[u8; 32]>(),
        n in 0usize..30,
        homes in proptest::collection::vec(0u8..4, 1..8),
        slots in proptest::collection::vec((1u32..5, 0u32..3), 1..4),
        min_outside in 0u32..6,
    ) {
        let cands = pure_candidates(n, &homes);
        let lists: Vec<Vec<draw::Candidate>> = slots.iter().map(|_| cands.clone()).collect();
        let slots: Vec<draw::Slot> = slots.iter().map(|&(count, backups)| draw::Slot { count, backups }).collect();
        let requester = caihong_chaincode::members::MemberId::parse("hohhot").unwrap();
        let seed = Hash(seed);
        let a = draw::draw(&seed, &requester, min_outside, &slots, &lists);
        let b = draw::draw(&seed, &requester, min_outside, &slots, &lists);
        prop_assert_eq!(&a, &b);
        if let Ok(picks) = a {
            let mut seen = BTreeSet::new();
            let mut outside = 0;
            for (p, s) in picks.iter().zip(&slots) {
                prop_assert_eq!(p.primaries.len() as u32, s.count);
                prop_assert_eq!(p.backups.len() as u32, s.backups);
                for id in p.primaries.iter().chain(&p.backups) {
                    prop_assert!(seen.insert(*id), "picked twice");
                    prop_assert!(cands.iter().any(|c| &c.id == id));
                }
                outside += p.primaries.iter().filter(|id| cands.iter().any(|c| &c.id == *id && c.home != requester)).count();
            }
            prop_assert!(outside as u32 >= min_outside);
        }
    }
}

#[derive(Debug, Clone)]
struct PoolExpert {
    member: usize,
    status: u8,
    employer: u32,
    specialty: usize,
}

const CODES: [&str; 4] = ["A0101", "A0102", "A02", "B01"];

fn pool_expert() -> impl Strategy<Value = PoolExpert> {
    (0usize..4, 0u8..8, 0u32..6, 0usize..4).prop_map(|(member, status, employer, specialty)| {
        PoolExpert {
            member,
            status,
            employer,
            specialty,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// End to end over random pools and requests: whatever is drawn is
    /// active, not employed by the tenderee or a bidder, meets the code, is
    /// from a participating member, not busy elsewhere, and drawn once; the
    /// record verifies.
    #[test]
    fn drawn_experts_are_never_recused(
        pool in proptest::collection::vec(pool_expert(), 5..28),
        tenderee_employer in 0u32..6,
        bidders in proptest::collection::btree_set(0u32..6, 0..3),
        code in 0usize..3,
        count in prop_oneof![Just(5u32), Just(7u32)],
        backups in 0u32..3,
        remote in proptest::option::of((proptest::collection::btree_set(1usize..4, 1..3), 0u32..4)),
        busy_first in any::<bool>(),
    ) {
        let mut fx = Fx::new();
        let k: Vec<SigningKey> = MEMBERS.iter().map(|m| fx.op(m).clone()).collect();
        let infos: Vec<(usize, ExpertInfo, ExpertStatus)> = pool
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let info = ExpertInfo {
                    id: experts::expert_id(&format!("P{i}")),
                    name: format!("专家{i}"),
                    specialties: vec![CODES[p.specialty].into()],
                    title: "工程师".into(),
                    employer_uscc: org(p.employer),
                };
                let status = match p.status {
                    0 => ExpertStatus::Suspended,
                    1 => ExpertStatus::Blacklisted,
                    _ => ExpertStatus::Active,
                };
                (p.member, info, status)
            })
            .collect();
        let mut actions = Vec::new();
        for (m, info, status) in &infos {
            actions.push((&k[*m], Action::Expert(ExpertAction::Register(Box::new(info.clone())))));
            if *status != ExpertStatus::Active {
                actions.push((&k[*m], Action::Expert(ExpertAction::SetStatus {
                    expert: info.id,
                    status: *status,
                    reason: "p".into(),
                })));
            }
        }
        let txs = fx.sb.sign(&actions);
        for r in fx.sb.block(&txs) {
            prop_assert!(r.is_success(), "{:?}", r);
        }
        let code = ["A01", "A0101", "A"][code];
        let mut earlier = None;
        if busy_first {
            // An overlapping extraction for another tenderee drawn first.
            let mut r = fx.req(code, 5, 0);
            r.tenderee_uscc = org(99);
            if let TxStatus::Success(TxOutput::Extraction(id)) =
                fx.act("ordos", ExpertAction::RequestExtraction(Box::new(r)))
            {
                fx.sb.empty_block();
                earlier = Some(fx.ext(id));
            }
        }
        let mut r = fx.req(code, count, backups);
        r.window_start += 3_600_000;
        r.tenderee_uscc = org(tenderee_employer);
        r.bidder_usccs = bidders.iter().map(|b| org(*b)).collect();
        r.remote = remote.clone().map(|(ms, min_outside)| RemoteRequest {
            members: ms.iter().map(|m| MEMBERS[*m].to_string()).collect(),
            min_outside,
        });
        let status = fx.act("hohhot", ExpertAction::RequestExtraction(Box::new(r)));
        let id = match status {
            TxStatus::Success(TxOutput::Extraction(id)) => id,
            TxStatus::Failed(e) => {
                prop_assert_eq!(e.code, ErrorCode::InsufficientExperts, "{}", e.message);
                return Ok(());
            }
            s => panic!("{s:?}"),
        };
        fx.sb.empty_block();
        let ext = fx.ext(id);
        experts::verify(&ext).map_err(TestCaseError::fail)?;
        let busy: BTreeSet<Hash> = earlier.iter().flat_map(seated).collect();
        let mut seen = BTreeSet::new();
        let by_id: BTreeMap<Hash, &(usize, ExpertInfo, ExpertStatus)> =
            infos.iter().map(|x| (x.1.id, x)).collect();
        for d in &ext.draws {
            for id in d.primaries.iter().chain(&d.backups) {
                prop_assert!(seen.insert(*id), "drawn twice");
                let (m, info, status) = by_id[id];
                prop_assert_eq!(*status, ExpertStatus::Active);
                prop_assert!(info.employer_uscc != ext.tenderee.as_str());
                prop_assert!(!r_bidders(&ext).contains(&info.employer_uscc));
                prop_assert!(info.specialties[0].starts_with(code));
                prop_assert!(!busy.contains(id));
                if let Some((ms, _)) = &remote {
                    prop_assert!(*m == 0 || ms.contains(m));
                }
            }
        }
        if ext.status == ExtractionStatus::Drawn {
            let outside = seated(&ext).iter().filter(|id| by_id[*id].0 != 0).count() as u32;
            prop_assert!(outside >= ext.min_outside());
        }
    }
}

fn r_bidders(ext: &Extraction) -> Vec<String> {
    ext.bidders.iter().map(|b| b.as_str().to_string()).collect()
}

#[test]
fn candidate_lists_are_bounded_at_request_and_at_draw() {
    use caihong_chaincode::experts::extraction::MAX_CANDIDATES;
    let mut fx = Fx::new();
    fx.pool("hohhot", MAX_CANDIDATES - 1, "A01");
    // A tenderee none of the pool works for.
    let req = |fx: &Fx| ExtractionRequest {
        tenderee_uscc: org(99_999),
        ..fx.req("A01", 5, 0)
    };
    // Two more arrive in the request's own block: the draw sees too many.
    let k = fx.op("baotou").clone();
    let extra: Vec<ExpertInfo> = (0..2).map(|i| fx.info(&["A0101"], 5000 + i)).collect();
    let mut actions = vec![(
        &k,
        Action::Expert(ExpertAction::RequestExtraction(Box::new(req(&fx)))),
    )];
    for info in &extra {
        actions.push((
            &k,
            Action::Expert(ExpertAction::Register(Box::new(info.clone()))),
        ));
    }
    let txs = fx.sb.sign(&actions);
    assert!(fx.sb.block(&txs).iter().all(|r| r.is_success()));
    fx.sb.empty_block();
    let ext = fx.ext(1);
    let ExtractionStatus::Failed { reason } = &ext.status else {
        panic!("{:?}", ext.status)
    };
    assert!(reason.contains("too many eligible candidates"), "{reason}");
    assert!(ext.draws.is_empty());
    experts::verify(&ext).unwrap();
    // A request now is refused before anything is recorded.
    let e = fx.act_err(
        "hohhot",
        ExpertAction::RequestExtraction(Box::new(req(&fx))),
    );
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("narrow the specialty codes"),
        "{}",
        e.message
    );
    assert!(experts::extraction(&fx.sb.state, 2).is_none());
}
