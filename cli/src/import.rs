//! `caihong import credit|subjects|experts`: CSV files centers already keep. Credit comes from
//! the nationwide 双公示 administrative penalty export (行政处罚信息, columns as in
//! docs/FORMATS.md); subjects and experts from the simple formats there too.
//!
//! The whole file is checked first and every problem of every row reported with the physical
//! line the row starts on; with an invalid row nothing is submitted unless `--skip-invalid`. A
//! value the record can do without (the deciding authority's code) is dropped with a warning
//! instead. Each remaining row is then looked up on chain (a credit decision by subject, kind
//! and document number, a subject by USCC, an expert by id) and only the rows that are not
//! there are submitted, each signed with the next nonce and waited for in batches: a rerun
//! sends nothing twice, and the summary says which row became which record.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use caihong_chaincode::credit::{
    CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, RecordView, Severity,
};
use caihong_chaincode::experts::{Expert, ExpertAction, ExpertInfo, expert_id, parse_specialty};
use caihong_chaincode::subjects::{
    Subject, SubjectAction, SubjectInfo, SubjectRole, SubjectStatus,
};
use caihong_chaincode::types::{Date, date_of, parse_date};
use caihong_chaincode::{Action, Hash, PublicKey, TxOutput, Uscc};
use caihong_node::contract::{TxAnswer, TxState, route};
use clap::{Args, Subcommand};
use serde::Serialize;

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
/// Every unknown category is a problem of the row.
fn penalty_categories(
    categories: &str,
    content: &str,
    found: &mut Findings,
) -> Vec<PenaltyCategory> {
    let mut out = Vec::new();
    let mut unknown = false;
    for part in categories.split([';', '；', '、']) {
        if part.trim().is_empty() {
            continue;
        }
        match PenaltyCategory::parse(part) {
            Ok(c) if !out.contains(&c) => out.push(c),
            Ok(_) => {}
            Err(e) => {
                unknown = true;
                found.problem(format!("{}: {e}", col::PENALTY));
            }
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
    if out.is_empty() && !unknown {
        found.problem(format!("{} is empty", col::PENALTY));
    }
    out
}

/// One row of the file as read, with the values dropped from it (each a warning).
#[derive(Debug)]
pub struct Row<T> {
    pub line: u64,
    pub input: T,
    pub warnings: Vec<String>,
}

/// One refused row: the physical line it starts on and every problem found in it.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct BadRow {
    pub line: u64,
    pub problems: Vec<String>,
}

/// What checking one row found: a problem refuses the row; a warning keeps it without the value
/// warned about.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Findings {
    fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }

    /// The value, or `None` with the error kept as one of the row's problems.
    fn check<T>(&mut self, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.problem(e)).ok()
    }

    /// A required column's value, or `None` with "COLUMN is empty" kept as a problem.
    fn required(&mut self, column: &str, value: String) -> Option<String> {
        if value.is_empty() {
            self.problem(format!("{column} is empty"));
            return None;
        }
        Some(value)
    }

    /// A required USCC column, checked (the problem names the check that failed).
    fn uscc(&mut self, column: &str, value: &str) -> Option<Uscc> {
        let value = self.required(column, value.to_string())?;
        self.check(Uscc::parse(&value).map_err(|e| format!("{column} {value}: {e}")))
    }
}

/// Where each physical line of a text starts, to name the line a row starts on: the CSV
/// reader's own line count skips the line breaks inside quoted fields.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn of(text: &str) -> LineStarts {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            // `\n`, `\r\n` and a lone `\r` each end a line.
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        LineStarts(starts)
    }

    /// The line (from 1) of the record the reader placed at `byte`: that is just past the
    /// previous record's terminator, so line breaks (a `\r\n`'s `\n`, blank lines) come first.
    fn line_of_record(&self, text: &str, byte: usize) -> u64 {
        let rest = text.as_bytes().get(byte..).unwrap_or_default();
        let breaks = rest
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.0.partition_point(|&start| start <= byte + breaks) as u64
    }
}

