//! `caihong bench`: a fresh local alliance of real processes, driven with signed transactions
//! of a realistic mix, measured from the chain.
//!
//! Committed transactions per second count the transactions in blocks member 0 reported
//! committed inside the measured window (after the warm-up), not submissions. Latency is from a
//! transaction's submission to the moment the observer saw its block committed (polling every
//! 20 ms, so it is at most that much late). CPU and peak RSS come from /proc for every node
//! process; disk per transaction is the nodes' data directories over the transactions committed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, ExitCode};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use caihong_chaincode::credit::{
    CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, Severity,
};
use caihong_chaincode::experts::{ExpertAction, ExpertInfo, expert_id};
use caihong_chaincode::members::{OperatorAction, Role};
use caihong_chaincode::subjects::{SubjectAction, SubjectInfo, SubjectRole, SubjectStatus};
use caihong_chaincode::types::parse_date;
use caihong_chaincode::{Action, PublicKey};
use caihong_node::config::{Home, KeyFile, NetworkFile, make_testnet, write_config};
use caihong_node::contract::{BatchAnswer, BlockAnswer, Status, SubmitTxs, TxState, route};
use clap::Args;
use ed25519_dalek::SigningKey;

use crate::client::Client;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Members (nodes) in the alliance.
    #[arg(long, default_value_t = 4)]
    pub members: usize,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 10)]
    pub warmup: u64,
    /// Offered load in transactions per second; 0 offers as fast as the alliance takes them.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Signing operators (spread over the members).
    #[arg(long, default_value_t = 32)]
    pub signers: usize,
    /// Client threads submitting (client c sends to member c % members).
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Most transactions per request (`POST /v1/txs`).
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Make the alliance in this directory (created; must be empty or absent) and keep it
    /// afterwards, with each node's log, instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Log filter of the nodes (`RUST_LOG` syntax), e.g. `info` to see every commit.
    #[arg(long, default_value = "warn")]
    pub node_log: String,
    /// First port; member i uses base+2i and base+2i+1.
    #[arg(long, default_value_t = 27600)]
    pub base_port: u16,
    /// Each member's `consensus.block_interval_ms` (default: the node's default).
    #[arg(long)]
    pub block_interval_ms: Option<u64>,
    /// Each member's `storage.keep_state_versions` (default: 0, every version), to measure
    /// the disk a pruning member uses per transaction.
    #[arg(long)]
    pub keep_state_versions: Option<u64>,
    /// What the transactions do: `realistic` (of every 20: 8 subject registrations, 4
    /// updates, 5 credit records, 3 expert registrations) or `records` (of every 20: 2
    /// subject registrations with varied Chinese names, 18 credit records of varied kinds
    /// and dates), to fill a chain with records (the console's benchmark).
    #[arg(long, value_enum, default_value = "realistic")]
    pub mix: Mix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    Realistic,
    Records,
}

/// Every node process started; killed when dropped, so no exit path leaves one running.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One operator key driving transactions, with its sequence number.
struct Signer {
    key: SigningKey,
    region: String,
    api: String,
    index: usize,
    /// Next sequence number, which is also the next nonce.
    seq: u64,
    /// Transactions signed before the run, by sequence number: (hex encoding, hash).
    presigned: Vec<(String, String)>,
    mix: Mix,
}

impl Signer {
    /// The transaction with the next sequence number, hex-encoded, and its hash; signed now
    /// unless it was signed before the run.
    fn next_tx(&mut self, chain_id: &str) -> (u64, String, String) {
        let seq = self.seq;
        if let Some((hex, hash)) = self.presigned.get(seq as usize) {
            self.seq += 1;
            return (seq, hex.clone(), hash.clone());
        }
        let action = next_action(self);
        let tx = caihong_chaincode::Transaction {
            chain_id: chain_id.to_string(),
            signer: PublicKey::from(&self.key.verifying_key()),
            nonce: seq,
            action,
        }
        .sign(&self.key);
        (seq, hex::encode(tx.encode()), tx.hash().to_hex())
    }

