//! A workload of concurrent clients and the history of what each was told, for fault runs.
//!
//! Each client is an operator of one member (registrar, credit, expert roles) that signs
//! transactions of every domain in turn — subject registrations and updates, credit records,
//! expert registrations, certificate revocations — and submits each to a member chosen by a
//! seeded random generator, waiting for the receipt. What the client was told is recorded
//! Jepsen-style:
//! - `Committed { height, receipt }`: a member answered 200 with the receipt;
//! - `Refused { status, code }`: a member refused it (the nonce is free again, so the client's
//!   next transaction reuses it);
//! - `Unknown`: no answer settled it before the run ended.
//!
//! A transaction whose submission timed out or failed in transport is offered again, the same
//! bytes to another member, until it is settled: the chain must commit it at most once. A
//! client that is told "nonce already used" for its own in-flight transaction asks the chain
//! for the receipt instead.
//!
//! [`check_history`] then reads the chain and counts what was lost.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use caihong_chaincode::ca::CaAction;
use caihong_chaincode::credit::{
    CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, Severity,
};
use caihong_chaincode::experts::{ExpertAction, ExpertInfo, expert_id};
use caihong_chaincode::members::{OperatorAction, Role};
use caihong_chaincode::subjects::{SubjectAction, SubjectInfo, SubjectRole, SubjectStatus};
use caihong_chaincode::tx::Action;
use caihong_chaincode::types::parse_date;
use caihong_chaincode::{PublicKey, SignedTransaction};
use caihong_node::config::KeyFile;
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::harness::{Alliance, TxState, get, post, test_uscc};

/// What a client was told about one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Committed { height: u64, receipt: Value },
    Refused { status: u16, code: String },
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub client: usize,
    pub hash: String,
    pub nonce: u64,
    pub domain: &'static str,
    /// Milliseconds from the run's start to the first submission and to the outcome.
    pub sent_ms: u64,
    pub settled_ms: u64,
    pub outcome: Outcome,
}

/// Clients running in threads; [`Workload::finish`] stops them and returns the history.
#[derive(Debug)]
pub struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    history: Arc<Mutex<Vec<Record>>>,
    pub started: Instant,
}

struct Client {
    index: usize,
    key: SigningKey,
    region: String,
    chain_id: String,
    apis: Vec<String>,
    rng: ChaCha8Rng,
    nonce: u64,
    seq: u64,
    issuer: Option<String>,
}

impl Client {
    /// The next action, cycling through the domains.
    fn next_action(&mut self) -> (&'static str, Action) {
        let n = self.seq;
        self.seq += 1;
        let base = self.index as u32 * 100_000;
        let region = self.region.clone();
        let subject = |k: u64, version: u32| SubjectInfo {
            uscc: test_uscc(&region, base + k as u32),
            name: format!("故障测试主体{}-{k}有限公司", self.index),
            roles: [SubjectRole::Bidder].into_iter().collect(),
            legal_representative: format!("法人{version}"),
            qualifications: vec![],
            status: SubjectStatus::Active,
        };
        match n % 6 {
            0 => (
                "subject",
                Action::Subject(SubjectAction::Register(subject(n, 1))),
            ),
            1 => (
                "subject",
                Action::Subject(SubjectAction::Update(subject(n - 1, 2))),
            ),
            2 => (
                "credit",
                Action::Credit(CreditAction::Record(Box::new(CreditRecordInput {
                    kind: CreditKind::Violation,
                    subject_uscc: test_uscc(&region, base + n as u32 - 2),
                    subject_name: format!("故障测试主体{}-{}有限公司", self.index, n - 2),
                    document_no: format!("故障罚〔2026〕{}-{n}号", self.index),
                    violation_type: "未按规定提交投标保证金".into(),
                    legal_basis: "《中华人民共和国招标投标法》第五十三条".into(),
                    penalty_categories: vec![PenaltyCategory::Fine],
                    content: "罚款".into(),
                    fine_fen: 50_000,
                    decision_date: parse_date("2026-09-01").unwrap(),
                    penalty_end_date: None,
                    publication_end_date: parse_date("2027-08-31").unwrap(),
                    authority_name: "故障测试发展和改革委员会".into(),
                    authority_uscc: String::new(),
                    severity: Severity::General,
                    rating: None,
                }))),
            ),
            3 => (
                "expert",
                Action::Expert(ExpertAction::Register(Box::new(ExpertInfo {
                    id: expert_id(&format!("fault-{}-{n}", self.index)),
                    name: format!("故障测试专家{}-{n}", self.index),
                    specialties: vec!["A010101".into()],
                    title: "高级工程师".into(),
                    employer_uscc: test_uscc(&region, base),
                }))),
            ),
            4 if self.issuer.is_some() => (
                "ca",
                Action::Ca(CaAction::RevokeCertificate {
                    issuer: caihong_chaincode::Hash::from_hex(self.issuer.as_ref().unwrap())
                        .unwrap(),
                    serial_hex: format!("{:x}{:06x}", 0xfa00 + self.index, n),
                    reason: "故障测试吊销".into(),
                }),
            ),
            // Fails in execution (no such subject): a committed receipt with an error.
            _ => (
                "subject",
                Action::Subject(SubjectAction::Update(subject(99_000 + n, 3))),
            ),
        }
    }