/// Reads a CSV whose header row names `required` columns (matched by [`normalize_header`]) and
/// turns every non-empty row into `T` with `parse`, which gets a field reader by header name
/// and notes every problem and warning of the row. The file's own problems (no header, missing
/// columns, broken quoting) are errors; a row with problems is a [`BadRow`].
fn read_table<T>(
    text: &str,
    required: &[&str],
    format: &str,
    parse: impl Fn(&dyn Fn(&str) -> String, &mut Findings) -> Option<T>,
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
    let lines = LineStarts::of(text);
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for record in reader.records() {
        let record = record.context("the CSV is malformed")?;
        let line = record
            .position()
            .map_or(0, |p| lines.line_of_record(text, p.byte() as usize));
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let field = |name: &str| {
            index(name)
                .and_then(|i| record.get(i))
                .unwrap_or("")
                .to_string()
        };
        let mut found = Findings::default();
        match parse(&field, &mut found) {
            Some(input) if found.problems.is_empty() => rows.push(Row {
                line,
                input,
                warnings: found.warnings,
            }),
            _ => bad.push(BadRow {
                line,
                problems: found.problems,
            }),
        }
    }
    Ok((rows, bad))
}

/// Refuses every row whose `key` an earlier row of the file has: the chain keeps the first and
/// would refuse the repeat, so it is reported here, with the line it repeats.
fn refuse_repeats<T, K: Ord>(
    (rows, mut bad): (Vec<Row<T>>, Vec<BadRow>),
    key: impl Fn(&T) -> K,
    same: &str,
) -> (Vec<Row<T>>, Vec<BadRow>) {
    let mut first = BTreeMap::new();
    let mut kept = Vec::new();
    for row in rows {
        match first.entry(key(&row.input)) {
            Entry::Occupied(earlier) => bad.push(BadRow {
                line: row.line,
                problems: vec![format!("the same {same} as line {}", earlier.get())],
            }),
            Entry::Vacant(slot) => {
                slot.insert(row.line);
                kept.push(row);
            }
        }
    }
    bad.sort_by_key(|b| b.line);
    (kept, bad)
}

/// Today in Beijing, the chain's calendar: a decision dated later would be refused.
fn today() -> Date {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    date_of(now)
}

/// Reads a 双公示 penalty export into credit record inputs.
pub fn read_rows(
    text: &str,
    kind: CreditKind,
    severity: Severity,
) -> anyhow::Result<(Vec<Row<CreditRecordInput>>, Vec<BadRow>)> {
    read_rows_on(text, kind, severity, today())
}

/// [`read_rows`] as on the day `today` (Beijing time).
pub fn read_rows_on(
    text: &str,
    kind: CreditKind,
    severity: Severity,
    today: Date,
) -> anyhow::Result<(Vec<Row<CreditRecordInput>>, Vec<BadRow>)> {
    let table = read_table(
        text,
        &col::REQUIRED,
        "双公示 行政处罚 export",
        |field, found| row_input(field, kind, severity, today, found),
    )?;
    Ok(refuse_repeats(
        table,
        |r| (r.subject_uscc.clone(), r.document_no.clone()),
        "统一社会信用代码 and 行政处罚决定书文号 (one decision)",
    ))
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
    let table = read_table(
        text,
        &["统一社会信用代码", "名称", "主体角色", "法定代表人"],
        "subject list",
        |field, found| {
            let uscc = found.uscc("统一社会信用代码", &field("统一社会信用代码"));
            let name = found.required("名称", field("名称"));
            let role_names = split_list(&field("主体角色"));
            if role_names.is_empty() {
                found.problem("主体角色 is empty");
            }
            let roles = role_names
                .iter()
                .filter_map(|r| found.check(SubjectRole::parse(r)))
                .collect::<BTreeSet<_>>();
            let legal_representative = found.required("法定代表人", field("法定代表人"));
            let status = match field("状态").as_str() {
                "" | "存续" | "active" => Some(SubjectStatus::Active),
                "暂停" | "suspended" => Some(SubjectStatus::Suspended),
                "注销" | "deregistered" => Some(SubjectStatus::Deregistered),
                other => {
                    found.problem(format!("状态 {other:?}: use 存续, 暂停 or 注销"));
                    None
                }
            };
            Some(SubjectInfo {
                uscc: uscc?.as_str().to_string(),
                name: name?,
                roles,
                legal_representative: legal_representative?,
                qualifications: Vec::new(),
                status: status?,
            })
        },
    )?;
    Ok(refuse_repeats(
        table,
        |s| s.uscc.clone(),
        "统一社会信用代码",
    ))
}