    /// Signs the first `count` transactions ahead, so that signing does not take the cores
    /// the members share with the load generator during the run.
    fn presign(&mut self, chain_id: &str, count: u64) {
        let mut signed = Vec::with_capacity(count as usize);
        while self.seq < count {
            let (_, hex, hash) = self.next_tx(chain_id);
            signed.push((hex, hash));
        }
        self.seq = 0;
        self.presigned = signed;
    }
}

fn uscc(region: &str, signer: usize, n: u64) -> String {
    caihong_chaincode::uscc::build(
        &format!("91{region}"),
        &format!("{:08}", signer as u64 * 1_000_000 + n),
    )
    .expect("bench codes are well formed")
    .as_str()
    .to_string()
}

fn subject(region: &str, signer: usize, n: u64, version: u32) -> SubjectInfo {
    SubjectInfo {
        uscc: uscc(region, signer, n),
        name: format!("压测主体{signer}-{n}有限公司"),
        roles: [SubjectRole::Bidder].into_iter().collect(),
        legal_representative: format!("法人{version}"),
        qualifications: vec![],
        status: SubjectStatus::Active,
    }
}

/// Characters company names are made of, so that a name search meets realistic postings.
const NAME_PARTS: [&str; 24] = [
    "鑫", "源", "建", "工", "华", "泰", "路", "桥", "宏", "达", "盛", "通", "恒", "信", "中", "联",
    "科", "技", "安", "居", "丰", "茂", "新", "城",
];

/// A varied company name: two or three parts, a district, a trade, the number.
fn records_subject_name(signer: usize, n: u64) -> String {
    let pick = |k: u64| NAME_PARTS[((n / 20 * 7 + k * 13 + signer as u64) % 24) as usize];
    let trade = ["建设工程", "路桥", "市政", "装饰", "监理", "造价咨询"][(n / 20 % 6) as usize];
    let district = ["东胜", "康巴什", "青山", "昆都仑", "新城", "回民"][(n / 120 % 6) as usize];
    format!(
        "{district}{}{}{}{trade}{}有限公司",
        pick(1),
        pick(2),
        if n % 3 == 0 { pick(3) } else { "" },
        n / 20
    )
}

/// The `records` mix: of every 20 transactions, 2 register a subject and 18 record credit
/// for the group's first subject, of varied kinds, violation types and decision dates.
fn records_action(region: &str, i: usize, n: u64) -> Action {
    let group = n - n % 20;
    if n % 20 < 2 {
        let mut info = subject(region, i, n, 1);
        info.name = records_subject_name(i, n);
        return Action::Subject(SubjectAction::Register(info));
    }
    let kind = match n % 7 {
        0 => CreditKind::Commendation,
        1 => CreditKind::Performance,
        _ => CreditKind::Violation,
    };
    let decided = parse_date("2025-01-01").expect("date") + chrono::Days::new(n % 600);
    Action::Credit(CreditAction::Record(Box::new(CreditRecordInput {
        kind,
        subject_uscc: uscc(region, i, group),
        subject_name: records_subject_name(i, group),
        document_no: format!("压测〔2026〕{i}-{n}号"),
        violation_type: ["未按规定提交投标保证金", "串通投标", "弄虚作假", "违法分包"]
            [(n % 4) as usize]
            .into(),
        legal_basis: "《中华人民共和国招标投标法》第五十三条".into(),
        penalty_categories: match kind {
            CreditKind::Violation => vec![PenaltyCategory::Fine],
            _ => vec![],
        },
        content: "压测记录".into(),
        fine_fen: if kind == CreditKind::Violation {
            100_000
        } else {
            0
        },
        decision_date: decided,
        penalty_end_date: None,
        publication_end_date: decided + chrono::Days::new(365),
        authority_name: "压测发展和改革委员会".into(),
        authority_uscc: String::new(),
        severity: Severity::General,
        rating: None,
    })))
}

