//! The expert-pool fixture shared by `experts.rs` and `sealed.rs`: four members with an
//! expert operator each, pools of experts, and the sealed-extraction lifecycle as the
//! members' clients drive it (request, anchor block, seal, answers through the homes' views,
//! publish).
#![allow(dead_code)]

use std::collections::BTreeMap;

use caihong_chaincode::experts::{
    self, Candidate, Expert, ExpertAction, ExpertInfo, Extraction, ExtractionRequest, Requirement,
    seal::{self, Seal},
    view::{self, ExtractionView, ViewKind},
};
use caihong_chaincode::members::{self, MemberId, Role};
use caihong_chaincode::params::ChainParams;
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::types::EncryptionKey;
use caihong_chaincode::{Action, Hash, Receipt, TxOutput, TxStatus, VerifiedTx, uscc};
use ed25519_dalek::SigningKey;

pub const DAY: u64 = 86_400_000;
pub const MEMBERS: [&str; 4] = ["hohhot", "baotou", "ordos", "yinchuan"];
/// The requester's secret in the fixtures (32 bytes); `SHA-256` of it is the commitment.
pub const SECRET: &[u8] = b"32 random bytes, kept by hohhot!";

/// A valid USCC for test organisation `n`.
pub fn org(n: u32) -> String {
    uscc::build("91150100", &format!("MA{n:06}"))
        .unwrap()
        .as_str()
        .to_string()
}

pub fn tenderee() -> String {
    org(900)
}

pub fn mid(m: &str) -> MemberId {
    MemberId::parse(m).unwrap()
}

pub trait Succeeded {
    fn is_success(&self) -> bool;
}

impl Succeeded for TxStatus {
    fn is_success(&self) -> bool {
        matches!(self, TxStatus::Success(_))
    }
}

/// Where an expert sits, as its home member's node reads it from its notice.
#[derive(Debug, Clone)]
pub struct SlotRef {
    pub home: String,
    /// 0-based, as `Respond` takes them.
    pub requirement: u32,
    pub slot: u32,
    /// The slot's public commitment.
    pub commitment: Hash,
    /// The slot's opening value (blind), from the notice.
    pub opening: Hash,
}

pub struct Fx {
    pub sb: Sandbox,
    /// An expert-role operator per member.
    pub ops: BTreeMap<&'static str, SigningKey>,
    pub next_person: u32,
}

impl Fx {
    pub fn new() -> Fx {
        Fx::with_params(ChainParams::default())
    }