/// `import experts`: 身份证号,姓名,专业代码,职称,工作单位统一社会信用代码. The ID number is hashed
/// here (`expert_id`); it never leaves the machine.
pub fn read_experts(text: &str) -> anyhow::Result<(Vec<Row<ExpertInfo>>, Vec<BadRow>)> {
    let table = read_table(
        text,
        &[
            "身份证号",
            "姓名",
            "专业代码",
            "职称",
            "工作单位统一社会信用代码",
        ],
        "expert list",
        |field, found| {
            let national_id = field("身份证号");
            let id_length = national_id.chars().count();
            if id_length != 18 {
                // The number itself is not repeated: it is personal data.
                found.problem(format!("身份证号 has {id_length} characters, not 18"));
            }
            let name = found.required("姓名", field("姓名"));
            let specialties = split_list(&field("专业代码"));
            for code in &specialties {
                found.check(parse_specialty(code).map(|_| ()).map_err(|e| e.message));
            }
            if specialties.is_empty() {
                found.problem("专业代码 is empty");
            }
            let employer = found.uscc(
                "工作单位统一社会信用代码",
                &field("工作单位统一社会信用代码"),
            );
            Some(ExpertInfo {
                id: expert_id(&national_id),
                name: name?,
                specialties,
                title: field("职称"),
                employer_uscc: employer?.as_str().to_string(),
            })
        },
    )?;
    Ok(refuse_repeats(table, |e| e.id, "身份证号"))
}

/// One 双公示 row as a credit record input. Refused (each a problem): a natural person; a
/// missing or invalid subject code; no name, document number or authority; an unreadable date,
/// fine or penalty category; dates the chain refuses. Dropped with a warning: an invalid
/// authority code.
fn row_input(
    field: &dyn Fn(&str) -> String,
    kind: CreditKind,
    severity: Severity,
    today: Date,
    found: &mut Findings,
) -> Option<CreditRecordInput> {
    if field(col::CATEGORY) == "自然人" {
        found.problem("natural persons (自然人) are not shared between centers");
    }
    let uscc = found.uscc("统一社会信用代码", &field(col::USCC));
    let subject_name = found.required(col::NAME, field(col::NAME));
    let document_no = found.required(col::DOCUMENT, field(col::DOCUMENT));
    let authority_name = found.required(col::AUTHORITY, field(col::AUTHORITY));
    let date = |name: &str| parse_date(&field(name)).map_err(|e| format!("{name}: {e}"));
    let decision_date = found.check(date(col::DECISION_DATE));
    let publication_end_date = found.check(date(col::PUBLICATION_END));
    let penalty_end_date = match field(col::PENALTY_END).as_str() {
        "" => Some(None),
        _ => found.check(date(col::PENALTY_END)).map(Some),
    };
    if let Some(decided) = decision_date {
        check_dates(
            decided,
            publication_end_date,
            penalty_end_date.flatten(),
            severity,
            today,
            found,
        );
    }
    let fine_fen =
        found.check(wan_yuan_to_fen(&field(col::FINE)).map_err(|e| format!("罚款金额: {e}")));
    let content = field(col::CONTENT);
    let penalty_categories = penalty_categories(&field(col::PENALTY), &content, found);
    let authority_uscc = authority_code(
        &field(col::AUTHORITY_USCC),
        authority_name.as_deref().unwrap_or_default(),
        found,
    );
    let facts = field(col::FACTS);
    Some(CreditRecordInput {
        kind,
        subject_uscc: uscc?.as_str().to_string(),
        subject_name: subject_name?,
        document_no: document_no?,
        violation_type: field(col::VIOLATION),
        legal_basis: field(col::BASIS),
        penalty_categories,
        content: if facts.is_empty() {
            content
        } else {
            format!("{content}（违法事实：{facts}）")
        },
        fine_fen: fine_fen?,
        decision_date: decision_date?,
        penalty_end_date: penalty_end_date?,
        publication_end_date: publication_end_date?,
        authority_name: authority_name?,
        authority_uscc,
        severity,
        rating: None,
    })
}