/// The next transaction's action, by sequence number. The realistic mix: of every 20
/// transactions 8 register a subject, 4 update one, 5 record credit and 3 register an expert.
fn next_action(s: &mut Signer) -> Action {
    let n = s.seq;
    s.seq += 1;
    let (region, i) = (s.region.as_str(), s.index);
    if s.mix == Mix::Records {
        return records_action(region, i, n);
    }
    match n % 20 {
        0..=7 => Action::Subject(SubjectAction::Register(subject(region, i, n, 1))),
        8..=11 => Action::Subject(SubjectAction::Update(subject(region, i, n - 8, 2))),
        12..=16 => Action::Credit(CreditAction::Record(Box::new(CreditRecordInput {
            kind: CreditKind::Violation,
            subject_uscc: uscc(region, i, n - 12),
            subject_name: format!("压测主体{i}-{}有限公司", n - 12),
            document_no: format!("压测罚〔2026〕{i}-{n}号"),
            violation_type: "未按规定提交投标保证金".into(),
            legal_basis: "《中华人民共和国招标投标法》第五十三条".into(),
            penalty_categories: vec![PenaltyCategory::Fine],
            content: "罚款".into(),
            fine_fen: 100_000,
            decision_date: parse_date("2026-09-01").expect("date"),
            penalty_end_date: None,
            publication_end_date: parse_date("2027-08-31").expect("date"),
            authority_name: "压测发展和改革委员会".into(),
            authority_uscc: String::new(),
            severity: Severity::General,
            rating: None,
        }))),
        _ => Action::Expert(ExpertAction::Register(Box::new(ExpertInfo {
            id: expert_id(&format!("bench-{i}-{n}")),
            name: format!("压测专家{i}-{n}"),
            specialties: vec!["A010101".into()],
            title: "高级工程师".into(),
            employer_uscc: uscc(region, i, 999_999),
        }))),
    }
}

fn now_ms_since(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// utime + stime of a process in seconds, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the state field.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set (VmHWM) in MiB.
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn get<T: serde::de::DeserializeOwned>(agent: &ureq::Agent, url: &str) -> Option<T> {
    agent
        .get(url)
        .timeout(Duration::from_secs(10))
        .call()
        .ok()?
        .into_json()
        .ok()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.members == 0 || args.signers == 0 || args.clients == 0 || args.duration == 0 {
        bail!("--members, --signers, --clients and --duration must be at least 1");
    }
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                bail!("--dir {} is not empty", d.display());
            }
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let (net, nodes) = start_alliance(&args, &dir)?;
    let signers = register_signers(&args, &net)?;
    let mut shares = assign_shares(&args, &net, signers);
    if args.rate > 0 {
        presign(&args, &net.chain_id, &mut shares);
    }
    let record = LoadRecord::default();
    let schedule = Schedule::new(&args);
    let per_client_rate = (args.rate > 0).then(|| args.rate as f64 / args.clients as f64);
    let pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let observed = std::thread::scope(|scope| {
        for share in shares.into_iter().filter(|s| !s.is_empty()) {
            let (chain_id, record) = (&net.chain_id, &record);
            let batch_max = args.batch.max(1);
            scope.spawn(move || {
                run_client(
                    share,
                    chain_id,
                    per_client_rate,
                    batch_max,
                    schedule,
                    record,
                )
            });
        }
        let observed = observe(&net.members[0].api, &pids, schedule, &record.stop);
        record.stop.store(true, Ordering::Relaxed);
        observed
    });
    let disk: u64 = net
        .members
        .iter()
        .map(|m| dir_bytes(&m.home.join("data")))
        .sum();
    // Read from /proc while the node processes still exist.
    let rss = pids.iter().map(|p| peak_rss_mb(*p)).fold(0.0, f64::max);
    drop(nodes);
    report(&args, schedule, &observed, &record, rss, disk);
    Ok(ExitCode::SUCCESS)
}

/// What the load threads share: the stop flag and what they record.
#[derive(Debug, Default)]
struct LoadRecord {
    stop: AtomicBool,
    /// Each submitted transaction's hash and when it was submitted (ms since the start).
    submitted: Mutex<HashMap<String, u64>>,
    rejected: AtomicU64,
    refusal_codes: Mutex<BTreeMap<String, u64>>,
}

/// The run's timeline, in ms since `start`: the window is `[warmup_ms, end_ms)`, and the
/// observer goes on until `settle_ms`.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    warmup_ms: u64,
    end_ms: u64,
    settle_ms: u64,
}

