//! `caihong sync credit`: pulls credit records for another region and verifies every one from
//! the alliance's genesis (see `caihong_node::light`), so the region need not trust the node it
//! asks. Output is JSON lines, one record per line, written only after its block verified.
//!
//! Resuming: the records of the last height in the file are dropped and that height is fetched
//! again, so a run stopped halfway through a block's records neither loses nor repeats any.
//! Headers before the first wanted height are still walked (without bodies) because trust in a
//! validator set only passes forward from genesis.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use caihong_chaincode::credit::CreditKind;
use caihong_chaincode::genesis::Genesis;
use caihong_node::config::read_genesis;
use caihong_node::contract::route;
use caihong_node::light::{
    LightBlock, LightClient, MAX_LIGHT_BLOCKS, VerifiedCredit, decode_light,
};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::node::{Failure, http_get};

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Credit records (信用记录), verified against genesis, as JSON lines.
    Credit(CreditSyncArgs),
}

#[derive(Debug, Args)]
pub struct CreditSyncArgs {
    /// A member node's API URL; repeat to fall back to other members when one fails.
    #[arg(long = "from", required = true)]
    pub sources: Vec<String>,
    /// The alliance's genesis.json: the only thing trusted.
    #[arg(long)]
    pub genesis: PathBuf,
    /// Only records committed after this height.
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// JSON lines file to append to (resumed when it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Only records made by this member (e.g. `baotou`).
    #[arg(long)]
    pub member: Option<String>,
    /// Only this kind: violation, blacklist, blacklist-revocation, commendation, performance,
    /// social-credit (or the Chinese term).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only subjects whose USCC carries this region code (positions 3–8), e.g. 150200.
    #[arg(long)]
    pub region: Option<String>,
    /// Print the outcome as one JSON object on stdout (the records go to --out either way).
    #[arg(long)]
    pub json: bool,
    /// The bearer token of an API client with scope `public` on the source nodes.
    #[arg(long, env = "CAIHONG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The CA certificate (PEM) of the sources' `https://` API certificates, when it is not
    /// one of the usual web roots.
    #[arg(long, env = "CAIHONG_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

pub fn run(cmd: SyncCommand) -> anyhow::Result<ExitCode> {
    let SyncCommand::Credit(args) = cmd;
    credit(args)
}

/// Which records to keep.
struct Filter {
    member: Option<String>,
    kind: Option<CreditKind>,
    region: Option<String>,
}

impl Filter {
    fn keeps(&self, c: &VerifiedCredit) -> bool {
        self.member
            .as_ref()
            .is_none_or(|m| c.record.recorded_by.as_str() == m)
            && self.kind.is_none_or(|k| c.record.kind == k)
            && self
                .region
                .as_ref()
                .is_none_or(|r| c.record.subject_uscc.region_code() == r)
    }
}

/// Why a source could not serve a range.
enum SourceProblem {
    /// It sent data that does not verify: named, never written.
    Forged(String),
    Unreachable(String),
}

/// `caihong sync credit`: resumes from the output's last verified height and verifies ranges
/// from the sources in turn. The resume, fallback and write steps share the light client's
/// state, so they stay in one loop.
fn credit(args: CreditSyncArgs) -> anyhow::Result<ExitCode> {
    caihong_cli::api_client::set_token(args.token.clone());
    if let Some(ca) = &args.ca_cert {
        caihong_cli::api_client::set_ca_cert(ca)?;
    }
    let genesis = read_genesis(&args.genesis)?;
    let mut client = LightClient::from_genesis(&genesis).map_err(|e| anyhow::anyhow!("{e}"))?;
    let filter = Filter {
        member: args.member.clone(),
        kind: args
            .kind
            .as_deref()
            .map(CreditKind::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--kind: {e}"))?,
        region: args.region.clone(),
    };
    if let Some(member) = &args.member {
        check_member(member, &genesis, &args.sources)?;
    }
    let resume = prepare_output(&args.out)?;
    if let Some(h) = resume {
        // Commentary: on stderr when stdout carries the JSON outcome.
        let line = format!(
            "resuming {}: records from height {h} on are fetched again",
            args.out.display()
        );
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    // Bodies (and so records) from this height on.
    let first_body = resume.map_or(args.since + 1, |h| h.max(args.since + 1));
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.out)
        .with_context(|| format!("cannot open {}", args.out.display()))?;

    let sources: Vec<String> = args
        .sources
        .iter()
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    let mut written = 0u64;
    let mut forged = Vec::new();
    let mut unreachable = Vec::new();
    let mut served_by = None;
    for url in &sources {
        match sync_from(
            url,
            &mut client,
            first_body,
            &filter,
            &mut out,
            &mut written,
        ) {
            Ok(tip) => {
                served_by = Some((url.clone(), tip));
                break;
            }
            Err(SourceProblem::Forged(why)) => {
                eprintln!(
                    "REJECTED {url}: {why}; nothing from it past height {} was written",
                    client.height()
                );
                forged.push(url.clone());
            }
            Err(SourceProblem::Unreachable(why)) => {
                eprintln!("unreachable {url}: {why}");
                unreachable.push(url.clone());
            }
        }
    }
    if args.json {
        let outcome = serde_json::json!({
            "verified_height": client.height(),
            "source": served_by.as_ref().map(|(url, _)| url),
            "chain_id": client.chain_id(),
            "genesis": args.genesis.display().to_string(),
            "records_written": written,
            "out": args.out.display().to_string(),
            "forged": forged,
            "unreachable": unreachable,
        });
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
    }
    match served_by {
        Some((url, tip)) => {
            if !args.json {
                println!(
                    "verified blocks 1..={tip} from {url} against genesis {} (chain {}); {written} credit records (信用记录) written to {}",
                    args.genesis.display(),
                    client.chain_id(),
                    args.out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        None if !forged.is_empty() => {
            eprintln!(
                "no source served verifiable data; {written} verified records were written, up to height {}",
                client.height()
            );
            Ok(ExitCode::from(1))
        }
        None => bail!(
            "no source reachable ({}); {written} verified records were written",
            unreachable.join(", ")
        ),
    }
}

/// `--member` must name a member: one of genesis, or one the first answering source lists now
/// (admitted later). A typo would otherwise sync nothing and look like a member with no records.
/// The list is only a filter's check, so a source's word is enough for it.
fn check_member(member: &str, genesis: &Genesis, sources: &[String]) -> anyhow::Result<()> {
    let mut known: Vec<String> = genesis.members.iter().map(|m| m.id.clone()).collect();
    let current = sources.iter().find_map(|url| {
        let path = format!("{}{}", url.trim_end_matches('/'), route::MEMBERS);
        http_get(&path).ok()
    });
    let listed = current
        .iter()
        .flat_map(|v| v.as_array().into_iter().flatten());
    known.extend(listed.filter_map(|m| m["id"].as_str().map(str::to_string)));
    known.sort();
    known.dedup();
    if known.iter().any(|k| k == member) {
        return Ok(());
    }
    bail!(
        "--member {member}: no such member; the alliance's members are {}",
        known.join(", ")
    )
}

/// Drops the records of the file's last height (rewriting the file without them) and returns
/// that height, where a resumed run starts; `None` for a new or empty file.
fn prepare_output(path: &Path) -> anyhow::Result<Option<u64>> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(None);
    };
    let mut lines = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let height = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["height"].as_u64());
        match height {
            Some(h) => lines.push((h, line)),
            // A torn last line from an interrupted run; anything else is not our file.
            None if n > 0 => break,
            None => bail!(
                "{} is not a credit sync file (line {} has no height); choose another --out",
                path.display(),
                n + 1
            ),
        }
    }
    let Some(&(last, _)) = lines.last() else {
        return Ok(None);
    };
    let kept: String = lines
        .iter()
        .filter(|(h, _)| *h < last)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let tmp = path.with_extension("resume.tmp");
    std::fs::write(&tmp, kept).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(Some(last))
}

fn fetch(url: &str, from: u64, count: u64, bodies: bool) -> Result<Vec<LightBlock>, SourceProblem> {
    let target = format!("{url}/v1/light/blocks?from={from}&count={count}&bodies={bodies}");
    let response = caihong_cli::api_client::authorized(caihong_cli::api_client::get(&target))
        .timeout(Duration::from_secs(60))
        .call()
        .map_err(|e| SourceProblem::Unreachable(format!("{target}: {e}")))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes)
        .map_err(|e| SourceProblem::Unreachable(format!("{target}: {e}")))?;
    let blocks = decode_light(&bytes).map_err(SourceProblem::Forged)?;
    if blocks.is_empty() {
        return Err(SourceProblem::Forged(format!(
            "it sent no blocks for height {from}"
        )));
    }
    Ok(blocks)
}

