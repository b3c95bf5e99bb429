//! `caihong import credit|subjects|experts`: CSV files centers already keep. Credit comes from
//! the nationwide 双公示 administrative penalty export (行政处罚信息, columns as in
//! docs/FORMATS.md); subjects and experts from the simple formats there too.
//!
//! The whole file is checked first and every bad row reported by line number and reason; with
//! a bad row nothing is submitted unless `--skip-invalid`. Rows are then submitted in order,
//! each signed with the next nonce, and waited for in batches. A decision already on chain (same
//! subject, kind and document number) is reported as such and not recorded again, so an import
//! can be rerun after an interruption.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use caihong_chaincode::credit::{
    CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, Severity,
};
use caihong_chaincode::experts::{ExpertAction, ExpertInfo, expert_id, parse_specialty};
use caihong_chaincode::subjects::{SubjectAction, SubjectInfo, SubjectRole, SubjectStatus};
use caihong_chaincode::types::parse_date;
use caihong_chaincode::{Action, Hash, PublicKey, TxOutput, Uscc};
use caihong_node::contract::{TxAnswer, TxState};
use clap::{Args, Subcommand};

use crate::client::{Client, TxArgs, created_id, describe_output, explain_rejection};
use crate::node::Failure;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Administrative penalties (行政处罚) from a 双公示 CSV export as credit records (信用记录).
    Credit(CreditImportArgs),
    /// Market subjects (市场主体): 统一社会信用代码,名称,主体角色,法定代表人[,状态].
    Subjects(ImportArgs),
    /// Evaluation experts (评标专家): 身份证号,姓名,专业代码,职称,工作单位统一社会信用代码.
    Experts(ImportArgs),
}

/// What every import takes.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub tx: TxArgs,
    /// The CSV file (UTF-8 with or without BOM, or GB18030), headers in Chinese
    /// (docs/FORMATS.md).
    #[arg(long)]
    pub file: PathBuf,
    /// Submit the valid rows even when some are invalid (they are still reported). Exits 0 when
    /// every row sent is on chain: the invalid rows were skipped on request.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Rows submitted before waiting for them to commit.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Only check the file; submit nothing.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct CreditImportArgs {
    #[command(flatten)]
    pub common: ImportArgs,
    /// Record kind for every row: violation (违法违规, the default) or blacklist (黑名单).
    #[arg(long, default_value = "violation")]
    pub kind: String,
    /// Severity for every row: general (一般, the default) or serious (严重).
    #[arg(long, default_value = "general")]
    pub severity: String,
}

/// The columns the importer reads, by their 双公示 header.
mod col {
    pub const NAME: &str = "行政相对人名称";
    pub const CATEGORY: &str = "行政相对人类别";
    pub const USCC: &str = "行政相对人代码_1(统一社会信用代码)";
    pub const DOCUMENT: &str = "行政处罚决定书文号";
    pub const VIOLATION: &str = "违法行为类型";
    pub const FACTS: &str = "违法事实";
    pub const BASIS: &str = "处罚依据";
    pub const PENALTY: &str = "处罚类别";
    pub const CONTENT: &str = "处罚内容";
    pub const FINE: &str = "罚款金额(万元)";
    pub const DECISION_DATE: &str = "处罚决定日期";
    pub const PENALTY_END: &str = "处罚有效期";
    pub const PUBLICATION_END: &str = "公示截止期";
    pub const AUTHORITY: &str = "处罚机关";
    pub const AUTHORITY_USCC: &str = "处罚机关统一社会信用代码";
    pub const REQUIRED: [&str; 10] = [
        NAME,
        USCC,
        DOCUMENT,
        VIOLATION,
        BASIS,
        PENALTY,
        CONTENT,
        DECISION_DATE,
        PUBLICATION_END,
        AUTHORITY,
    ];
}

/// A header as exports write it, reduced to the canonical form: no spaces, ASCII parentheses.
fn normalize_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            other => other,
        })
        .collect()
}