impl Schedule {
    fn new(args: &BenchArgs) -> Self {
        let end_ms = (args.warmup + args.duration) * 1000;
        Schedule {
            start: Instant::now(),
            warmup_ms: args.warmup * 1000,
            end_ms,
            settle_ms: end_ms + 5_000,
        }
    }
}

/// What the observer saw: each block's height, when it was seen and its transactions; the
/// node processes' CPU seconds at the window's start and at the end.
#[derive(Debug)]
struct Observed {
    blocks: Vec<(u64, u64, Vec<String>)>,
    cpu_start: Vec<f64>,
    cpu_end: Vec<f64>,
}

/// Makes the alliance in `dir`, starts a `caihong start` process per member and waits until
/// every member has committed a block.
fn start_alliance(args: &BenchArgs, dir: &Path) -> anyhow::Result<(NetworkFile, Nodes)> {
    let net = make_testnet(dir, args.members, args.base_port, "caihong-bench")?;
    for m in &net.members {
        let path = Home::config_path(&m.home);
        let mut home = Home::load(&m.home)?;
        if let Some(interval) = args.block_interval_ms {
            home.config.consensus.block_interval_ms = interval;
        }
        if let Some(keep) = args.keep_state_versions {
            home.config.storage.keep_state_versions = keep;
        }
        write_config(&path, &home.config)?;
    }
    let exe = std::env::current_exe()?;
    let mut nodes = Nodes(Vec::new());
    for m in &net.members {
        let log = std::fs::File::create(m.home.join("node.log"))?;
        nodes.0.push(
            std::process::Command::new(&exe)
                .args(["start", "--home"])
                .arg(&m.home)
                .env("RUST_LOG", &args.node_log)
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", m.name))?,
        );
    }
    let agent = ureq::AgentBuilder::new().build();
    let deadline = Instant::now() + Duration::from_secs(60);
    for m in &net.members {
        while get::<Status>(&agent, &format!("{}{}", m.api, route::STATUS)).map_or(0, |s| s.height)
            < 1
        {
            if Instant::now() > deadline {
                bail!(
                    "{} did not commit a block within 60 s; see {}",
                    m.name,
                    m.home.join("node.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    eprintln!(
        "alliance of {} members up in {}",
        args.members,
        dir.display()
    );
    Ok((net, nodes))
}

/// Operators with the registrar, credit and expert roles, registered by each member's admin.
fn register_signers(args: &BenchArgs, net: &NetworkFile) -> anyhow::Result<Vec<Signer>> {
    let mut signers = Vec::new();
    for (m, member) in net.members.iter().enumerate() {
        let home = Home::load(&member.home)?;
        let admin = KeyFile::read(&Home::admin_key_path(&member.home))?;
        let region = home
            .genesis
            .members
            .iter()
            .find(|g| g.id == home.config.member)
            .map(|g| g.region_code.clone())
            .context("member in genesis")?;
        let client = Client::connect(&member.api).map_err(crate::client::failure)?;
        for k in (m..args.signers).step_by(args.members) {
            let key = KeyFile::generate();
            let register = Action::Operator(OperatorAction::Register {
                key: PublicKey::from(&key.verifying_key()),
                name: format!("压测操作员{k}"),
                roles: [Role::Registrar, Role::Credit, Role::Expert]
                    .into_iter()
                    .collect(),
            });
            let answer = client
                .submit(&admin, register, true)
                .map_err(crate::client::failure)?;
            if answer.status != TxState::Committed {
                bail!("registering bench operator {k}: {answer:?}");
            }
            signers.push(Signer {
                key,
                region: region.clone(),
                api: member.api.clone(),
                index: k,
                seq: 0,
                presigned: Vec::new(),
                mix: args.mix,
            });
        }
    }
    Ok(signers)
}

/// Splits the signers over the client threads: client c serves member c % members, so a
/// share's signers all use one API.
fn assign_shares(args: &BenchArgs, net: &NetworkFile, signers: Vec<Signer>) -> Vec<Vec<Signer>> {
    let mut shares: Vec<Vec<Signer>> = (0..args.clients).map(|_| Vec::new()).collect();
    for s in signers {
        let member = net.members.iter().position(|m| m.api == s.api).unwrap_or(0);
        let clients_of_member: Vec<usize> = (0..args.clients)
            .filter(|c| c % args.members == member)
            .collect();
        let client = if clients_of_member.is_empty() {
            s.index % args.clients
        } else {
            clients_of_member[s.index / args.members % clients_of_member.len()]
        };
        shares[client].push(s);
    }
    shares
}

/// At a fixed rate the run's transactions are known ahead: signs them first (a share per
/// thread), with a margin for refused ones offered again.
fn presign(args: &BenchArgs, chain_id: &str, shares: &mut [Vec<Signer>]) {
    // thread), with a margin for refused ones offered again.
    let per_signer =
        args.rate * (args.warmup + args.duration) * 21 / 20 / (args.signers.max(1) as u64) + 50;
    eprintln!(
        "signing {per_signer} transactions for each of {} signers ahead",
        args.signers
    );
    std::thread::scope(|scope| {
        for share in shares.iter_mut() {
            let chain_id = &chain_id;
            scope.spawn(move || {
                for s in share.iter_mut() {
                    s.presign(chain_id, per_signer);
                }
            });
        }
    });
}

/// One client thread: sends batches to its share's member on behalf of the share's operators,
/// at its part of the offered rate (or as fast as taken), until the window ends. A
/// transaction's nonce is its signer's sequence number, so a refused one is regenerated
/// identically when offered again.
fn run_client(
    mut share: Vec<Signer>,
    chain_id: &str,
    per_client_rate: Option<f64>,
    batch_max: usize,
    schedule: Schedule,
    record: &LoadRecord,
) {
    let agent = ureq::AgentBuilder::new().build();
    let api = share[0].api.clone();
    let client_start = Instant::now();
    let mut sent = 0u64;
    let mut turn = 0;
    while !record.stop.load(Ordering::Relaxed) && now_ms_since(schedule.start) < schedule.end_ms {
        let due = match per_client_rate {
            Some(rate) => {
                let owed = (client_start.elapsed().as_secs_f64() * rate) as u64;
                (owed.saturating_sub(sent) as usize).min(batch_max)
            }
            None => batch_max,
        };
        if due == 0 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        // (signer slot, seq, hex, hash) of each transaction in the batch.
        let mut batch = Vec::with_capacity(due);
        for _ in 0..due {
            let slot = turn % share.len();
            turn += 1;
            let (seq, hex, hash) = share[slot].next_tx(chain_id);
            batch.push((slot, seq, hex, hash));
        }
        let body = SubmitTxs {
            txs: batch.iter().map(|b| b.2.clone()).collect(),
        };
        let at = now_ms_since(schedule.start);
        let answer: Option<BatchAnswer> = agent
            .post(&format!("{api}{}", route::TXS))
            .timeout(Duration::from_secs(30))
            .send_json(&body)
            .ok()
            .and_then(|r| r.into_json().ok());
        let results = answer.as_ref().map_or(&[][..], |a| &a.results[..]);
        sent += batch.len() as u64;
        // Each signer goes back to its first transaction that was not taken.
        let mut first_refused: HashMap<usize, u64> = HashMap::new();
        let mut full = false;
        for (i, (slot, seq, _, hash)) in batch.iter().enumerate() {
            match results.get(i) {
                Some(r) if r.status == Some(TxState::Pending) => {
                    record
                        .submitted
                        .lock()
                        .expect("submitted")
                        .insert(hash.clone(), at);
                }
                other => {
                    let code = other.and_then(|r| r.code.as_deref());
                    if code == Some("MEMPOOL_FULL") {
                        full = true;
                    } else {
                        record.rejected.fetch_add(1, Ordering::Relaxed);
                        let code = code.unwrap_or("no answer").to_string();
                        *record
                            .refusal_codes
                            .lock()
                            .expect("codes")
                            .entry(code)
                            .or_default() += 1;
                    }
                    let e = first_refused.entry(*slot).or_insert(*seq);
                    *e = (*e).min(*seq);
                }
            }
        }
        for (slot, seq) in first_refused {
            share[slot].seq = seq;
        }
        if full || answer.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Watches member 0's commits, with the time each was seen, until the window is over and a
/// little after (so what was submitted inside it is seen committed); stops the load when the
/// window ends.
fn observe(observer_api: &str, pids: &[u32], schedule: Schedule, stop: &AtomicBool) -> Observed {
    let agent = ureq::AgentBuilder::new().build();
    let mut blocks: Vec<(u64, u64, Vec<String>)> = Vec::new();
    let status_url = format!("{observer_api}{}", route::STATUS);
    let mut seen = get::<Status>(&agent, &status_url).map_or(0, |s| s.height);
    let mut cpu_at_window_start = None;
    while now_ms_since(schedule.start) < schedule.settle_ms {
        if cpu_at_window_start.is_none() && now_ms_since(schedule.start) >= schedule.warmup_ms {
            cpu_at_window_start = Some(pids.iter().map(|p| cpu_seconds(*p)).collect::<Vec<_>>());
        }
        if let Some(h) = get::<Status>(&agent, &status_url).map(|s| s.height) {
            let observed = now_ms_since(schedule.start);
            for height in seen + 1..=h {
                let url = format!(
                    "{observer_api}{}",
                    route::path(route::BLOCK, &[&height.to_string()])
                );
                if let Some(b) = get::<BlockAnswer>(&agent, &url) {
                    blocks.push((height, observed, b.txs));
                }
            }
            seen = h;
        }
        if now_ms_since(schedule.start) >= schedule.end_ms {
            // The window is over: stop the load and keep observing a little, so what was
            // submitted inside it is seen committed.
            stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Observed {
        cpu_start: cpu_at_window_start.unwrap_or_else(|| vec![0.0; pids.len()]),
        cpu_end: pids.iter().map(|p| cpu_seconds(*p)).collect(),
        blocks,
    }
}

/// Prints the figures over the measured window; the last line is the one to compare.
fn report(
    args: &BenchArgs,
    schedule: Schedule,
    observed: &Observed,
    record: &LoadRecord,
    rss: f64,
    disk: u64,
) {
    let window = (schedule.warmup_ms, schedule.end_ms);
    let in_window: Vec<&(u64, u64, Vec<String>)> = observed
        .blocks
        .iter()
        .filter(|(_, at, _)| *at >= window.0 && *at < window.1)
        .collect();
    let committed: usize = in_window.iter().map(|(_, _, t)| t.len()).sum();
    let seconds = args.duration as f64;
    let tps = committed as f64 / seconds;
    let submitted = record.submitted.lock().expect("submitted");
    let mut latencies: Vec<u64> = in_window
        .iter()
        .flat_map(|(_, at, txs)| {
            txs.iter()
                .filter_map(|t| submitted.get(t).map(|s| at.saturating_sub(*s)))
        })
        .collect();
    latencies.sort_unstable();
    let window_secs = (schedule.settle_ms - schedule.warmup_ms) as f64 / 1000.0;
    let cpu_pct: f64 = observed
        .cpu_end
        .iter()
        .zip(&observed.cpu_start)
        .map(|(e, s)| (e - s) / window_secs * 100.0)
        .sum();
    let total_committed: usize = observed.blocks.iter().map(|(_, _, t)| t.len()).sum();

    println!(
        "window {}s after {}s warm-up: {} blocks ({:.1}/s), {committed} transactions committed, {} submitted in all, {} refused",
        args.duration,
        args.warmup,
        in_window.len(),
        in_window.len() as f64 / seconds,
        submitted.len(),
        record.rejected.load(Ordering::Relaxed)
    );
    let codes = record.refusal_codes.lock().expect("codes");
    if !codes.is_empty() {
        let list: Vec<String> = codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!("refused by code: {}", list.join(", "));
    }
    println!(
        "latency submit->committed: p50 {} ms, p99 {} ms, max {} ms ({} samples)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        latencies.len()
    );
    println!(
        "cpu {:.0}% of one core for all nodes together; peak rss {:.0} MiB per node; disk {:.0} bytes per committed transaction (all nodes)",
        cpu_pct,
        rss,
        if total_committed > 0 {
            disk as f64 / total_committed as f64
        } else {
            0.0
        }
    );
    println!(
        "members={} tps={:.0} p50_ms={} p99_ms={} cpu_pct={:.0} rss_mb={:.0}",
        args.members,
        tps,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        cpu_pct,
        rss
    );
}