    pub fn with_params(params: ChainParams) -> Fx {
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

    pub fn op(&self, member: &str) -> &SigningKey {
        &self.ops[member]
    }

    pub fn info(&mut self, specialties: &[&str], employer: u32) -> ExpertInfo {
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
    pub fn pool(&mut self, member: &'static str, n: usize, specialty: &str) -> Vec<Hash> {
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

    pub fn register(&mut self, member: &str, info: &ExpertInfo) -> TxStatus {
        let k = self.op(member).clone();
        self.sb
            .run(
                &k,
                Action::Expert(ExpertAction::Register(Box::new(info.clone()))),
            )
            .status
    }

    pub fn act(&mut self, member: &str, a: ExpertAction) -> TxStatus {
        let k = self.op(member).clone();
        self.sb.run(&k, Action::Expert(a)).status
    }

    pub fn act_err(&mut self, member: &str, a: ExpertAction) -> caihong_chaincode::TxError {
        let k = self.op(member).clone();
        self.sb.run_err(&k, Action::Expert(a))
    }

    /// Signs one action of `member`'s expert operator without running it.
    pub fn sign(&self, member: &str, a: ExpertAction) -> VerifiedTx {
        self.sb
            .sign(&[(self.op(member), Action::Expert(a))])
            .remove(0)
    }

    /// Runs one signed transaction in its own block and returns its receipt.
    pub fn run_signed(&mut self, tx: &VerifiedTx) -> Receipt {
        self.sb.block(std::slice::from_ref(tx)).remove(0)
    }

    /// A request for `count` primaries + `backups` of `specialty`, window two
    /// days from now (8 hours), tenderee org(900), no bidders, committed to [`SECRET`].
    pub fn req(&self, specialty: &str, count: u32, backups: u32) -> ExtractionRequest {
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
            commitment: Some(experts::commitment(SECRET)),
        }
    }

    pub fn request(&mut self, member: &str, r: ExtractionRequest) -> u64 {
        match self.act(member, ExpertAction::RequestExtraction(Box::new(r))) {
            TxStatus::Success(TxOutput::Extraction(id)) => id,
            s => panic!("request failed: {s:?}"),
        }
    }

    /// The members' registered encryption keys, as a requester's client reads them.
    pub fn keys(&self) -> BTreeMap<MemberId, EncryptionKey> {
        members::members(&self.sb.state)
            .into_iter()
            .filter_map(|m| Some((m.id, m.encryption_key?)))
            .collect()
    }

    /// The candidate lists stored at the anchor.
    pub fn candidates(&self, id: u64) -> Vec<Vec<Candidate>> {
        experts::candidates(&self.sb.state, id).expect("anchored")
    }

    /// The honest seal of an anchored extraction with `secret`, as the requester's client
    /// builds it.
    pub fn honest_seal(&self, id: u64, secret: &[u8]) -> Result<Seal, String> {
        experts::build_seal(&self.ext(id), &self.candidates(id), secret, &self.keys())
    }

    pub fn seal_action(id: u64, seal: Seal) -> ExpertAction {
        ExpertAction::SealExtraction {
            extraction: id,
            seal: Box::new(seal),
        }
    }

    /// Requests, runs the anchor block, and seals the honest draw with [`SECRET`]; returns the
    /// sealed extraction.
    pub fn drawn(&mut self, member: &str, r: ExtractionRequest) -> Extraction {
        let id = self.request(member, r);
        self.sb.empty_block();
        let seal = self.honest_seal(id, SECRET).expect("the draw completes");
        let s = self.act(member, Fx::seal_action(id, seal));
        assert!(s.is_success(), "seal: {s:?}");
        self.ext(id)
    }

    /// Reveals [`SECRET`] (`PublishResult`) and returns the extraction.
    pub fn publish(&mut self, ext: &Extraction) -> Extraction {
        let s = self.act(
            ext.requester.as_str(),
            ExpertAction::PublishResult {
                extraction: ext.id,
                secret: SECRET.to_vec(),
            },
        );
        assert!(s.is_success(), "publish: {s:?}");
        self.ext(ext.id)
    }

    pub fn ext(&self, id: u64) -> Extraction {
        experts::extraction(&self.sb.state, id).unwrap()
    }

    pub fn expert(&self, id: &Hash) -> Expert {
        experts::expert(&self.sb.state, id).unwrap()
    }

    /// `member`'s view of `ext` (its node holds its encryption key).
    pub fn view_as(&self, ext: &Extraction, member: &str) -> ExtractionView {
        view::view(
            &self.sb.state,
            ext,
            Some((&mid(member), &Sandbox::encryption_key(member))),
        )
    }

    /// The requester's view: the whole committee from its sealed copy of the secret.
    pub fn requester_view(&self, ext: &Extraction) -> ExtractionView {
        let v = self.view_as(ext, ext.requester.as_str());
        assert!(
            matches!(v.view, ViewKind::Requester | ViewKind::Published),
            "{:?}",
            v.view
        );
        v
    }

    /// Every drawn slot's expert per requirement (primaries then backups), as the requester
    /// sees them.
    pub fn slots(&self, ext: &Extraction) -> Vec<Vec<Hash>> {
        let v = self.requester_view(ext);
        ext.slots
            .iter()
            .enumerate()
            .map(|(r, row)| {
                (0..row.len())
                    .map(|j| {
                        v.slots
                            .iter()
                            .find(|s| s.requirement as usize == r + 1 && s.slot as usize == j + 1)
                            .and_then(|s| s.expert)
                            .expect("the requester sees every slot")
                    })
                    .collect()
            })
            .collect()
    }

    /// The seated experts per requirement, as the requester sees them.
    pub fn committee(&self, ext: &Extraction) -> Vec<Vec<Hash>> {
        let v = self.requester_view(ext);
        (0..ext.slots.len())
            .map(|r| {
                v.slots
                    .iter()
                    .filter(|s| s.requirement as usize == r + 1 && s.seated)
                    .map(|s| s.expert.expect("the requester sees every slot"))
                    .collect()
            })
            .collect()
    }

    /// All seated experts, requirement after requirement.
    pub fn seated(&self, ext: &Extraction) -> Vec<Hash> {
        self.committee(ext).concat()
    }

    /// Finds `expert`'s slot through the home views: the member whose key reads a notice for
    /// it among its own slots.
    pub fn find_slot(&self, ext: &Extraction, expert: &Hash) -> SlotRef {
        for m in MEMBERS {
            let v = self.view_as(ext, m);
            if let Some(s) = v
                .slots
                .iter()
                .find(|s| s.home.as_str() == m && s.expert.as_ref() == Some(expert))
            {
                return SlotRef {
                    home: m.to_string(),
                    requirement: s.requirement - 1,
                    slot: s.slot - 1,
                    commitment: s.commitment,
                    opening: s.opening.expect("a home reads its opening"),
                };
            }
        }
        panic!("no home reads a notice for expert {expert}")
    }

    /// The `Respond` a home's client submits for `expert`.
    pub fn respond_action(
        &self,
        ext: &Extraction,
        expert: &Hash,
        accept: bool,
    ) -> (String, ExpertAction) {
        let s = self.find_slot(ext, expert);
        let commitment = seal::response_commitment(&s.commitment, accept, &s.opening);
        (
            s.home,
            ExpertAction::Respond {
                extraction: ext.id,
                requirement: s.requirement,
                slot: s.slot,
                accept,
                commitment,
            },
        )
    }

    /// `expert`'s home confirms or declines its seat.
    pub fn respond(&mut self, id: u64, expert: &Hash, accept: bool) -> TxStatus {
        let ext = self.ext(id);
        let (home, a) = self.respond_action(&ext, expert, accept);
        self.act(&home, a)
    }

    /// The home of `expert`.
    pub fn home(&self, expert: &Hash) -> String {
        self.expert(expert).home.as_str().to_string()
    }
}
