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
    /// An extraction (专家抽取) with its draw and whether the draw re-derives.
    Extraction { id: u64 },
    /// A state proof (状态证明) for a raw state key (hex) at the latest or a given height.
    Proof {
        key: String,
        #[arg(long)]
        height: Option<u64>,
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
    /// Verify a bidder's certificate (PEM or DER) against the chain: alliance-wide (every
    /// member must recognize its issuer) or for one member's recognition (`--member`). Exits 0
    /// when recognized, 1 when not (with the reasons), 2 for an unknown member.
    Verify {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        member: Option<String>,
    },
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
    let json = cmd.node.json;
    // Each route of the API contract with its parameters filled in, and a query string.
    let at = |route: &str, args: &[&str]| format!("{url}{}", route::path(route, args));
    let answer: Result<Value, Failure> = match cmd.what {
        Query::Block { height } => return crate::node::query_block(cmd.node, height),
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
        Query::Ca(CaQuery::Verify { cert, member }) => {
            let bytes =
                std::fs::read(&cert).with_context(|| format!("cannot read {}", cert.display()))?;
            let verify = at(route::CA_VERIFY, &[]);
            let target = match &member {
                Some(m) => format!("{verify}?member={m}"),
                None => verify,
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
        Query::Extraction { id } => http_get(&at(route::EXTRACTION, &[&id.to_string()])),
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
            print!("{}", render(&v));
        }
    }))
}

/// Widest a table cell gets before it is shortened.
const CELL_WIDTH: usize = 24;

/// A node's JSON answer for a person: an object as `field  value` lines, a list of objects as a
/// table of their plain fields.
pub fn render(v: &Value) -> String {
    match v {
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            table(items)
        }
        Value::Array(items) if items.is_empty() => "(none)\n".to_string(),
        Value::Object(map) => {
            let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            let mut out = String::new();
            for (k, value) in map {
                match value {
                    Value::Array(items) if items.iter().any(Value::is_object) => {
                        out += &format!("{k:<width$}  ({} entries)\n", items.len());
                        for line in table(items).lines() {
                            out += &format!("  {line}\n");
                        }
                    }
                    _ => out += &format!("{k:<width$}  {}\n", plain(value)),
                }
            }
            out
        }
        other => format!("{}\n", plain(other)),
    }
}

/// A value on one line: strings bare, lists joined, objects as compact JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(plain).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

fn shorten(s: String) -> String {
    if s.chars().count() <= CELL_WIDTH {
        s
    } else {
        let head: String = s.chars().take(CELL_WIDTH - 1).collect();
        format!("{head}…")
    }
}

fn table(items: &[Value]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        if let Value::Object(map) = item {
            for (k, v) in map {
                if !v.is_object() && !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| shorten(item.get(c).map(plain).unwrap_or_default()))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        let mut s = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s + "\n"
    };
    let mut out = line(&columns);
    for r in &rows {
        out += &line(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_of_objects_is_a_table_with_every_plain_column() {
        let v = json!([{"id": 1, "name": "包头", "keys": ["a", "b"]}, {"id": 2, "extra": null}]);
        let text = render(&v);
        let lines: Vec<&str> = text.lines().collect();
        // serde_json orders an object's fields by name.
        assert_eq!(lines[0], "id  keys  name  extra");
        assert_eq!(lines[1], "1   a, b  包头");
        assert_eq!(lines[2], format!("2{}-", " ".repeat(15)));
    }

    #[test]
    fn long_cells_are_shortened_and_objects_listed_by_field() {
        let long = "f".repeat(64);
        let text = render(&json!({"hash": long, "height": 7}));
        assert!(
            text.contains(&"f".repeat(64)),
            "fields are not shortened: {text}"
        );
        let table = render(&json!([{ "hash": long }]));
        assert!(table.lines().nth(1).unwrap().ends_with('…'), "{table}");
        assert_eq!(render(&json!([])), "(none)\n");
    }
}