/// The chain's date rules for a violation or blacklist (chaincode/src/credit.rs,
/// `check_record_dates`), by column, so a row the chain would refuse is never sent.
fn check_dates(
    decided: Date,
    published_until: Option<Date>,
    penalty_end: Option<Date>,
    severity: Severity,
    today: Date,
    found: &mut Findings,
) {
    if decided > today {
        found.problem(format!(
            "{} {decided} is in the future (today is {today}, Beijing time)",
            col::DECISION_DATE
        ));
    }
    if let Some(end) = published_until {
        let days = (end - decided).num_days();
        let max_days = severity.max_publication_days();
        if end < decided {
            found.problem(format!(
                "{} {end} is before {} {decided}",
                col::PUBLICATION_END,
                col::DECISION_DATE
            ));
        } else if days > max_days {
            let (severity, longer) = match severity {
                Severity::General => ("general (一般)", "; --severity serious allows three years"),
                Severity::Serious => ("serious (严重)", ""),
            };
            found.problem(format!(
                "{} {end} is {days} days after {}: {severity} records are published at most \
                 {max_days} days{longer}",
                col::PUBLICATION_END,
                col::DECISION_DATE
            ));
        }
    }
    if let Some(end) = penalty_end
        && end < decided
    {
        found.problem(format!(
            "{} {end} is before {} {decided}",
            col::PENALTY_END,
            col::DECISION_DATE
        ));
    }
}

/// 处罚机关统一社会信用代码, kept when it passes its check and otherwise dropped with a warning:
/// the record stands without it (the authority is still named), while the chain would refuse
/// the whole record for it.
fn authority_code(code: &str, authority: &str, found: &mut Findings) -> String {
    if code.is_empty() {
        return String::new();
    }
    match Uscc::parse(code) {
        Ok(uscc) => uscc.as_str().to_string(),
        Err(e) => {
            found.warn(format!(
                "{} {code} dropped ({e}); the record names {} {authority} without a code",
                col::AUTHORITY_USCC,
                col::AUTHORITY
            ));
            String::new()
        }
    }
}