    fn sign(&self, action: Action) -> SignedTransaction {
        caihong_chaincode::tx::Transaction {
            chain_id: self.chain_id.clone(),
            signer: PublicKey::from(&self.key.verifying_key()),
            nonce: self.nonce,
            action,
        }
        .sign(&self.key)
    }

    /// Submits `tx` until it is settled or `stop` is set (then `Unknown`).
    fn settle(&mut self, tx: &SignedTransaction, stop: &AtomicBool) -> Outcome {
        let hash = tx.hash().to_hex();
        let body = json!({"tx": hex::encode(tx.encode()), "wait": true, "timeout_ms": 8000});
        let mut offered = false;
        loop {
            if stop.load(Ordering::SeqCst) {
                return Outcome::Unknown;
            }
            let api = &self.apis[self.rng.gen_range(0..self.apis.len())];
            match post(&format!("{api}/v1/tx"), &body) {
                Ok(v) if v["status"] == "committed" || v["status"] == "failed" => {
                    return Outcome::Committed {
                        height: v["height"].as_u64().unwrap_or(0),
                        receipt: receipt_of(&v),
                    };
                }
                Ok(_) => offered = true, // still pending: offer it again
                Err(e) if e.status == 409 && offered => {
                    // Our nonce is used: by this transaction (committed) or, if the chain lost
                    // it, by nothing we sent. Ask the chain which.
                    if let Ok(v) = get(&format!("{api}/v1/tx/{hash}"))
                        && (v["status"] == "committed" || v["status"] == "failed")
                    {
                        return Outcome::Committed {
                            height: v["height"].as_u64().unwrap_or(0),
                            receipt: receipt_of(&v),
                        };
                    }
                }
                // Once offered, a member may hold it pending even if another refuses it now
                // (say one that lags behind and finds the nonce ahead): keep offering it.
                Err(e) if e.status >= 400 && e.status != 503 && !offered => {
                    return Outcome::Refused {
                        status: e.status,
                        code: e.body["code"].as_str().unwrap_or("").to_string(),
                    };
                }
                Err(e) if e.status == 0 || e.status >= 500 => offered = true, // unknown: retry
                Err(_) => {} // refused after it was offered somewhere: retry
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The parts of a receipt the chain must repeat exactly.
fn receipt_of(v: &Value) -> Value {
    json!({"status": v["status"], "height": v["height"], "index": v["index"],
           "output": v["output"], "error": v["error"]})
}

impl Workload {
    /// Registers `clients` operators (one admin transaction each, spread over the members)
    /// and starts them. `issuer` is a registered CA issuer's fingerprint for revocations.
    pub fn start(
        alliance: &Alliance,
        clients: usize,
        seed: u64,
        issuer: Option<String>,
    ) -> Workload {
        let all: Vec<usize> = (0..alliance.members.len()).collect();
        Workload::start_on(alliance, &all, clients, seed, issuer)
    }

    /// [`start`](Self::start) with clients that are operators of, and submit only to, `members`.
    pub fn start_on(
        alliance: &Alliance,
        members: &[usize],
        clients: usize,
        seed: u64,
        issuer: Option<String>,
    ) -> Workload {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let apis: Vec<String> = members
            .iter()
            .map(|&i| alliance.api(i).to_string())
            .collect();
        let mut prepared = Vec::new();
        for c in 0..clients {
            let m = members[c % members.len()];
            let admin = alliance.admin_key(m);
            let key = KeyFile::generate();
            let register = alliance.sign(
                &admin,
                alliance.next_nonce(m, &admin),
                Action::Operator(OperatorAction::Register {
                    key: PublicKey::from(&key.verifying_key()),
                    name: format!("故障测试操作员{c}"),
                    roles: [Role::Registrar, Role::Credit, Role::Expert]
                        .into_iter()
                        .collect(),
                }),
            );
            let answer = alliance
                .submit(m, &register, true)
                .expect("operator registers");
            assert_eq!(answer.status, TxState::Committed, "{answer:?}");
            let home = alliance.home(m);
            let region = home
                .genesis
                .members
                .iter()
                .find(|g| g.id == home.config.member)
                .unwrap()
                .region_code
                .clone();
            prepared.push(Client {
                index: c,
                key,
                region,
                chain_id: alliance.chain_id.clone(),
                apis: apis.clone(),
                rng: ChaCha8Rng::seed_from_u64(rng.r#gen()),
                nonce: 0,
                seq: 0,
                issuer: issuer.clone(),
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let history = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let threads = prepared
            .into_iter()
            .map(|mut client| {
                let (stop, history) = (stop.clone(), history.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let (domain, action) = client.next_action();
                        let tx = client.sign(action);
                        let sent_ms = started.elapsed().as_millis() as u64;
                        let outcome = client.settle(&tx, &stop);
                        if matches!(outcome, Outcome::Committed { .. }) {
                            client.nonce += 1;
                        }
                        history.lock().unwrap().push(Record {
                            client: client.index,
                            hash: tx.hash().to_hex(),
                            nonce: tx.tx.nonce,
                            domain,
                            sent_ms,
                            settled_ms: started.elapsed().as_millis() as u64,
                            outcome,
                        });
                        if matches!(
                            history.lock().unwrap().last().unwrap().outcome,
                            Outcome::Unknown
                        ) {
                            // Stopped with this transaction unsettled: its nonce may be used.
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(client.rng.gen_range(0..50)));
                    }
                })
            })
            .collect();
        Workload {
            stop,
            threads,
            history,
            started,
        }
    }

    /// Committed answers so far.
    pub fn acknowledged(&self) -> usize {
        let h = self.history.lock().unwrap();
        h.iter()
            .filter(|r| matches!(r.outcome, Outcome::Committed { .. }))
            .count()
    }

    /// Waits until `at_least` transactions committed (panics after a minute).
    pub fn wait_committed(&self, at_least: usize) {
        let started = Instant::now();
        while self.acknowledged() < at_least {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no load commits"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the clients (an unsettled transaction is recorded as `Unknown`).
    pub fn finish(self) -> Vec<Record> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("client thread");
        }
        Arc::try_unwrap(self.history).unwrap().into_inner().unwrap()
    }
}

/// Waits (up to a minute) until every one of `members` has committed every height a client
/// was told about and the highest height any of them has now; returns the lowest of their
/// heights then, the tip to check the history up to.
pub fn common_tip(alliance: &Alliance, members: &[usize], history: &[Record]) -> u64 {
    let told = history
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Committed { height, .. } => Some(height),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let highest = members
        .iter()
        .filter_map(|&m| alliance.height(m))
        .max()
        .unwrap_or(0);
    let target = told.max(highest);
    for &m in members {
        alliance.wait_height(m, target, Duration::from_secs(60));
    }
    members
        .iter()
        .map(|&m| alliance.height(m).unwrap_or(0))
        .min()
        .unwrap_or(0)
}

/// What [`check_history`] found.
#[derive(Debug, Default)]
pub struct HistoryCheck {
    pub acknowledged: usize,
    pub refused: usize,
    /// Refusals by error code.
    pub refusal_codes: std::collections::BTreeMap<String, usize>,
    pub unknown: usize,
    pub unknown_committed: usize,
    /// Acknowledged but not on chain, on chain more than once, or with another receipt.
    pub lost: Vec<String>,
}

/// Reads every block of member `i` up to `tip` and checks the history against it: each
/// acknowledged transaction is on chain exactly once, at the height and with the receipt the
/// client was told (asked of every member); no refused transaction is on chain.
pub fn check_history(
    alliance: &Alliance,
    members: &[usize],
    tip: u64,
    history: &[Record],
) -> HistoryCheck {
    let mut on_chain: HashMap<String, Vec<u64>> = HashMap::new();
    for h in 1..=tip {
        let b = alliance.get(members[0], &format!("/v1/blocks/{h}"));
        for t in b["txs"].as_array().unwrap() {
            on_chain
                .entry(t.as_str().unwrap().to_string())
                .or_default()
                .push(h);
        }
    }
    let mut check = HistoryCheck::default();
    for r in history {
        let heights = on_chain.get(&r.hash).cloned().unwrap_or_default();
        match &r.outcome {
            Outcome::Committed { height, receipt } => {
                check.acknowledged += 1;
                if heights != vec![*height] {
                    check.lost.push(format!(
                        "client {} tx {} ({}) told committed at {height}, on chain at {heights:?}",
                        r.client, r.hash, r.domain
                    ));
                    continue;
                }
                for &m in members {
                    let v = alliance.get(m, &format!("/v1/tx/{}", r.hash));
                    if &receipt_of(&v) != receipt {
                        check.lost.push(format!(
                            "client {} tx {}: member {m} has receipt {} but the client was told {receipt}",
                            r.client,
                            r.hash,
                            receipt_of(&v)
                        ));
                    }
                }
            }
            Outcome::Refused { code, status } => {
                check.refused += 1;
                *check
                    .refusal_codes
                    .entry(format!("{status} {code}"))
                    .or_default() += 1;
                if !heights.is_empty() {
                    check.lost.push(format!(
                        "client {} tx {} was refused but is on chain at {heights:?}",
                        r.client, r.hash
                    ));
                }
            }
            Outcome::Unknown => {
                check.unknown += 1;
                if heights.len() > 1 {
                    check
                        .lost
                        .push(format!("tx {} is on chain twice: {heights:?}", r.hash));
                }
                check.unknown_committed += usize::from(!heights.is_empty());
            }
        }
    }
    // No transaction at all appears twice.
    for (hash, heights) in &on_chain {
        if heights.len() > 1 {
            check.lost.push(format!(
                "tx {hash} is on chain {} times: {heights:?}",
                heights.len()
            ));
        }
    }
    check
}
