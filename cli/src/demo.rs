//! `caihong demo --dir DIR`: loads demo data into a running local alliance (made by
//! `caihong testnet`, started by `caihong localnet`) and shows that every member answers the
//! same. Each member's admin registers bidders in its own region; members record credit
//! decisions about each other's subjects, including a blacklist that bars bidding everywhere
//! (一处失信、处处受限).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use caihong_chaincode::ca::CaAction;
use caihong_chaincode::credit::{
    CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, Severity,
};
use caihong_chaincode::experts::extraction::{
    ExtractionRequest, RemoteRequest, Requirement, commitment,
};
use caihong_chaincode::experts::{ExpertAction, ExpertInfo, Extraction, expert_id, seal};
use caihong_chaincode::subjects::{SubjectAction, SubjectInfo, SubjectRole, SubjectStatus};
use caihong_chaincode::types::parse_date;
use caihong_chaincode::x509;
use caihong_chaincode::{Action, TxOutput};
use caihong_node::config::{Home, KeyFile};
use caihong_node::contract::{TxAnswer, TxState, route};
use clap::Args;
use ed25519_dalek::SigningKey;
use serde_json::Value;

use crate::client::{Client, explain_rejection, failure};
use crate::node::{Failure, http_get, http_post_bytes, read_network};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A directory made by `caihong testnet` whose members are running.
    #[arg(long)]
    pub dir: PathBuf,
}

/// One member as the demo uses it.
struct DemoMember {
    name: String,
    api: String,
    region: String,
    admin: SigningKey,
    chain_id: String,
}

impl DemoMember {
    fn client(&self) -> Client {
        Client {
            url: self.api.clone(),
            chain_id: self.chain_id.clone(),
        }
    }
}

fn bidder(region: &str, body: &str, name: &str) -> anyhow::Result<SubjectInfo> {
    let uscc = caihong_chaincode::uscc::build(&format!("91{region}"), body)
        .map_err(|e| anyhow::anyhow!("demo code {region}/{body}: {e}"))?;
    Ok(SubjectInfo {
        uscc: uscc.as_str().to_string(),
        name: name.to_string(),
        roles: [SubjectRole::Bidder].into_iter().collect(),
        legal_representative: "王建国".into(),
        qualifications: vec![],
        status: SubjectStatus::Active,
    })
}

fn credit(
    kind: CreditKind,
    subject: &SubjectInfo,
    document_no: &str,
    violation: &str,
    fine_fen: u64,
    authority: &str,
) -> anyhow::Result<CreditRecordInput> {
    let date = |s: &str| parse_date(s).map_err(|e| anyhow::anyhow!(e));
    Ok(CreditRecordInput {
        kind,
        subject_uscc: subject.uscc.clone(),
        subject_name: subject.name.clone(),
        document_no: document_no.into(),
        violation_type: violation.into(),
        legal_basis: "《中华人民共和国招标投标法》第五十三条".into(),
        penalty_categories: vec![PenaltyCategory::Fine],
        content: format!("{violation}，处以罚款"),
        fine_fen,
        decision_date: date("2026-09-01")?,
        penalty_end_date: None,
        // Publication periods are capped nationally: a year for general records.
        publication_end_date: date(if kind == CreditKind::Blacklist {
            "2028-08-31"
        } else {
            "2027-08-31"
        })?,
        authority_name: authority.into(),
        authority_uscc: String::new(),
        severity: if kind == CreditKind::Blacklist {
            Severity::Serious
        } else {
            Severity::General
        },
        rating: None,
    })
}

/// Submits `action` signed by the member's admin and waits for it to commit.
fn submit(member: &DemoMember, action: Action) -> anyhow::Result<TxAnswer> {
    let client = member.client();
    match client.submit(&member.admin, action, true) {
        Ok(answer) if answer.status == TxState::Committed => Ok(answer),
        Ok(answer) => bail!("{}: transaction not committed: {answer:?}", member.name),
        Err(Failure::Rejected { status, body }) => bail!(
            "{}: rejected: {}",
            member.name,
            explain_rejection(status, &body)
        ),
        Err(Failure::Local(e)) => Err(e),
    }
}