pub fn run(cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ImportCommand::Credit(args) => credit(args),
        ImportCommand::Subjects(args) => {
            let (rows, bad) = read_subjects(&read_text(&args.file)?)
                .with_context(|| args.file.display().to_string())?;
            let rows = ready(rows, |s| Action::Subject(SubjectAction::Register(s)));
            submit_file(&args, rows, bad, "subjects (市场主体)")
        }
        ImportCommand::Experts(args) => {
            let (rows, bad) = read_experts(&read_text(&args.file)?)
                .with_context(|| args.file.display().to_string())?;
            let rows = ready(rows, |e| {
                Action::Expert(ExpertAction::Register(Box::new(e)))
            });
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
    let rows = ready(rows, |r| Action::Credit(CreditAction::Record(Box::new(r))));
    submit_file(&args.common, rows, bad, "credit records (信用记录)")
}

/// A valid row as the transaction it becomes.
struct Ready {
    line: u64,
    action: Action,
    warnings: Vec<String>,
}

fn ready<T>(rows: Vec<Row<T>>, action: impl Fn(T) -> Action) -> Vec<Ready> {
    rows.into_iter()
        .map(|r| Ready {
            line: r.line,
            action: action(r.input),
            warnings: r.warnings,
        })
        .collect()
}

/// What became of one file: the text summary and `--json` say the same.
#[derive(Debug, Default, Serialize)]
struct FileReport {
    file: String,
    valid_rows: usize,
    invalid_rows: Vec<BadRow>,
    /// Values dropped from rows that were kept.
    warnings: Vec<LineNote>,
    /// Transactions sent to the node: rows neither invalid nor already on chain.
    submitted: usize,
    recorded: Vec<Recorded>,
    already_on_chain: Vec<OnChain>,
    rejected: Vec<LineNote>,
}

#[derive(Debug, Serialize)]
struct LineNote {
    line: u64,
    note: String,
}

#[derive(Debug, Serialize)]
struct Recorded {
    line: u64,
    /// The record id (credit), version (subject) or expert id, as `-q` prints it.
    id: Option<String>,
    output: TxOutput,
}

/// A row whose record the chain already has.
#[derive(Debug, Serialize)]
struct OnChain {
    line: u64,
    /// The record id (credit), USCC (subject) or expert id; unknown when another import
    /// recorded it between the lookup and the commit.
    id: Option<String>,
    what: String,
}

/// Reports bad rows, then (unless stopped by them or `--check`) looks the rest up on chain,
/// submits the rows that are not there and reports what the chain did with each.
fn submit_file(
    args: &ImportArgs,
    rows: Vec<Ready>,
    bad: Vec<BadRow>,
    what: &str,
) -> anyhow::Result<ExitCode> {
    let name = args.file.display().to_string();
    let mut report = FileReport {
        file: name.clone(),
        valid_rows: rows.len(),
        invalid_rows: bad,
        warnings: rows
            .iter()
            .flat_map(|r| {
                r.warnings.iter().map(|w| LineNote {
                    line: r.line,
                    note: w.clone(),
                })
            })
            .collect(),
        ..FileReport::default()
    };
    for b in &report.invalid_rows {
        for problem in &b.problems {
            eprintln!("{name}:{}: {problem}", b.line);
        }
    }
    for w in &report.warnings {
        eprintln!("{name}:{}: warning: {}", w.line, w.note);
    }
    let output = Output {
        json: args.tx.node.json,
        quiet: args.tx.quiet,
    };
    output.say(format!(
        "{name}: {} valid rows, {} invalid",
        rows.len(),
        report.invalid_rows.len()
    ));
    let invalid = !report.invalid_rows.is_empty();
    if invalid && !args.skip_invalid {
        eprintln!("nothing submitted: fix the rows above or rerun with --skip-invalid");
    }
    if (invalid && !args.skip_invalid) || args.check || rows.is_empty() {
        output.json(&report);
        return Ok(ExitCode::from(u8::from(invalid)));
    }
    let url = args.tx.node.url()?;
    let key = args.tx.signing_key()?;
    crate::session::catch_up(&url, Duration::from_secs(args.tx.node.timeout));
    let outcome = submit_rows(&url, &key, &rows, args.batch.max(1), &mut report);
    let nothing_done = report.submitted == 0 && report.already_on_chain.is_empty();
    if !(nothing_done && matches!(outcome, Err(Failure::Local(_)))) {
        output.results(&report, what);
    }
    match outcome {
        Ok(()) => {}
        Err(Failure::Rejected { status, body }) => {
            eprintln!("rejected by {url}: {}", explain_rejection(status, &body));
            return Ok(ExitCode::from(1));
        }
        Err(Failure::Local(e)) => return Err(e),
    }
    // Invalid rows the administrator chose to skip (--skip-invalid) are not a failure: every
    // row that was sent is on chain.
    Ok(ExitCode::from(u8::from(!report.rejected.is_empty())))
}

/// Where an import's words go: with `--json` stdout holds only the JSON report and the
/// commentary goes to stderr; with `--quiet` stdout holds only the new ids.
struct Output {
    json: bool,
    quiet: bool,
}

impl Output {
    /// A line of commentary (counts), not wanted with `--quiet`.
    fn say(&self, line: String) {
        if self.quiet {
            return;
        }
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    fn json(&self, report: &FileReport) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(report).expect("json"));
        }
    }

    /// Every row's outcome by line, then the counts.
    fn results(&self, report: &FileReport, what: &str) {
        let name = &report.file;
        self.json(report);
        if !self.json {
            for r in &report.recorded {
                if self.quiet {
                    if let Some(id) = &r.id {
                        println!("{id}");
                    }
                } else if let Some(words) = describe_output(&r.output, false) {
                    println!("{name}:{}: {words}", r.line);
                }
            }
        }
        for r in &report.already_on_chain {
            self.say(format!("{name}:{}: already on chain: {}", r.line, r.what));
        }
        for r in &report.rejected {
            eprintln!("{name}:{}: rejected by the chain: {}", r.line, r.note);
        }
        self.say(format!(
            "recorded {} {what}; {} already on chain; {} rejected by the chain; {} invalid rows \
             skipped; {} transactions sent",
            report.recorded.len(),
            report.already_on_chain.len(),
            report.rejected.len(),
            report.invalid_rows.len(),
            report.submitted,
        ));
    }
}

/// What the chain already has, read through the node's API: a credit decision by subject, kind
/// and document number (the chain's own key for it), a subject by USCC, an expert by id.
#[derive(Default)]
struct ChainLookup {
    /// Each subject's credit records, read once per file.
    credit: HashMap<String, Vec<RecordView>>,
}