/// Verifies from where `client` stands up to the source's tip, appending kept records after
/// each verified batch. Returns the tip.
fn sync_from(
    url: &str,
    client: &mut LightClient,
    first_body: u64,
    filter: &Filter,
    out: &mut std::fs::File,
    written: &mut u64,
) -> Result<u64, SourceProblem> {
    let tip = match http_get(&format!("{url}/v1/status")) {
        Ok(s) => s["height"].as_u64().unwrap_or(0),
        Err(Failure::Rejected { status, .. }) => {
            return Err(SourceProblem::Unreachable(format!(
                "status answered HTTP {status}"
            )));
        }
        Err(Failure::Local(e)) => return Err(SourceProblem::Unreachable(format!("{e:#}"))),
    };
    // Heights verified from this source, drawn only when stderr is a terminal.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(tip.saturating_sub(client.height())),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "[{bar:30}] {pos}/{len} blocks verified from {msg} ({eta} left)",
    ) {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar.set_message(url.to_string());
    let start = client.height();
    while client.height() < tip {
        let from = client.height() + 1;
        let bodies = from >= first_body;
        let count = if bodies {
            MAX_LIGHT_BLOCKS.min(tip - client.height())
        } else {
            MAX_LIGHT_BLOCKS.min(first_body - from)
        };
        let blocks = fetch(url, from, count, bodies)?;
        let mut lines = String::new();
        let mut result = Ok(());
        for block in &blocks {
            if bodies && block.body.is_none() {
                result = Err(SourceProblem::Forged(format!(
                    "height {}: asked for the body, got only the header",
                    block.header.height
                )));
                break;
            }
            match client.verify(block) {
                Ok(credits) => {
                    for c in credits.iter().filter(|c| filter.keeps(c)) {
                        lines += &json!({
                            "height": c.height,
                            "block_hash": c.block_hash,
                            "tx_hash": c.tx_hash,
                            "index": c.index,
                            "record": c.record,
                        })
                        .to_string();
                        lines.push('\n');
                        *written += 1;
                    }
                }
                Err(e) => {
                    result = Err(SourceProblem::Forged(e.to_string()));
                    break;
                }
            }
        }
        // What verified before a failure is still good: write it, then report.
        out.write_all(lines.as_bytes())
            .and_then(|_| out.sync_data())
            .map_err(|e| SourceProblem::Unreachable(format!("writing the output: {e}")))?;
        bar.set_position(client.height() - start);
        result?;
    }
    bar.finish_and_clear();
    Ok(tip)
}