/// Waits until `member` has committed the block at `height` (30 s at most): a read from another
/// member than the one a transaction went to must wait for that member to have its block, or
/// it shows the state before the transaction (read-your-writes by height).
fn wait_for_block(member: &DemoMember, height: Option<u64>) -> anyhow::Result<()> {
    let height = height.context("a committed transaction has a height")?;
    let client = member.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.status().map_err(failure)?.height < height {
        if Instant::now() > deadline {
            bail!("{} did not reach height {height} within 30 s", member.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn wait_for_alliance(members: &[DemoMember]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for m in members {
        loop {
            if let Ok(s) = http_get(&format!("{}/v1/status", m.api))
                && s["height"].as_u64().unwrap_or(0) >= 1
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} at {} has not committed a block within 60 s; is `caihong localnet` running?",
                    m.name,
                    m.api
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let members = demo_members(&args)?;
    if members.len() < 2 {
        bail!("the demo needs at least two members");
    }
    wait_for_alliance(&members)?;
    let subjects = demo_subjects(&members)?;
    let blacklisted = demo_credit(&members, &subjects)?;
    demo_certificates(&members)?;
    demo_extraction(&members, &subjects)?;
    let code = every_member_answers_alike(&members, &blacklisted)?;
    let examples = args.dir.join("examples");
    let others: Vec<String> = members[1..].iter().map(|m| m.name.clone()).collect();
    crate::walkthrough::write(&examples, beijing_today(), &others)?;
    println!(
        "the README's walkthrough reads its input files from {}",
        examples.display()
    );
    println!(
        "web console (控制台) of {}: {}/console (every member serves its own on its API port)",
        members[0].name, members[0].api
    );
    Ok(code)
}

/// Today's date in Beijing (UTC+8), the alliance's calendar.
fn beijing_today() -> chrono::NaiveDate {
    let secs = crate::node::now_secs() as i64 + 8 * 3600;
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .date_naive()
}

/// The members of the local alliance in `args.dir`, with their admin keys.
fn demo_members(args: &DemoArgs) -> anyhow::Result<Vec<DemoMember>> {
    let net = read_network(&args.dir)?;
    let mut members = Vec::new();
    for m in &net.members {
        let home = Home::load(&m.home)?;
        let region = home
            .genesis
            .members
            .iter()
            .find(|g| g.id == home.config.member)
            .map(|g| g.region_code.clone())
            .context("member is not in genesis")?;
        members.push(DemoMember {
            name: m.name.clone(),
            api: m.api.clone(),
            region,
            admin: KeyFile::read(&Home::admin_key_path(&m.home))?,
            chain_id: net.chain_id.clone(),
        });
    }
    Ok(members)
}

/// A bidder's name as a center's records have it: the city (from the member's id, as
/// `caihong testnet` names its members) and a firm, e.g. 包头市第一建设工程有限公司.
fn demo_subject_name(member: &str, k: usize) -> String {
    let city = caihong_chaincode::sandbox::CITIES
        .iter()
        .find(|(id, ..)| *id == member)
        .map(|(_, name, _)| name.trim_end_matches("公共资源交易中心").to_string())
        .unwrap_or_else(|| member.to_string());
    match k {
        0 => format!("{city}第一建设工程有限公司"),
        _ => format!("{city}（联合）路桥建工集团有限公司"),
    }
}

/// The demo experts' names (three per member).
const DEMO_EXPERT_NAMES: [&str; 15] = [
    "王建国",
    "李秀英",
    "张伟",
    "刘芳",
    "陈志强",
    "杨静",
    "赵磊",
    "黄敏",
    "周晓东",
    "吴丽娟",
    "徐海涛",
    "孙雪梅",
    "马文斌",
    "朱红",
    "胡立新",
];

/// Each member registers two bidders of its own region: (member index, subject).
fn demo_subjects(members: &[DemoMember]) -> anyhow::Result<Vec<(usize, SubjectInfo)>> {
    let mut subjects = Vec::new();
    for (i, m) in members.iter().enumerate() {
        for k in 0..2 {
            let info = bidder(
                &m.region,
                &format!("MA{:02}{:04}", i + 1, k + 1),
                &demo_subject_name(&m.name, k),
            )?;
            submit(m, Action::Subject(SubjectAction::Register(info.clone())))?;
            println!(
                "{:<10} registered subject (市场主体) {} {}",
                m.name, info.uscc, info.name
            );
            subjects.push((i, info));
        }
    }
    Ok(subjects)
}

/// The second member records a violation against the first member's bidder, and blacklists
/// the third member's (or its own, with two members) for collusion: a decision made in one
/// city that every city enforces. Returns the blacklisted subject.
fn demo_credit(
    members: &[DemoMember],
    subjects: &[(usize, SubjectInfo)],
) -> anyhow::Result<SubjectInfo> {
    let recorder = &members[1];
    let violator = &subjects[0].1;
    let blacklisted = &subjects[2 * (2 % members.len())].1;
    let authority = format!("{}发展和改革委员会", recorder.name);
    submit(
        recorder,
        Action::Credit(CreditAction::Record(Box::new(credit(
            CreditKind::Violation,
            violator,
            "发改罚〔2026〕12号",
            "未按规定提交投标保证金",
            2_000_000,
            &authority,
        )?))),
    )?;
    println!(
        "{:<10} recorded a violation (违法违规) for {}",
        recorder.name, violator.uscc
    );
    submit(
        recorder,
        Action::Credit(CreditAction::Record(Box::new(credit(
            CreditKind::Blacklist,
            blacklisted,
            "发改罚〔2026〕13号",
            "串通投标",
            50_000_000,
            &authority,
        )?))),
    )?;
    println!(
        "{:<10} blacklisted (黑名单) {} for collusion (串通投标)",
        recorder.name, blacklisted.uscc
    );
    Ok(blacklisted.clone())
}

/// Every member, once at the same height, gives the same restriction answer for the
/// blacklisted subject and the same block: exit 0, or 1 if they disagree.
fn every_member_answers_alike(
    members: &[DemoMember],
    blacklisted: &SubjectInfo,
) -> anyhow::Result<ExitCode> {
    let clients: Vec<Client> = members.iter().map(|m| m.client()).collect();
    let height = |c: &Client| c.status().map(|s| s.height).map_err(failure);
    let tip = clients
        .iter()
        .map(height)
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .max()
        .unwrap_or(0);
    for (m, c) in members.iter().zip(&clients) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while height(c)? < tip {
            if Instant::now() > deadline {
                bail!("{} did not reach height {tip}", m.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!();
    println!(
        "restriction (失信限制) of {} as each member sees it:",
        blacklisted.uscc
    );
    let mut answers = Vec::new();
    for (m, c) in members.iter().zip(&clients) {
        let r: Value = c
            .get(&route::path(
                route::CREDIT_RESTRICTION,
                &[&blacklisted.uscc],
            ))
            .map_err(failure)?;
        let block = c.block(tip).map_err(failure)?;
        println!(
            "  {:<10} barred={} records={} | block {tip} hash {} state_root {}",
            m.name,
            r["barred"],
            r["records"].as_array().map_or(0, |a| a.len()),
            short(&block.hash),
            short(&block.state_root),
        );
        answers.push((r, block.hash, block.state_root));
    }
    if answers.iter().any(|a| a != &answers[0]) {
        println!("members disagree!");
        return Ok(ExitCode::from(1));
    }
    println!(
        "all {} members give the same answer at height {tip}",
        members.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// An SM2 CA (the kind most Chinese CAs run) registered by the first member and recognized by
/// every member; a bidder's certificate from it registered and verified alliance-wide.
fn demo_certificates(members: &[DemoMember]) -> anyhow::Result<()> {
    let root = x509::parse_certificate(SM2_ROOT)?;
    let bidder = x509::parse_certificate(SM2_BIDDER)?;
    let first = &members[0];
    submit(
        first,
        Action::Ca(CaAction::RegisterIssuer {
            certificate: root.der().to_vec(),
        }),
    )?;
    let fingerprint = root.fingerprint_sha256();
    println!(
        "{:<10} registered CA issuer (CA 机构) {}\n           fingerprint {}",
        first.name,
        root.subject(),
        fingerprint.to_hex()
    );
    for m in members {
        submit(
            m,
            Action::Ca(CaAction::SetRecognition {
                issuer: fingerprint,
                recognized: true,
            }),
        )?;
    }
    println!("every member recognizes it (互认)");
    let registered = submit(
        first,
        Action::Ca(CaAction::RegisterCertificate {
            certificate: bidder.der().to_vec(),
        }),
    )?;
    let last = &members[members.len() - 1];
    wait_for_block(last, registered.height)?;
    let v =
        http_post_bytes(&format!("{}/v1/ca/verify", last.api), bidder.der()).map_err(failure)?;
    let reasons: Vec<&str> = v["reasons_text"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "{:<10} verifies bidder certificate (数字证书) {}: recognized={}",
        last.name,
        bidder.subject(),
        v["recognized"],
    );
    for reason in reasons {
        println!("           {reason}");
    }
    Ok(())
}

const SM2_ROOT: &[u8] = include_bytes!("../../chaincode/tests/fixtures/certs/sm2-root.pem");
const SM2_BIDDER: &[u8] = include_bytes!("../../chaincode/tests/fixtures/certs/sm2-bidder.pem");

/// Three experts per member, then a cross-region (远程异地) extraction requested by the first
/// member with a committed secret and sealed: another member sees only seats per home, the
/// requester its whole committee; the homes answer (one declines, a backup is seated), the
/// requester publishes the result and another member re-derives the draw. A narrated
/// script: its steps run and print in order, hence its length.
fn demo_extraction(
    members: &[DemoMember],
    subjects: &[(usize, SubjectInfo)],
) -> anyhow::Result<()> {
    const SPECIALTY: &str = "A010101";
    for (i, m) in members.iter().enumerate() {
        let employer = caihong_chaincode::uscc::build(
            &format!("91{}", m.region),
            &format!("MB{:02}0001", i + 1),
        )
        .map_err(|e| anyhow::anyhow!("demo employer code: {e}"))?;
        for k in 0..3 {
            submit(
                m,
                Action::Expert(ExpertAction::Register(Box::new(ExpertInfo {
                    id: expert_id(&format!("{}19700101{:04}", m.region, i * 10 + k)),
                    name: DEMO_EXPERT_NAMES[(i * 3 + k) % DEMO_EXPERT_NAMES.len()].into(),
                    specialties: vec![SPECIALTY.into()],
                    title: "高级工程师".into(),
                    employer_uscc: employer.as_str().to_string(),
                }))),
            )?;
        }
    }
    println!("each member registered 3 evaluation experts (评标专家) in specialty {SPECIALTY}");
    let requester = &members[0];
    // The requester's secret: random, committed now, revealed after the award.
    let secret = KeyFile::generate().to_bytes().to_vec();
    let start = crate::node::now_secs() * 1000 + 2 * 86_400_000;
    let others: Vec<String> = members[1..].iter().map(|m| m.name.clone()).collect();
    let request = ExtractionRequest {
        project_code: "DEMO-2026-001".into(),
        window_start: start,
        window_end: start + 8 * 3_600_000,
        requirements: vec![Requirement {
            specialty: SPECIALTY.into(),
            // An odd committee of at least five (评标委员会, the chain's minimum).
            count: 5,
            backups: 1,
        }],
        tenderee_uscc: subjects[0].1.uscc.clone(),
        bidder_usccs: subjects
            .iter()
            .skip(1)
            .map(|(_, s)| s.uscc.clone())
            .collect(),
        remote: Some(RemoteRequest {
            members: others,
            min_outside: 2,
        }),
        commitment: Some(commitment(&secret)),
    };
    let answer = submit(
        requester,
        Action::Expert(ExpertAction::RequestExtraction(Box::new(request))),
    )?;
    let Some(TxOutput::Extraction(id)) = answer.output else {
        bail!("the receipt has no extraction id: {answer:?}");
    };
    demo_seal(requester, id, &secret)?;
    let checker = &members[members.len() - 1];
    let sealed = extraction_view(checker, id, true)?;
    println!(
        "{:<10} requested cross-region extraction (远程异地专家抽取) {id}, drew and sealed it",
        requester.name
    );
    println!(
        "{:<10} sees the {} view (no expert ids): seats per home {}",
        checker.name,
        sealed["view"].as_str().unwrap_or_default(),
        seat_line(&sealed, false)
    );
    let own = extraction_view(requester, id, false)?;
    println!(
        "{:<10} sees its {} view: {}",
        requester.name,
        own["view"].as_str().unwrap_or_default(),
        seat_line(&own, true)
    );
    // Each home answers for its own seats; the first outside home declines one, and the
    // chain seats the backup, whose home then confirms.
    let mut declined = false;
    for _round in 0..2 {
        for m in members {
            for seat in own_pending_seats(m, id)? {
                let accept = declined || m.name == requester.name;
                declined |= !accept;
                respond(m, id, &seat, accept)?;
            }
        }
    }
    let published = submit(
        requester,
        Action::Expert(ExpertAction::PublishResult {
            extraction: id,
            secret,
        }),
    )?;
    wait_for_block(checker, published.height)?;
    let ext = extraction_view(checker, id, false)?;
    println!(
        "{:<10} published the result (中标结果确定) and revealed its secret: status {}",
        requester.name, ext["status"]
    );
    println!(
        "{:<10} sees the {} view: {}",
        checker.name,
        ext["view"].as_str().unwrap_or_default(),
        seat_line(&ext, true)
    );
    println!(
        "{:<10} re-derives the draw from the chain: verified={}",
        checker.name, ext["rederivation"]["verified"]
    );
    Ok(())
}

/// Waits for the request's anchor, draws with the secret and seals each seat to its home.
fn demo_seal(requester: &DemoMember, id: u64, secret: &[u8]) -> anyhow::Result<()> {
    let client = requester.client();
    let path = route::path(route::EXTRACTION, &[&id.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ext: Value = loop {
        let ext: Value = client.get(&path).map_err(failure)?;
        if ext["anchor"].is_object() {
            break ext;
        }
        if Instant::now() > deadline {
            bail!("extraction {id} was not anchored within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ext["slots"] = Value::Array(Vec::new());
    let ext: Extraction = serde_json::from_value(ext)?;
    let (action, failure) = crate::sealing::draw_and_seal(&client, &ext, secret)?;
    if let Some(reason) = failure {
        bail!("the demo's draw cannot be completed: {reason}");
    }
    submit(requester, Action::Expert(action))?;
    Ok(())
}

/// An extraction as `m`'s node shows it (its own view, or the sealed one).
fn extraction_view(m: &DemoMember, id: u64, sealed: bool) -> anyhow::Result<Value> {
    let query = if sealed { "?view=sealed" } else { "" };
    m.client()
        .get(&format!(
            "{}{query}",
            route::path(route::EXTRACTION, &[&id.to_string()])
        ))
        .map_err(failure)
}

/// `home:answer` per seated slot, with the expert's short id where the view shows it.
fn seat_line(view: &Value, experts: bool) -> String {
    view["seats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["seated"] == true || s["answer"] == "declined")
        .map(|s| {
            let who = match s["expert"].as_str() {
                Some(e) if experts => format!(" {}", short(e)),
                _ => String::new(),
            };
            format!(
                "{}:{}{who}",
                s["home"].as_str().unwrap_or_default(),
                s["answer"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The seated, unanswered slots of `m`'s own experts, as its node decrypts them.
fn own_pending_seats(m: &DemoMember, id: u64) -> anyhow::Result<Vec<Value>> {
    let view = extraction_view(m, id, false)?;
    Ok(view["seats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["home"].as_str() == Some(m.name.as_str())
                && s["answer"] == "pending"
                && s["opening"].is_string()
        })
        .cloned()
        .collect())
}

fn respond(m: &DemoMember, id: u64, seat: &Value, accept: bool) -> anyhow::Result<()> {
    let hash = |f: &str| {
        caihong_chaincode::Hash::from_hex(seat[f].as_str().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("seat {f}: {e}"))
    };
    let n = |f: &str| seat[f].as_u64().unwrap_or(1).saturating_sub(1) as u32;
    submit(
        m,
        Action::Expert(ExpertAction::Respond {
            extraction: id,
            requirement: n("requirement"),
            slot: n("slot"),
            accept,
            commitment: seal::response_commitment(&hash("commitment")?, accept, &hash("opening")?),
        }),
    )?;
    println!(
        "{:<10} {} its expert {} for seat {}",
        m.name,
        if accept { "confirmed" } else { "declined" },
        short(seat["expert"].as_str().unwrap_or_default()),
        seat["slot"]
    );
    Ok(())
}

fn short(hex: &str) -> String {
    hex.chars().take(16).collect()
}