impl ChainLookup {
    /// The id and description of what `action` would create, when the chain has it already.
    fn find(
        &mut self,
        client: &Client,
        action: &Action,
    ) -> Result<Option<(String, String)>, Failure> {
        match action {
            Action::Credit(CreditAction::Record(input)) => {
                let uscc = &input.subject_uscc;
                if !self.credit.contains_key(uscc) {
                    let records = client.get(&route::path(route::CREDIT_BY_SUBJECT, &[uscc]))?;
                    self.credit.insert(uscc.clone(), records);
                }
                Ok(self.credit[uscc]
                    .iter()
                    .map(|v| &v.record)
                    .find(|r| r.kind == input.kind && r.document_no == input.document_no.trim())
                    .map(|r| {
                        (
                            r.id.to_string(),
                            format!("credit record (信用记录) {}", r.id),
                        )
                    }))
            }
            Action::Subject(SubjectAction::Register(info)) => {
                let path = route::path(route::SUBJECT, &[&info.uscc]);
                Ok(absent_on_404(client.get::<Subject>(&path))?.map(|s| {
                    (
                        s.uscc.to_string(),
                        format!(
                            "subject (市场主体) {} version {}, kept by {}",
                            s.uscc, s.version, s.home
                        ),
                    )
                }))
            }
            Action::Expert(ExpertAction::Register(info)) => {
                let path = route::path(route::EXPERT, &[&info.id.to_hex()]);
                Ok(absent_on_404(client.get::<Expert>(&path))?.map(|e| {
                    (
                        e.id.to_string(),
                        format!("expert (评标专家) {}, kept by {}", e.id, e.home),
                    )
                }))
            }
            _ => Ok(None),
        }
    }
}