/// The file's text: UTF-8 (a BOM is dropped) or, failing that, GB18030.
pub fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}

/// 万元 with up to six decimals to fen, exactly: 1 万元 = 1,000,000 fen.
pub fn wan_yuan_to_fen(text: &str) -> Result<u64, String> {
    let t = text.trim().replace(',', "");
    if t.is_empty() {
        return Ok(0);
    }
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) {
        return Err(format!("fine {text:?} is not an amount in 万元 (e.g. 1.5)"));
    }
    if frac.len() > 6 {
        return Err(format!(
            "fine {text:?} has more than 6 decimals of 万元 (finer than a fen)"
        ));
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| format!("fine {text:?} is too large"))?;
    let frac: u64 = format!("{frac:0<6}").parse().expect("six digits");
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(|| format!("fine {text:?} is too large"))
}

/// 处罚类别 (several separated by `;`, `；` or `、`) plus bidding restrictions named in 处罚内容.
fn penalty_categories(categories: &str, content: &str) -> Result<Vec<PenaltyCategory>, String> {
    let mut out = Vec::new();
    for part in categories.split([';', '；', '、']) {
        if part.trim().is_empty() {
            continue;
        }
        let c = PenaltyCategory::parse(part)?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    for (phrase, c) in [
        ("取消投标资格", PenaltyCategory::BiddingDisqualification),
        ("暂停投标资格", PenaltyCategory::BiddingSuspension),
    ] {
        if content.contains(phrase) && !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err("处罚类别 is empty".into());
    }
    Ok(out)
}

/// One row of the file as read.
#[derive(Debug)]
pub struct Row<T> {
    pub line: u64,
    pub input: T,
}

/// One rejected row.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

/// Reads a CSV whose header row names `required` columns (matched by [`normalize_header`]) and
/// turns every non-empty row into `T` with `parse`, which gets a field reader by header name.
/// The file's own problems (no header, missing columns, broken quoting) are errors; a row's
/// are [`BadRow`]s with its line number.
fn read_table<T>(
    text: &str,
    required: &[&str],
    format: &str,
    parse: impl Fn(&dyn Fn(&str) -> String) -> Result<T, String>,
) -> anyhow::Result<(Vec<Row<T>>, Vec<BadRow>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .context("the file has no header row")?
        .iter()
        .map(normalize_header)
        .collect();
    let missing: Vec<&str> = required
        .iter()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .copied()
        .collect();
    if !missing.is_empty() {
        bail!(
            "the header row lacks {}; is this a {format}?",
            missing.join(", ")
        );
    }
    let index = |name: &str| headers.iter().position(|h| h == name);
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for record in reader.records() {
        let record = record.context("the CSV is malformed")?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let field = |name: &str| {
            index(name)
                .and_then(|i| record.get(i))
                .unwrap_or("")
                .to_string()
        };
        match parse(&field) {
            Ok(input) => rows.push(Row { line, input }),
            Err(reason) => bad.push(BadRow { line, reason }),
        }
    }
    Ok((rows, bad))
}

/// Reads a 双公示 penalty export into credit record inputs.
pub fn read_rows(
    text: &str,
    kind: CreditKind,
    severity: Severity,
) -> anyhow::Result<(Vec<Row<CreditRecordInput>>, Vec<BadRow>)> {
    read_table(
        text,
        &col::REQUIRED,
        "双公示 行政处罚 export",
        |field| row_input(field, kind, severity),
    )
}

/// Several values in one cell, separated as Chinese spreadsheets do.
fn split_list(cell: &str) -> Vec<String> {
    cell.split([';', '；', '、', ',', '，'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// `import subjects`: 统一社会信用代码,名称,主体角色,法定代表人[,状态].
pub fn read_subjects(text: &str) -> anyhow::Result<(Vec<Row<SubjectInfo>>, Vec<BadRow>)> {
    read_table(
        text,
        &["统一社会信用代码", "名称", "主体角色", "法定代表人"],
        "subject list",
        |field| {
            let uscc = field("统一社会信用代码");
            Uscc::parse(&uscc).map_err(|e| format!("统一社会信用代码 {uscc}: {e}"))?;
            let roles = split_list(&field("主体角色"))
                .iter()
                .map(|r| SubjectRole::parse(r))
                .collect::<Result<BTreeSet<_>, _>>()?;
            if roles.is_empty() {
                return Err("主体角色 is empty".into());
            }
            let status = match field("状态").as_str() {
                "" | "存续" | "active" => SubjectStatus::Active,
                "暂停" | "suspended" => SubjectStatus::Suspended,
                "注销" | "deregistered" => SubjectStatus::Deregistered,
                other => return Err(format!("状态 {other:?}: use 存续, 暂停 or 注销")),
            };
            for name in ["名称", "法定代表人"] {
                if field(name).is_empty() {
                    return Err(format!("{name} is empty"));
                }
            }
            Ok(SubjectInfo {
                uscc,
                name: field("名称"),
                roles,
                legal_representative: field("法定代表人"),
                qualifications: Vec::new(),
                status,
            })
        },
    )
}

/// `import experts`: 身份证号,姓名,专业代码,职称,工作单位统一社会信用代码. The ID number is hashed
/// here (`expert_id`); it never leaves the machine.
pub fn read_experts(text: &str) -> anyhow::Result<(Vec<Row<ExpertInfo>>, Vec<BadRow>)> {
    read_table(
        text,
        &[
            "身份证号",
            "姓名",
            "专业代码",
            "职称",
            "工作单位统一社会信用代码",
        ],
        "expert list",
        |field| {
            let national_id = field("身份证号");
            if national_id.chars().count() != 18 {
                return Err(format!(
                    "身份证号 has {} characters, not 18",
                    national_id.chars().count()
                ));
            }
            let employer = field("工作单位统一社会信用代码");
            Uscc::parse(&employer)
                .map_err(|e| format!("工作单位统一社会信用代码 {employer}: {e}"))?;
            let specialties = split_list(&field("专业代码"));
            for code in &specialties {
                parse_specialty(code).map_err(|e| e.message)?;
            }
            if specialties.is_empty() || field("姓名").is_empty() {
                return Err("姓名 and 专业代码 are required".into());
            }
            Ok(ExpertInfo {
                id: expert_id(&national_id),
                name: field("姓名"),
                specialties,
                title: field("职称"),
                employer_uscc: employer,
            })
        },
    )
}

fn row_input(
    field: &dyn Fn(&str) -> String,
    kind: CreditKind,
    severity: Severity,
) -> Result<CreditRecordInput, String> {
    let category = field(col::CATEGORY);
    if category == "自然人" {
        return Err("natural persons (自然人) are not shared between centers".into());
    }
    let uscc = field(col::USCC);
    if uscc.is_empty() {
        return Err("统一社会信用代码 is empty".into());
    }
    Uscc::parse(&uscc).map_err(|e| format!("统一社会信用代码 {uscc}: {e}"))?;
    let authority_uscc = field(col::AUTHORITY_USCC);
    if !authority_uscc.is_empty() {
        Uscc::parse(&authority_uscc)
            .map_err(|e| format!("处罚机关统一社会信用代码 {authority_uscc}: {e}"))?;
    }
    let date = |name: &str| {
        let text = field(name);
        parse_date(&text).map_err(|e| format!("{name}: {e}"))
    };
    let decision_date = date(col::DECISION_DATE)?;
    let publication_end_date = date(col::PUBLICATION_END)?;
    let penalty_end_date = match field(col::PENALTY_END).as_str() {
        "" => None,
        _ => Some(date(col::PENALTY_END)?),
    };
    if publication_end_date < decision_date {
        return Err(format!(
            "公示截止期 {publication_end_date} is before 处罚决定日期 {decision_date}"
        ));
    }
    for required in [col::NAME, col::DOCUMENT, col::AUTHORITY] {
        if field(required).is_empty() {
            return Err(format!("{required} is empty"));
        }
    }
    let content = field(col::CONTENT);
    let facts = field(col::FACTS);
    Ok(CreditRecordInput {
        kind,
        subject_uscc: uscc,
        subject_name: field(col::NAME),
        document_no: field(col::DOCUMENT),
        violation_type: field(col::VIOLATION),
        legal_basis: field(col::BASIS),
        penalty_categories: penalty_categories(&field(col::PENALTY), &content)?,
        content: if facts.is_empty() {
            content
        } else {
            format!("{content}（违法事实：{facts}）")
        },
        fine_fen: wan_yuan_to_fen(&field(col::FINE)).map_err(|e| format!("罚款金额: {e}"))?,
        decision_date,
        penalty_end_date,
        publication_end_date,
        authority_name: field(col::AUTHORITY),
        authority_uscc,
        severity,
        rating: None,
    })
}

pub fn run(cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ImportCommand::Credit(args) => credit(args),
        ImportCommand::Subjects(args) => {
            let (rows, bad) = read_subjects(&read_text(&args.file)?)
                .with_context(|| args.file.display().to_string())?;
            let rows = rows
                .into_iter()
                .map(|r| (r.line, Action::Subject(SubjectAction::Register(r.input))))
                .collect();
            submit_file(&args, rows, bad, "subjects (市场主体)")
        }
        ImportCommand::Experts(args) => {
            let (rows, bad) = read_experts(&read_text(&args.file)?)
                .with_context(|| args.file.display().to_string())?;
            let rows = rows
                .into_iter()
                .map(|r| {
                    (
                        r.line,
                        Action::Expert(ExpertAction::Register(Box::new(r.input))),
                    )
                })
                .collect();
            submit_file(&args, rows, bad, "experts (评标专家)")
        }
    }
}

fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(decode_text(&bytes))
}

fn credit(args: CreditImportArgs) -> anyhow::Result<ExitCode> {
    let kind = match CreditKind::parse(&args.kind).map_err(|e| anyhow::anyhow!("--kind: {e}"))? {
        k @ (CreditKind::Violation | CreditKind::Blacklist) => k,
        other => bail!(
            "--kind {}: a penalty file holds violations or a blacklist",
            other.as_str()
        ),
    };
    let severity =
        Severity::parse(&args.severity).map_err(|e| anyhow::anyhow!("--severity: {e}"))?;
    let file = &args.common.file;
    let (rows, bad) =
        read_rows(&read_text(file)?, kind, severity).with_context(|| file.display().to_string())?;
    let rows = rows
        .into_iter()
        .map(|r| {
            (
                r.line,
                Action::Credit(CreditAction::Record(Box::new(r.input))),
            )
        })
        .collect();
    submit_file(&args.common, rows, bad, "credit records (信用记录)")
}

/// Reports bad rows, then (unless stopped by them or `--check`) submits the rest and reports
/// what the chain did with each.
fn submit_file(
    args: &ImportArgs,
    rows: Vec<(u64, Action)>,
    bad: Vec<BadRow>,
    what: &str,
) -> anyhow::Result<ExitCode> {
    let name = args.file.display();
    for b in &bad {
        eprintln!("{name}:{}: {}", b.line, b.reason);
    }
    // With --json, stdout holds only the JSON report; the running commentary goes to stderr.
    let json = args.tx.node.json;
    let quiet = args.tx.quiet;
    let say = |line: String| {
        if quiet {
            // --quiet: stdout has the new ids only; the counts are not wanted.
        } else if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!(
        "{name}: {} valid rows, {} invalid",
        rows.len(),
        bad.len()
    ));
    if !bad.is_empty() && !args.skip_invalid {
        eprintln!("nothing submitted: fix the rows above or rerun with --skip-invalid");
        return Ok(ExitCode::from(1));
    }
    if args.check || rows.is_empty() {
        return Ok(if bad.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let url = args.tx.node.url()?;
    let key = args.tx.signing_key()?;
    crate::session::catch_up(&url, Duration::from_secs(args.tx.node.timeout));
    let report = match submit_rows(&url, &key, &rows, args.batch.max(1)) {
        Ok(r) => r,
        Err(Failure::Rejected { status, body }) => {
            eprintln!("rejected by {url}: {}", explain_rejection(status, &body));
            return Ok(ExitCode::from(1));
        }
        Err(Failure::Local(e)) => return Err(e),
    };
    if json {
        let report_json = serde_json::json!({
            "file": name.to_string(),
            "valid_rows": rows.len(),
            "invalid_rows": bad.iter().map(|b| serde_json::json!({"line": b.line, "reason": b.reason})).collect::<Vec<_>>(),
            "recorded": report.recorded.iter().map(|(line, output)| serde_json::json!({"line": line, "output": output})).collect::<Vec<_>>(),
            "already_on_chain": report.already,
            "rejected": report.failed.iter().map(|(line, reason)| serde_json::json!({"line": line, "reason": reason})).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&report_json).expect("json")
        );
    } else {
        for (line, output) in &report.recorded {
            if quiet {
                if let Some(id) = created_id(output) {
                    println!("{id}");
                }
            } else if let Some(words) = describe_output(output, false) {
                println!("{name}:{line}: {words}");
            }
        }
    }
    for (line, reason) in &report.failed {
        eprintln!("{name}:{line}: rejected by the chain: {reason}");
    }
    say(format!(
        "recorded {} {what}; {} already on chain; {} rejected by the chain; {} invalid rows skipped",
        report.recorded.len(),
        report.already,
        report.failed.len(),
        bad.len()
    ));
    // Invalid rows the administrator chose to skip (--skip-invalid) are not a failure: every
    // row that was sent is on chain.
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Default)]
struct ImportReport {
    /// Each recorded row's line and what it became.
    recorded: Vec<(u64, TxOutput)>,
    already: u64,
    failed: Vec<(u64, String)>,
    /// The highest block a row went into.
    last_height: u64,
}

/// A progress bar of rows on stderr, drawn only when stderr is a terminal.
fn progress_bar(rows: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(rows as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} rows ({eta} left)")
    {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar
}

fn submit_rows(
    url: &str,
    key: &ed25519_dalek::SigningKey,
    rows: &[(u64, Action)],
    batch: usize,
) -> Result<ImportReport, Failure> {
    let client = Client::connect(url)?;
    let signer = PublicKey::from(&key.verifying_key());
    let mut report = ImportReport::default();
    let mut nonce = client.next_nonce(&signer)?;
    let bar = progress_bar(rows.len());
    for chunk in rows.chunks(batch) {
        // Each row with the next nonce; a row refused at admission leaves the nonce free.
        let mut pending = Vec::new();
        for (line, action) in chunk {
            let tx = client.sign(key, nonce, action.clone());
            match client.post(&tx, false) {
                Ok(_) => {
                    nonce += 1;
                    pending.push((*line, tx.hash()));
                }
                Err(Failure::Rejected { status, body }) => {
                    if body["code"] == "ALREADY_EXISTS" {
                        report.already += 1;
                    } else if body["code"] == "BAD_NONCE" {
                        return Err(Failure::Rejected { status, body });
                    } else {
                        report
                            .failed
                            .push((*line, explain_rejection(status, &body)));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // Wait for the batch, then read every row's receipt.
        for (line, hash) in pending {
            let receipt = wait_receipt(&client, &hash)?;
            report.last_height = report.last_height.max(receipt.height.unwrap_or(0));
            let code = receipt.error.as_ref().map(|e| e.code.as_str());
            match receipt.status {
                TxState::Committed => report
                    .recorded
                    .push((line, receipt.output.unwrap_or(TxOutput::None))),
                _ if code == Some("ALREADY_EXISTS") => report.already += 1,
                _ => report
                    .failed
                    .push((line, crate::client::failure_line(&receipt))),
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if report.last_height > 0 {
        crate::session::remember(&client, report.last_height);
    }
    Ok(report)
}

/// Polls a transaction until it has a receipt (60 s at most).
fn wait_receipt(client: &Client, hash: &Hash) -> Result<TxAnswer, Failure> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match client.tx(hash) {
            Ok(answer) if answer.is_final() => return Ok(answer),
            Ok(_) | Err(Failure::Rejected { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
        if std::time::Instant::now() > deadline {
            return Err(Failure::Local(anyhow::anyhow!(
                "transaction {hash} was not committed within 60 s; rerun the import to continue"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fuzz engine of tests/fuzz.rs, for `fuzz_csv_import` below.
#[cfg(test)]
#[path = "../../tests/fuzzing.rs"]
mod fuzzing;

#[cfg(test)]
mod tests {
    use super::*;

    use super::fuzzing;

    /// Any bytes, in any encoding, give rows and bad rows or an error, never a panic.
    #[test]
    fn fuzz_csv_import() {
        fuzzing::fuzz("csv", &[], |bytes| {
            let text = decode_text(bytes);
            let _ = read_rows(&text, CreditKind::Violation, Severity::General);
            let _ = read_subjects(&text);
            let _ = read_experts(&text);
        });
    }

    /// The header row of the national export.
    const NATIONAL_HEADER: &str = "行政相对人名称,行政相对人类别,行政相对人代码_1(统一社会信用代码),行政相对人代码_2(工商注册号),行政相对人代码_3(组织机构代码),行政相对人代码_4(税务登记号),行政相对人代码_5(事业单位证书号),行政相对人代码_6(社会组织登记证号),法定代表人,法定代表人证件类型,法定代表人证件号码,证件类型,证件号码,行政处罚决定书文号,违法行为类型,违法事实,处罚依据,处罚类别,处罚内容,罚款金额（万元）,没收违法所得、没收非法财物的金额（万元）,暂扣或吊销证照名称及编号,处罚决定日期,处罚有效期,公示截止期,处罚机关,处罚机关统一社会信用代码,数据来源单位,数据来源单位统一社会信用代码,备注";

    #[test]
    fn wan_yuan_converts_exactly_to_fen() {
        assert_eq!(wan_yuan_to_fen("1"), Ok(1_000_000));
        assert_eq!(wan_yuan_to_fen("0.000001"), Ok(1));
        assert_eq!(wan_yuan_to_fen("2.5"), Ok(2_500_000));
        assert_eq!(wan_yuan_to_fen(" 12,000.35 "), Ok(12_000_350_000));
        assert_eq!(wan_yuan_to_fen(""), Ok(0));
        assert!(
            wan_yuan_to_fen("0.0000001")
                .unwrap_err()
                .contains("6 decimals")
        );
        assert!(wan_yuan_to_fen("1e3").is_err());
        assert!(wan_yuan_to_fen("-1").is_err());
        assert!(wan_yuan_to_fen("99999999999999999999").is_err());
    }

    #[test]
    fn headers_match_with_full_width_parentheses_and_spaces() {
        assert_eq!(normalize_header("\u{feff}罚款金额 （万元）"), col::FINE);
        assert_eq!(
            normalize_header("行政相对人代码_1 (统一社会信用代码)"),
            col::USCC
        );
    }

    #[test]
    fn gb18030_files_decode() {
        let (bytes, _, _) = encoding_rs::GB18030.encode("处罚机关,罚款");
        assert_eq!(decode_text(&bytes), "处罚机关,罚款");
        assert_eq!(decode_text("\u{feff}abc".as_bytes()), "abc");
    }

    fn row(uscc: &str, document: &str, fine: &str, decided: &str, published: &str) -> String {
        format!(
            "某某建设有限公司,法人及非法人组织,{uscc},,,,,,张三,身份证,110101199001011234,,,{document},串通投标,与他人串通投标,《招标投标法》第五十三条,罚款;警告,罚款并暂停投标资格六个月,{fine},,,{decided},,{published},包头市发展和改革委员会,,,,"
        )
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line_and_reason() {
        let good = caihong_chaincode::uscc::build("91150200", "MA0N1234")
            .unwrap()
            .as_str()
            .to_string();
        let text = [
            NATIONAL_HEADER.to_string(),
            row(
                &good,
                "包发改罚〔2026〕1号",
                "2.5",
                "2026-03-01",
                "2027-02-28",
            ),
            row(
                "91150200MA0N1234XX",
                "包发改罚〔2026〕2号",
                "1",
                "2026-03-01",
                "2027-02-28",
            ),
            row(
                &good,
                "包发改罚〔2026〕3号",
                "1.2345678",
                "2026-03-01",
                "2027-02-28",
            ),
            row(
                &good,
                "包发改罚〔2026〕4号",
                "1",
                "2026年13月01日",
                "2027-02-28",
            ),
            row(
                &good,
                "包发改罚〔2026〕5号",
                "1",
                "2026-03-01",
                "2025-02-28",
            ),
        ]
        .join("\n");
        let (rows, bad) = read_rows(&text, CreditKind::Violation, Severity::General).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0].input;
        assert_eq!(rows[0].line, 2);
        assert_eq!(r.fine_fen, 2_500_000);
        assert_eq!(
            r.penalty_categories,
            [
                PenaltyCategory::Fine,
                PenaltyCategory::Warning,
                PenaltyCategory::BiddingSuspension
            ]
        );
        assert!(r.content.contains("违法事实：与他人串通投标"));
        let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [3, 4, 5, 6], "{bad:?}");
        assert!(
            bad[0].reason.contains("统一社会信用代码"),
            "{}",
            bad[0].reason
        );
        assert!(bad[1].reason.contains("罚款金额"), "{}", bad[1].reason);
        assert!(bad[2].reason.contains("处罚决定日期"), "{}", bad[2].reason);
        assert!(bad[3].reason.contains("before"), "{}", bad[3].reason);
    }

    #[test]
    fn subject_and_expert_lists_check_every_row() {
        let code = |n: &str| {
            caihong_chaincode::uscc::build("91150200", n)
                .unwrap()
                .as_str()
                .to_string()
        };
        let subjects = format!(
            "统一社会信用代码,名称,主体角色,法定代表人,状态\n{},包头甲公司,投标人、供应商,王一,存续\n{},包头乙公司,bidder,王二,\n{},包头丙公司,裁判,王三,\n",
            code("MA000001"),
            "91150200MA0000019X",
            code("MA000003"),
        );
        let (rows, bad) = read_subjects(&subjects).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].input.roles.len(), 2);
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), [3, 4]);
        assert!(
            bad[1].reason.contains("unknown subject role"),
            "{}",
            bad[1].reason
        );

        let experts = format!(
            "身份证号,姓名,专业代码,职称,工作单位统一社会信用代码\n150203197001011234,赵工,A010101;A010102,高级工程师,{}\n15020319700101,钱工,A010101,工程师,{}\n",
            code("MA000001"),
            code("MA000001"),
        );
        let (rows, bad) = read_experts(&experts).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].input.id, expert_id("150203197001011234"));
        assert_eq!(rows[0].input.specialties.len(), 2);
        assert!(bad[0].reason.contains("not 18"), "{}", bad[0].reason);
    }

    #[test]
    fn a_file_without_the_national_columns_is_refused() {
        let err = read_rows("名称,代码\nA,B\n", CreditKind::Violation, Severity::General)
            .unwrap_err()
            .to_string();
        assert!(err.contains("行政处罚决定书文号"), "{err}");
    }
}
