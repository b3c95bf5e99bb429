//! `caihong query <domain> …`: every chaincode query and the chain's own records, read from a
//! node's HTTP API. Human output is a table or a list of fields; `--json` prints the node's
//! answer as it came.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use caihong_chaincode::experts::expert_id;
use clap::{Args, Subcommand};
use serde_json::Value;

use caihong_node::contract::route;

use crate::node::{Failure, NodeArgs, finish, http_get, http_post_bytes};

#[derive(Debug, Args)]
pub struct QueryCommand {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(subcommand)]
    pub what: Query,
}

#[derive(Debug, Subcommand)]
pub enum Query {
    /// A block (区块) with its commit certificate: HEIGHT or `latest`.
    Block { height: String },
    /// A transaction (交易) with its receipt, by hash.
    Tx { hash: String },
    /// The alliance's members (成员单位) as of the latest block.
    Members,
    /// Governance proposals (治理提案): all, or one by id.
    Proposals { id: Option<u64> },
    /// Evidence of misbehaving validators (作恶证据) this node has recorded.
    Evidence,
    /// A market subject (市场主体), or its every version with --history.
    Subject {
        uscc: String,
        #[arg(long)]
        history: bool,
    },
    /// Credit records (信用记录) and what they mean for a subject.
    #[command(subcommand)]
    Credit(CreditQuery),
    /// CA issuers (CA 机构) and certificate verification (证书验证).
    #[command(subcommand)]
    Ca(CaQuery),
    /// An evaluation expert (评标专家) by id or national ID, or the pool for a specialty.
    Expert {
        /// Expert id (hex).
        id: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        /// List active experts with this specialty code (专业代码) instead.
        #[arg(long, conflicts_with_all = ["id", "national_id"])]
        specialty: Option<String>,
    },
    /// An extraction (专家抽取) as this node's member may see it, saying which view: sealed
    /// (seats per home, no experts), home (its own experts' seats), requester (the whole
    /// committee) or published (after the award, with the chain's re-derivation).
    Extraction {
        id: u64,
        /// Show the sealed view (what the other members see) even on the requester's or a
        /// home's node.
        #[arg(long)]
        sealed: bool,
    },
    /// A state proof (状态证明) for a raw state key (hex) at the latest or a given height.
    Proof {
        key: String,
        #[arg(long)]
        height: Option<u64>,
    },
    /// Committed events (事件) in chain order, one line each; --follow waits for new ones.
    ///
    /// Each event prints as `CURSOR  TIME  KIND  DATA`, or with --json as one JSON line, up to
    /// the latest block; the cursor to continue from (`--after`) then goes to stderr. With
    /// --follow the command long-polls for new events until interrupted.
    Events {
        /// Start after this cursor: `H` (after every event of block H) or `H:N` (after event N
        /// of block H), e.g. the last event's `cursor`. Default: from genesis.
        #[arg(long, default_value = "0")]
        after: String,
        /// Only these families or kinds, comma-separated, e.g. `credit,governance.applied`
        /// (families: credit, subject, ca, expert, extraction, governance, operator).
        #[arg(long)]
        kinds: Option<String>,
        /// Events per request (the node answers at most 1000; default 100).
        #[arg(long)]
        limit: Option<usize>,
        /// Keep reading: wait for new events, and retry when the node is unreachable.
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CreditQuery {
    /// One credit record by id.
    Record { id: u64 },
    /// Every record about a subject.
    Subject { uscc: String },
    /// Whether a subject is barred from bidding now (失信限制), and by which records.
    Restriction { uscc: String },
    /// A subject's credit score (信用评分).
    Score { uscc: String },
    /// Records committed after a height, in order (the sync feed).
    Since {
        height: u64,
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaQuery {
    /// Registered issuers and which members recognize them.
    Issuers,
    /// Verify a bidder's certificate (PEM or DER) against the chain: the node builds its
    /// certification path through registered CAs to a registered root and checks every link;
    /// recognition is of that root, alliance-wide (every member must recognize it) or for one
    /// member (`--member`). Prints the path and every reason. Exits 0 when recognized, 1 when
    /// not (with the reasons), 2 for an unknown member.
    Verify {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        member: Option<String>,
        /// Answer as of this Beijing time, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD` (midnight):
        /// validity of every certificate on the path, revocations dated at or before it,
        /// credit. Default: now.
        #[arg(long)]
        at: Option<String>,
    },
}

/// `--at` of `query ca verify`: `YYYY-MM-DD` (midnight) or `YYYY-MM-DD HH:MM[:SS]` (also with
/// `T`), Beijing time, as Unix milliseconds.
fn verify_time_ms(text: &str) -> anyhow::Result<u64> {
    use caihong_chaincode::types::{parse_date, start_of_day_ms};
    let text = text.trim().replacen('T', " ", 1);
    let (date, clock) = text.split_once(' ').unwrap_or((&text, "00:00"));
    let wrong =
        || anyhow::anyhow!("--at {text:?}: write a Beijing time as YYYY-MM-DD HH:MM or YYYY-MM-DD");
    let date = parse_date(date).map_err(|_| wrong())?;
    let clock = ["%H:%M", "%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveTime::parse_from_str(clock.trim(), f).ok())
        .ok_or_else(wrong)?;
    let since_midnight = chrono::Timelike::num_seconds_from_midnight(&clock) as u64 * 1000;
    Ok(start_of_day_ms(date) + since_midnight)
}

/// `query ca verify`: like `uscc check`, a negative verdict exits 1 (after printing why), and
/// an unknown `--member` is a usage error (exit 2), not a verdict.
fn verify_verdict(
    answer: Result<Value, Failure>,
    for_member: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let v = match answer {
        Err(Failure::Rejected { status: 404, body }) if for_member => {
            anyhow::bail!(
                "--member: {}",
                body["error"].as_str().unwrap_or("no such member")
            )
        }
        other => other,
    };
    let recognized = v.as_ref().is_ok_and(|v| v["recognized"] == true);
    let code = finish(v.map(|v| {
        if json {
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        } else {
            if let Some(note) = v["view_note"].as_str() {
                println!("shown: {note}");
            }
            print!("{}", render(&v));
        }
    }))?;
    Ok(if code == ExitCode::SUCCESS && !recognized {
        ExitCode::from(1)
    } else {
        code
    })
}

pub fn run(cmd: QueryCommand) -> anyhow::Result<ExitCode> {
    let url = cmd.node.url()?;
    crate::session::catch_up(&url, std::time::Duration::from_secs(cmd.node.timeout));
    let json = cmd.node.json;
    // Each route of the API contract with its parameters filled in, and a query string.
    let at = |route: &str, args: &[&str]| format!("{url}{}", route::path(route, args));
    let answer: Result<Value, Failure> = match cmd.what {
        Query::Block { height } => return crate::node::query_block(cmd.node, height),
        Query::Events {
            after,
            kinds,
            limit,
            follow,
        } => {
            let feed = Feed {
                // The feed needs no chain id.
                client: caihong_cli::Client {
                    url: url.clone(),
                    chain_id: String::new(),
                },
                kinds,
                limit,
                follow,
                json,
                // The node answers a long-poll before this command's own --timeout.
                wait_secs: cmd.node.timeout.saturating_sub(5).clamp(1, 60),
            };
            return feed.run(after);
        }
        Query::Tx { hash } => http_get(&at(route::TX_BY_HASH, &[&hash])),
        Query::Members => http_get(&at(route::MEMBERS, &[])),
        Query::Proposals { id: Some(id) } => http_get(&at(route::PROPOSAL, &[&id.to_string()])),
        Query::Proposals { id: None } => http_get(&at(route::PROPOSALS, &[])),
        Query::Evidence => http_get(&at(route::EVIDENCE, &[])),
        Query::Subject { uscc, history } => http_get(&at(
            if history {
                route::SUBJECT_HISTORY
            } else {
                route::SUBJECT
            },
            &[&uscc],
        )),
        Query::Credit(q) => http_get(&match q {
            CreditQuery::Record { id } => at(route::CREDIT_RECORD, &[&id.to_string()]),
            CreditQuery::Subject { uscc } => at(route::CREDIT_BY_SUBJECT, &[&uscc]),
            CreditQuery::Restriction { uscc } => at(route::CREDIT_RESTRICTION, &[&uscc]),
            CreditQuery::Score { uscc } => at(route::CREDIT_SCORE, &[&uscc]),
            CreditQuery::Since { height, limit } => {
                let since = at(route::CREDIT_SINCE, &[&height.to_string()]);
                match limit {
                    Some(l) => format!("{since}?limit={l}"),
                    None => since,
                }
            }
        }),
        Query::Ca(CaQuery::Issuers) => http_get(&at(route::CA_ISSUERS, &[])),
        Query::Ca(CaQuery::Verify {
            cert,
            member,
            at: time,
        }) => {
            let bytes =
                std::fs::read(&cert).with_context(|| format!("cannot read {}", cert.display()))?;
            let mut params = Vec::new();
            if let Some(m) = &member {
                params.push(format!("member={m}"));
            }
            if let Some(t) = &time {
                params.push(format!("at={}", verify_time_ms(t)?));
            }
            let verify = at(route::CA_VERIFY, &[]);
            let target = if params.is_empty() {
                verify
            } else {
                format!("{verify}?{}", params.join("&"))
            };
            return verify_verdict(http_post_bytes(&target, &bytes), member.is_some(), json);
        }
        Query::Expert {
            id,
            national_id,
            specialty,
        } => match (id, national_id, specialty) {
            (_, _, Some(s)) => http_get(&format!("{}?specialty={s}", at(route::EXPERTS, &[]))),
            (Some(id), _, _) => http_get(&at(route::EXPERT, &[&id])),
            (None, Some(n), _) => http_get(&at(route::EXPERT, &[&expert_id(&n).to_string()])),
            (None, None, None) => {
                anyhow::bail!("say which expert: ID, --national-id or --specialty")
            }
        },
        Query::Extraction { id, sealed } => {
            let path = at(route::EXTRACTION, &[&id.to_string()]);
            http_get(&if sealed {
                format!("{path}?view=sealed")
            } else {
                path
            })
        }
        Query::Proof { key, height } => {
            let proof = format!("{}?key={key}", at(route::STATE_PROOF, &[]));
            http_get(&match height {
                Some(h) => format!("{proof}&height={h}"),
                None => proof,
            })
        }
    };
    finish(answer.map(|v| {
        if json {
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        } else {
            if let Some(note) = v["view_note"].as_str() {
                println!("shown: {note}");
            }
            print!("{}", render(&v));
        }
    }))
}

/// `query events`: pages of `GET /v1/events`, one line per event.
struct Feed {
    client: caihong_cli::Client,
    kinds: Option<String>,
    limit: Option<usize>,
    follow: bool,
    json: bool,
    wait_secs: u64,
}

impl Feed {
    fn run(&self, mut after: String) -> anyhow::Result<ExitCode> {
        let mut caught_up = false;
        loop {
            let wait = if caught_up { self.wait_secs } else { 0 };
            let page = match self
                .client
                .events(&after, self.kinds.as_deref(), self.limit, wait)
            {
                Ok(page) => page,
                Err(Failure::Local(e)) if self.follow => {
                    eprintln!("{e:#}; trying again in 2 s (after {after})");
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    continue;
                }
                Err(e) => return finish(Err(e)),
            };
            for event in &page.events {
                if self.json {
                    println!("{}", serde_json::to_string(event).expect("json"));
                } else {
                    println!(
                        "{}  {}  {}  {}",
                        event.cursor,
                        beijing((event.time_ms / 1000) as i64),
                        event.kind,
                        event.data
                    );
                }
            }
            // Caught up when the answer ends at a whole height at or past the tip (a full page
            // ends at its last event; a long scan at the last height it read).
            caught_up =
                !page.next.contains(':') && page.next.parse::<u64>().is_ok_and(|h| h >= page.tip);
            after = page.next;
            if caught_up && !self.follow {
                eprintln!("next cursor: {after}");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// Text is wrapped at this many columns, continuation lines indented under the value.
const WRAP: usize = 100;

/// A node's JSON answer for a person. An object prints as `field  value` lines; a list prints
/// one entry per block of lines, separated by a blank line. Nested fields are flattened with
/// dots (`record.document_no`), so nothing is left out or cut: identifiers print in full to be
/// copied. Times print in Beijing time, byte strings as hex, long text wrapped.
pub fn render(v: &Value) -> String {
    match v {
        Value::Array(items) if items.is_empty() => "(none)\n".to_string(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(_) => block(item),
                other => format!("[{i}]  {}\n", plain("", other)),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Object(_) => block(v),
        other => format!("{}\n", plain("", other)),
    }
}

/// One object as aligned `field  value` lines, nested fields flattened.
fn block(v: &Value) -> String {
    let mut fields = Vec::new();
    flatten("", v, &mut fields);
    let width = fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in fields {
        let pad = " ".repeat(width - key.chars().count());
        let indent = " ".repeat(width + 2);
        for (i, line) in wrap(&value, WRAP.saturating_sub(width + 2).max(40))
            .iter()
            .enumerate()
        {
            if i == 0 {
                out += &format!("{key}{pad}  {line}\n");
            } else {
                out += &format!("{indent}{line}\n");
            }
        }
    }
    out
}

/// The leaves of `v` with their dotted paths (`[i]` for list entries that are objects).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match v {
        Value::Object(map) if map.is_empty() => out.push((prefix.to_string(), "-".into())),
        Value::Object(map) => {
            for (k, value) in map {
                flatten(&join(k), value, out);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), item, out);
            }
        }
        leaf => out.push((prefix.to_string(), plain(prefix, leaf))),
    }
}

/// A leaf on one line: strings bare, null as `-`, a list of bytes as hex, other lists joined,
/// times (fields ending in `_ms` and an evaluation window's ends, or the certificate and
/// revocation times in seconds) in Beijing time, amounts in fen (fields ending in `_fen`) also
/// in yuan. `path` is the leaf's dotted path.
fn plain(path: &str, v: &Value) -> String {
    let field = path.rsplit('.').next().unwrap_or(path);
    let millis =
        field.ends_with("_ms") || path.ends_with("window.start") || path.ends_with("window.end");
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        Value::Number(n) => match n.as_u64().or_else(|| n.as_i64().map(|i| i.max(0) as u64)) {
            Some(ms) if millis && ms > 1_000_000_000_000 => {
                format!("{ms} ({})", beijing(ms as i64 / 1000))
            }
            Some(fen) if field.ends_with("_fen") => format!("{fen} ({})", yuan(fen)),
            Some(secs)
                if matches!(field, "not_before" | "not_after" | "revoked_at" | "at")
                    && (1_000_000_000..100_000_000_000).contains(&secs) =>
            {
                format!("{secs} ({})", beijing(secs as i64))
            }
            _ => n.to_string(),
        },
        Value::Array(items) if items.len() >= 16 && items.iter().all(is_byte) => items
            .iter()
            .map(|b| format!("{:02x}", b.as_u64().unwrap_or(0)))
            .collect(),
        Value::Array(items) if items.is_empty() => "-".to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| plain(path, i))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// An amount in fen as yuan with thousands separators: `20,000.00 元`.
fn yuan(fen: u64) -> String {
    let digits = (fen / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{:02} 元", fen % 100)
}

fn is_byte(v: &Value) -> bool {
    v.as_u64().is_some_and(|b| b <= 255)
}

/// `YYYY-MM-DD HH:MM:SS` Beijing time (UTC+8) of Unix seconds.
fn beijing(secs: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| {
            t.with_timezone(&offset)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// `text` in lines of at most `width` characters, broken at spaces. A longer word (a
/// fingerprint, a distinguished name) keeps a line of its own, whole, so it can be copied.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let word = word.to_string();
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if line.is_empty() {
            line = word;
        } else if fits {
            line = format!("{line} {word}");
        } else {
            lines.push(std::mem::replace(&mut line, word));
        }
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verify_at_is_beijing_time() {
        // 2026-03-01 08:00 in Beijing is 00:00 UTC: 1772323200 s.
        assert_eq!(
            verify_time_ms("2026-03-01 08:00").unwrap(),
            1_772_323_200_000
        );
        assert_eq!(
            verify_time_ms("2026-03-01T08:00:30").unwrap(),
            1_772_323_230_000
        );
        assert_eq!(verify_time_ms("2026-03-02").unwrap(), 1_772_380_800_000);
        assert!(verify_time_ms("2026-03-01 8h").is_err());
        assert!(verify_time_ms("tomorrow").is_err());
    }

    /// A credit record list as `query credit subject` answers it: every nested field shows,
    /// one entry per block, nothing cut.
    #[test]
    fn a_list_prints_each_entry_whole_with_nested_fields() {
        let v = json!([
            {"record": {"id": 3, "document_no": "鄂发改罚〔2026〕7号", "fine_fen": 2_500_000},
             "ended": {"by_record": 4, "date": "2027-01-01"}},
            {"record": {"id": 5, "document_no": "x", "fine_fen": 0}, "ended": null}
        ]);
        let text = render(&v);
        let blocks: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(blocks.len(), 2, "{text}");
        for field in [
            "record.id",
            "record.document_no",
            "鄂发改罚〔2026〕7号",
            "record.fine_fen",
        ] {
            assert!(blocks[0].contains(field), "{field}: {text}");
        }
        let line = |block: &str, key: &str| {
            let found = block.lines().find(|l| l.starts_with(&format!("{key} ")));
            found.map(|l| l[key.len()..].trim().to_string())
        };
        assert_eq!(
            line(blocks[0], "ended.by_record").as_deref(),
            Some("4"),
            "{text}"
        );
        assert_eq!(line(blocks[1], "ended").as_deref(), Some("-"), "{text}");
        assert_eq!(render(&json!([])), "(none)\n");
    }

    /// Identifiers print in full; times in Beijing time; bytes as hex; an enum's variant
    /// shows as a path, not as Rust debug text.
    #[test]
    fn fields_print_whole_and_readable() {
        let fingerprint = "595456e1e200015fc32c17e1f53bffe61376b0408e41007e92869398b68e8874";
        let text = render(&json!({
            "fingerprint": fingerprint,
            "time_ms": 1_764_633_600_000u64,
            "not_after": 2_366_841_600u64,
            "secret": (0..32).collect::<Vec<u8>>(),
            "status": {"Applied": {"height": 310}},
        }));
        assert!(text.contains(fingerprint), "{text}");
        assert!(text.contains("2025-12-02 08:00:00"), "{text}");
        assert!(text.contains("2045-01-01"), "{text}");
        let window = render(&json!({"window": {"start": 1_796_864_400_000u64}}));
        assert!(window.contains("(2026-12-10 09:00:00)"), "{window}");
        assert!(text.contains("000102030405"), "{text}");
        let fines = render(&json!({"fine_fen": 2_000_000, "confiscated_fen": 123_456_789}));
        assert!(fines.contains("2000000 (20,000.00 元)"), "{fines}");
        assert!(fines.contains("(1,234,567.89 元)"), "{fines}");
        assert!(render(&json!({"fine_fen": 5})).contains("(0.05 元)"));
        assert!(
            text.lines()
                .any(|l| l.starts_with("status.Applied.height ") && l.ends_with(" 310")),
            "{text}"
        );
    }

    /// However narrow the value's column, an identifier is never cut across lines.
    #[test]
    fn identifiers_stay_whole_in_a_narrow_column() {
        let fingerprint = "edb6862cd480475cdbe9b5f1f39521d4c25a3c8472a180a558486996fbf4c3a3";
        let long_key = "reasons[0].IssuerNotAllianceRecognized.not_recognized_by";
        let text = render(&json!({"fingerprint": fingerprint, "x": {long_key: "hohhot"}}));
        assert!(text.lines().any(|l| l.ends_with(fingerprint)), "{text}");
    }

    #[test]
    fn long_text_wraps_under_its_value() {
        let reason = "the issuer is not recognized by member baotou ".repeat(5);
        let text = render(&json!({"reason": reason.trim()}));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 1, "{text}");
        assert!(lines.iter().all(|l| l.chars().count() <= WRAP), "{text}");
        assert!(lines[1].starts_with("        "), "{text}");
    }
}