/// A lookup's answer, with "not found" (404) as `None`.
fn absent_on_404<T>(result: Result<T, Failure>) -> Result<Option<T>, Failure> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(Failure::Rejected { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
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

/// Looks every row up on chain, then submits the rows that are not there, filling `report`
/// as it goes (so a failure part-way still reports what was done).
fn submit_rows(
    url: &str,
    key: &ed25519_dalek::SigningKey,
    rows: &[Ready],
    batch: usize,
    report: &mut FileReport,
) -> Result<(), Failure> {
    let client = Client::connect(url)?;
    let mut lookup = ChainLookup::default();
    let mut to_send = Vec::new();
    for row in rows {
        match lookup.find(&client, &row.action)? {
            Some((id, what)) => report.already_on_chain.push(OnChain {
                line: row.line,
                id: Some(id),
                what,
            }),
            None => to_send.push(row),
        }
    }
    let signer = PublicKey::from(&key.verifying_key());
    let mut nonce = client.next_nonce(&signer)?;
    let mut last_height = 0;
    let bar = progress_bar(to_send.len());
    // The first row goes alone: when the signer may not do this at all (it lacks the role),
    // one failed transaction says so and the other rows are not sent to fail the same way.
    let (first, rest) = to_send.split_at(to_send.len().min(1));
    let mut unauthorized: Option<String> = None;
    for chunk in std::iter::once(first).chain(rest.chunks(batch)) {
        if let Some(reason) = &unauthorized {
            report.rejected.extend(chunk.iter().map(|row| LineNote {
                line: row.line,
                note: format!("not sent: {reason}"),
            }));
            continue;
        }
        // Each row with the next nonce; a row refused at admission leaves the nonce free.
        let mut pending = Vec::new();
        for row in chunk {
            let tx = client.sign(key, nonce, row.action.clone());
            match client.post(&tx, false) {
                Ok(_) => {
                    nonce += 1;
                    report.submitted += 1;
                    pending.push((row.line, tx.hash()));
                }
                Err(Failure::Rejected { status, body }) => {
                    if body["code"] == "BAD_NONCE" {
                        return Err(Failure::Rejected { status, body });
                    }
                    let note = explain_rejection(status, &body);
                    if body["code"] == "ALREADY_EXISTS" {
                        report.already_on_chain.push(OnChain {
                            line: row.line,
                            id: None,
                            what: note,
                        });
                    } else {
                        report.rejected.push(LineNote {
                            line: row.line,
                            note,
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // Wait for the batch, then read every row's receipt.
        for (line, hash) in pending {
            let receipt = wait_receipt(&client, &hash)?;
            last_height = last_height.max(receipt.height.unwrap_or(0));
            let code = receipt.error.as_ref().map(|e| e.code.as_str());
            match receipt.status {
                TxState::Committed => {
                    let output = receipt.output.unwrap_or(TxOutput::None);
                    report.recorded.push(Recorded {
                        line,
                        id: created_id(&output),
                        output,
                    });
                }
                // Recorded by someone else between the lookup and this commit.
                _ if code == Some("ALREADY_EXISTS") => report.already_on_chain.push(OnChain {
                    line,
                    id: None,
                    what: crate::client::failure_line(&receipt),
                }),
                _ => {
                    let note = crate::client::failure_line(&receipt);
                    if code == Some("UNAUTHORIZED") {
                        unauthorized.get_or_insert(format!("line {line} was refused: {note}"));
                    }
                    report.rejected.push(LineNote { line, note });
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    report.already_on_chain.sort_by_key(|r| r.line);
    if last_height > 0 {
        crate::session::remember(&client, last_height);
    }
    Ok(())
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

    /// The day the tests' files are read on, so their dates never become "in the future".
    fn test_today() -> Date {
        "2026-12-01".parse().unwrap()
    }

    fn read(text: &str) -> anyhow::Result<(Vec<Row<CreditRecordInput>>, Vec<BadRow>)> {
        read_rows_on(text, CreditKind::Violation, Severity::General, test_today())
    }

    /// A valid USCC built from the rule (its check characters computed, not copied).
    fn code(prefix: &str, body: &str) -> String {
        caihong_chaincode::uscc::build(prefix, body)
            .unwrap()
            .as_str()
            .to_string()
    }

    /// `row` with column `column` (from 1, as numbered in the national format) set to `value`.
    fn with_column(row: &str, column: usize, value: &str) -> String {
        let mut fields: Vec<&str> = row.split(',').collect();
        fields[column - 1] = value;
        fields.join(",")
    }

    /// A row decided on 2026-03-01 and published for a year.
    fn decided_in_march(uscc: &str, document: &str, fine: &str) -> String {
        row(uscc, document, fine, "2026-03-01", "2027-02-28")
    }

    #[test]
    fn gb18030_and_bom_files_with_full_width_headers_import() {
        let header = NATIONAL_HEADER.replace(
            "行政相对人代码_1(统一社会信用代码)",
            "行政相对人代码_1 （统一社会信用代码）",
        );
        assert!(header.contains("（统一社会信用代码）"));
        let uscc = code("91150200", "MA0N1234");
        let text = format!(
            "{header}\r\n{}\r\n",
            decided_in_march(&uscc, "包发改罚〔2026〕1号", "0.3")
        );
        let (gb18030, _, unmappable) = encoding_rs::GB18030.encode(&text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&gb18030).is_err(), "really not UTF-8");
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        for bytes in [gb18030.to_vec(), bom] {
            let (rows, bad) = read(&decode_text(&bytes)).unwrap();
            assert_eq!(bad, [], "{rows:?}");
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].line, 2);
            let r = &rows[0].input;
            assert_eq!(r.subject_uscc, uscc);
            assert_eq!(r.subject_name, "某某建设有限公司");
            assert_eq!(r.document_no, "包发改罚〔2026〕1号");
            assert_eq!(r.fine_fen, 300_000);
            assert_eq!(r.authority_name, "包头市发展和改革委员会");
        }
    }

    #[test]
    fn rows_after_a_quoted_line_break_keep_their_physical_line() {
        let uscc = code("91150200", "MA0N1234");
        let facts = "\"与他人串通投标，\n抬高报价\n（见附件）\"";
        let first = with_column(
            &decided_in_march(&uscc, "包发改罚〔2026〕1号", "1"),
            16,
            facts,
        );
        let invalid = decided_in_march(&uscc, "包发改罚〔2026〕2号", "x");
        let last = decided_in_march(&uscc, "包发改罚〔2026〕3号", "1");
        // Lines: 1 header, 2–4 the first row, 5 the invalid row, 6 blank, 7 the last row.
        for newline in ["\n", "\r\n"] {
            let text = [NATIONAL_HEADER, &first, &invalid, "", &last]
                .join(newline)
                .replace("\n抬高", &format!("{newline}抬高"))
                .replace("\n（见", &format!("{newline}（见"));
            let (rows, bad) = read(&text).unwrap();
            let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, [2, 7], "{newline:?}");
            assert_eq!(bad.len(), 1);
            assert_eq!(bad[0].line, 5, "{newline:?}: {bad:?}");
            assert!(rows[0].input.content.contains("抬高报价"));
        }
    }

    #[test]
    fn a_row_with_several_problems_lists_them_all() {
        let uscc = code("91150200", "MA0N1234");
        let mut broken = uscc.clone();
        broken.replace_range(17..18, if uscc.ends_with('0') { "1" } else { "0" });
        let bad_row = with_column(
            &with_column(
                &row(&broken, "", "1.2345678", "2026年13月01日", "2027-02-28"),
                18,
                "罚款;鞭刑",
            ),
            26,
            "",
        );
        let text = [
            NATIONAL_HEADER.to_string(),
            bad_row,
            // The chain's date rules, by column: a future decision, a publication longer than a
            // year for a general record, a penalty ending before its decision.
            with_column(
                &row(
                    &uscc,
                    "包发改罚〔2026〕9号",
                    "1",
                    "2026-12-02",
                    "2028-01-01",
                ),
                24,
                "2026-11-30",
            ),
        ]
        .join("\n");
        let (rows, bad) = read(&text).unwrap();
        assert_eq!(rows.len(), 0, "{rows:?}");
        assert_eq!(bad.len(), 2, "{bad:?}");
        let expected: [&[&str]; 2] = [
            &[
                "统一社会信用代码",
                "行政处罚决定书文号 is empty",
                "处罚机关 is empty",
                "处罚决定日期",
                "罚款金额",
                "处罚类别",
            ],
            &["in the future", "公示截止期", "处罚有效期"],
        ];
        for (b, expected) in bad.iter().zip(expected) {
            assert_eq!(b.problems.len(), expected.len(), "{b:?}");
            for (problem, words) in b.problems.iter().zip(expected) {
                assert!(problem.contains(words), "{problem:?} lacks {words:?}");
            }
        }
        assert!(bad[0].problems[5].contains("鞭刑"), "{bad:?}");
        // The same row as a serious record may be published for three years.
        let (_, serious) = read_rows_on(
            &text,
            CreditKind::Violation,
            Severity::Serious,
            test_today(),
        )
        .unwrap();
        assert_eq!(serious[1].problems.len(), 2, "{serious:?}");
    }

    #[test]
    fn an_invalid_authority_code_is_dropped_with_a_warning() {
        let uscc = code("91150200", "MA0N1234");
        let authority = code("11150200", "01234567");
        let mut invalid = authority.clone();
        invalid.replace_range(17..18, if authority.ends_with('0') { "1" } else { "0" });
        let text = [
            NATIONAL_HEADER.to_string(),
            with_column(
                &decided_in_march(&uscc, "包发改罚〔2026〕1号", "1"),
                27,
                &authority.to_lowercase(),
            ),
            with_column(
                &decided_in_march(&uscc, "包发改罚〔2026〕2号", "1"),
                27,
                &invalid,
            ),
        ]
        .join("\n");
        let (rows, bad) = read(&text).unwrap();
        assert_eq!(bad, []);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].input.authority_uscc, authority);
        assert_eq!(rows[0].warnings, Vec::<String>::new());
        assert_eq!(rows[1].input.authority_uscc, "");
        assert_eq!(rows[1].input.authority_name, "包头市发展和改革委员会");
        assert_eq!(rows[1].warnings.len(), 1);
        let warning = &rows[1].warnings[0];
        assert!(
            warning.contains("处罚机关统一社会信用代码") && warning.contains(&invalid),
            "{warning}"
        );
    }

    #[test]
    fn a_decision_twice_in_one_file_is_refused_the_second_time() {
        let uscc = code("91150200", "MA0N1234");
        let text = [
            NATIONAL_HEADER.to_string(),
            decided_in_march(&uscc, "包发改罚〔2026〕1号", "1"),
            row(
                &uscc.to_lowercase(),
                "包发改罚〔2026〕1号",
                "2",
                "2026-03-01",
                "2027-02-28",
            ),
        ]
        .join("\n");
        let (rows, bad) = read(&text).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        assert!(bad[0].problems[0].contains("as line 2"), "{bad:?}");
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
        let (rows, bad) = read(&text).unwrap();
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
        let only = |b: &BadRow| {
            assert_eq!(b.problems.len(), 1, "{b:?}");
            b.problems[0].clone()
        };
        assert!(only(&bad[0]).contains("统一社会信用代码"), "{bad:?}");
        assert!(only(&bad[1]).contains("罚款金额"), "{bad:?}");
        assert!(only(&bad[2]).contains("处罚决定日期"), "{bad:?}");
        assert!(only(&bad[3]).contains("before"), "{bad:?}");
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
            bad[1].problems[0].contains("unknown subject role"),
            "{bad:?}"
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
        assert!(bad[0].problems[0].contains("not 18"), "{bad:?}");
    }

    #[test]
    fn a_file_without_the_national_columns_is_refused() {
        let err = read_rows("名称,代码\nA,B\n", CreditKind::Violation, Severity::General)
            .unwrap_err()
            .to_string();
        assert!(err.contains("行政处罚决定书文号"), "{err}");
    }
}
