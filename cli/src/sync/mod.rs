//! `caihong sync credit`: pulls credit records (and, into a database, subject versions) for
//! another region's systems and verifies every one from the alliance's genesis (see
//! `caihong_node::light`), so the region need not trust the node it asks.
//!
//! One loop verifies; a [`Sink`] keeps what verified. Three sinks: a JSON lines file
//! ([`file`]), a PostgreSQL database ([`postgres`]) and an HTTP endpoint ([`push`]). Each
//! keeps, with the data, where it stopped: the light client's trusted state after the last
//! block it holds and the id of the last credit record it holds. A rerun resumes from there
//! without re-verifying the chain, and skips records it already holds, so a run killed at any
//! moment neither loses nor repeats a record. Nothing a sink holds is removed by a rerun.

mod file;
mod postgres;
mod push;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use caihong_chaincode::credit::CreditKind;
use caihong_chaincode::genesis::Genesis;
use caihong_node::config::read_genesis;
use caihong_node::contract::route;
use caihong_node::light::{
    LightBlock, LightClient, MAX_LIGHT_BLOCKS, TrustedState, VerifiedCredit, VerifiedSubject,
    decode_light,
};
use clap::{ArgGroup, Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::node::{Failure, http_get};

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Credit records (信用记录), verified against genesis, into a JSON lines file, a
    /// PostgreSQL database (with subjects) or an HTTP endpoint.
    Credit(CreditSyncArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("destination").required(true).args(["out", "to", "post"])))]
pub struct CreditSyncArgs {
    /// A member node's API URL; repeat to fall back to other members when one fails.
    #[arg(long = "from", required = true)]
    pub sources: Vec<String>,
    /// The alliance's genesis.json: the only thing trusted.
    #[arg(long)]
    pub genesis: PathBuf,
    /// Only records committed after this height (a first run; a resumed run continues).
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// JSON lines file to append to; where it stopped is kept beside it in
    /// FILE.checkpoint.json.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// A PostgreSQL database (postgresql://user@host:port/db) to write `credit_records` and
    /// `subjects` into (docs/SQL.md); where it stopped is kept in the same database.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// An HTTP endpoint to POST each record to as JSON, in chain order, with an
    /// Idempotency-Key header; needs --state.
    #[arg(long, value_name = "URL")]
    pub post: Option<String>,
    /// With --post: the file that keeps where delivery stopped.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// With --post: a header to send with each record (`Name: value`); repeatable.
    #[arg(long = "post-header", value_name = "HEADER")]
    pub post_headers: Vec<String>,
    /// With --post: how long to keep retrying a record the endpoint does not accept before
    /// the run fails (resumable); with --follow it retries until it is accepted.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub retry_for: u64,
    /// Keep following the chain: poll the sources every --poll seconds after the tip.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: seconds between polls at the tip.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll: f64,
    /// Only records made by this member (e.g. `baotou`).
    #[arg(long)]
    pub member: Option<String>,
    /// Only this kind: violation, blacklist, blacklist-revocation, commendation, performance,
    /// social-credit, repair, revocation (or the Chinese term).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only subjects whose USCC carries this region code (positions 3–8), e.g. 150200.
    #[arg(long)]
    pub region: Option<String>,
    /// Print the outcome as one JSON object on stdout.
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

/// Where a sink stopped: the light client's state after the last block it holds, and the
/// last credit record it holds (records of later blocks may be held too when a run stopped
/// between writing them and saving this; those are skipped by id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub trusted: Option<TrustedState>,
    pub last_credit: Option<u64>,
    /// The filters the sink was filled with ([`Filter::describe`]); `None` when unknown.
    pub filter: Option<String>,
}

/// A verified range for a sink: what it holds after `after`, from `before`.
#[derive(Debug)]
pub struct Batch<'a> {
    pub before: &'a TrustedState,
    pub after: &'a TrustedState,
    pub credits: &'a [VerifiedCredit],
    pub subjects: &'a [VerifiedSubject],
    pub filter: &'a str,
    /// The last credit record the sink holds once it kept this batch (the run's count: the
    /// sinks save it, they do not keep their own).
    pub last_credit: Option<u64>,
}

/// Where verified data goes. `deliver` keeps the batch and the new [`Saved`] state so that a
/// crash at any point leaves the sink resumable: never a record without its predecessors,
/// never a saved state ahead of the data.
pub trait Sink {
    /// What the sink was told it holds; `None` for a new sink.
    fn saved(&mut self) -> anyhow::Result<Option<Saved>>;
    /// Keeps a verified batch; returns how many credit records and subject versions it wrote.
    fn deliver(&mut self, batch: &Batch) -> anyhow::Result<(u64, u64)>;
    /// Where the data goes, for messages.
    fn describe(&self) -> String;
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

    fn keeps_subject(&self, s: &VerifiedSubject) -> bool {
        self.region
            .as_ref()
            .is_none_or(|r| s.subject.uscc.region_code() == r)
    }

    /// The filters as the command line gives them, saved with the data: a rerun with other
    /// filters would leave holes, so it is refused.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = &self.member {
            parts.push(format!("--member {m}"));
        }
        if let Some(k) = self.kind {
            parts.push(format!("--kind {}", k.as_str()));
        }
        if let Some(r) = &self.region {
            parts.push(format!("--region {r}"));
        }
        parts.join(" ")
    }
}

/// Why a source could not serve a range.
enum SourceProblem {
    /// It sent data that does not verify: named, never written.
    Forged(String),
    Unreachable(String),
    /// The sink failed: the run stops (the sources are not at fault).
    Sink(anyhow::Error),
}

/// Counts for the progress line and the outcome.
#[derive(Default)]
struct Tally {
    records: u64,
    subjects: u64,
    heights: u64,
}

fn open_sink(args: &CreditSyncArgs) -> anyhow::Result<Box<dyn Sink>> {
    if let Some(out) = &args.out {
        return Ok(Box::new(file::FileSink::open(out)?));
    }
    if let Some(url) = &args.to {
        return Ok(Box::new(postgres::PgSink::connect(url)?));
    }
    let url = args.post.as_deref().expect("clap requires a destination");
    let Some(state) = &args.state else {
        bail!(
            "--post needs --state FILE: the file that keeps which records the endpoint has \
             accepted, so a rerun delivers the rest and nothing twice"
        );
    };
    Ok(Box::new(push::PushSink::open(
        url,
        state,
        &args.post_headers,
        (!args.follow).then(|| Duration::from_secs(args.retry_for)),
    )?))
}

/// `caihong sync credit`: resumes where the sink stopped and verifies ranges from the sources
/// in turn (following the chain with --follow). The resume, fallback and deliver steps share
/// the light client's state, so they stay in one loop.
fn credit(args: CreditSyncArgs) -> anyhow::Result<ExitCode> {
    caihong_cli::api_client::set_token(args.token.clone());
    if let Some(ca) = &args.ca_cert {
        caihong_cli::api_client::set_ca_cert(ca)?;
    }
    let genesis = read_genesis(&args.genesis)?;
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
    let mut sink = open_sink(&args)?;
    let saved = sink.saved()?;
    let described = filter.describe();
    // Commentary goes to stderr when stdout carries the JSON outcome.
    let say = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    if let Some(earlier) = saved.as_ref().and_then(|s| s.filter.as_ref())
        && *earlier != described
    {
        bail!(
            "{} was filled with filters [{earlier}], not [{described}]; rerun with the same \
             filters, or choose another destination",
            sink.describe(),
        );
    }
    let mut client = match saved.as_ref().and_then(|s| s.trusted.as_ref()) {
        Some(trusted) => LightClient::resume(&genesis, trusted)
            .map_err(|e| anyhow::anyhow!("{}: {e}", sink.describe()))?,
        None => LightClient::from_genesis(&genesis).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let mut last_credit = saved.as_ref().and_then(|s| s.last_credit);
    let resumed_from = client.height();
    if saved.is_some() {
        say(format!(
            "resuming {} at height {} (verified before; not verified again){}",
            sink.describe(),
            client.height(),
            last_credit.map_or(String::new(), |id| format!(", after credit record {id}"))
        ));
    }
    // Bodies (and so records) from this height on.
    let first_body = (client.height() + 1).max(args.since + 1);
    let sources: Vec<String> = args
        .sources
        .iter()
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut forged: Vec<String> = Vec::new();
    let mut unreachable = Vec::new();
    let mut served_by = None;
    let bar = progress_bar();
    loop {
        for url in &sources {
            if forged.contains(url) {
                continue;
            }
            let mut run = Run {
                client: &mut client,
                sink: sink.as_mut(),
                filter: &filter,
                described: &described,
                first_body,
                last_credit: &mut last_credit,
                tally: &mut tally,
                bar: &bar,
            };
            match run.sync_from(url) {
                Ok(tip) => {
                    served_by = Some((url.clone(), tip));
                    break;
                }
                Err(SourceProblem::Forged(why)) => {
                    bar.suspend(|| {
                        eprintln!(
                            "REJECTED {url}: {why}; nothing from it past height {} was written",
                            client.height()
                        )
                    });
                    forged.push(url.clone());
                }
                Err(SourceProblem::Unreachable(why)) => {
                    bar.suspend(|| eprintln!("unreachable {url}: {why}"));
                    if !unreachable.contains(url) {
                        unreachable.push(url.clone());
                    }
                }
                Err(SourceProblem::Sink(e)) => {
                    bar.finish_and_clear();
                    return Err(e.context(format!(
                        "{} stopped at height {} with {} records written this run; a rerun \
                         resumes there",
                        sink.describe(),
                        client.height(),
                        tally.records
                    )));
                }
            }
        }
        if !args.follow || forged.len() == sources.len() {
            break;
        }
        std::thread::sleep(Duration::from_secs_f64(args.poll.max(0.05)));
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let outcome = json!({
            "verified_height": client.height(),
            "resumed_from": resumed_from,
            "heights_verified": tally.heights,
            "source": served_by.as_ref().map(|(url, _)| url),
            "chain_id": client.chain_id(),
            "genesis": args.genesis.display().to_string(),
            "destination": sink.describe(),
            "records_written": tally.records,
            "subjects_written": tally.subjects,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "heights_per_second": (tally.heights as f64 / seconds.max(1e-9)).round(),
            "records_per_second": (tally.records as f64 / seconds.max(1e-9)).round(),
            "forged": forged,
            "unreachable": unreachable,
        });
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
    }
    match served_by {
        Some((url, tip)) => {
            if !args.json {
                println!(
                    "verified blocks {}..={tip} from {url} against genesis {} (chain {}) in {seconds:.1} s; {} credit records (信用记录){} written to {}",
                    resumed_from + 1,
                    args.genesis.display(),
                    client.chain_id(),
                    tally.records,
                    if tally.subjects > 0 {
                        format!(" and {} subject versions", tally.subjects)
                    } else {
                        String::new()
                    },
                    sink.describe()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        None if !forged.is_empty() => {
            eprintln!(
                "no source served verifiable data; {} verified records were written, up to height {}",
                tally.records,
                client.height()
            );
            Ok(ExitCode::from(1))
        }
        None => bail!(
            "no source reachable ({}); {} verified records were written; a rerun resumes at \
             height {}",
            unreachable.join(", "),
            tally.records,
            client.height()
        ),
    }
}

/// Heights verified and records written, drawn only when stderr is a terminal.
fn progress_bar() -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "[{bar:30}] height {pos}/{len} ({per_sec}, {eta} left) {msg}",
    ) {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar
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

fn fetch(url: &str, from: u64, count: u64, bodies: bool) -> Result<Vec<LightBlock>, SourceProblem> {
    let target = format!("{url}/v1/light/blocks?from={from}&count={count}&bodies={bodies}");
    let response = caihong_cli::api_client::authorized(caihong_cli::api_client::get(&target))
        .timeout(Duration::from_secs(60))
        .call()
        .map_err(|e| SourceProblem::Unreachable(format!("{target}: {}", refusal(e))))?;
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

/// What a source that answered with an error status said (its JSON `error`, e.g. that it
/// keeps only recent state versions), or the transport error.
fn refusal(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, response) => {
            let body = response.into_string().unwrap_or_default();
            let said = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(body);
            format!("status {code}: {said}")
        }
        e => e.to_string(),
    }
}

/// One run's verifying state, shared by the sources it falls back between.
struct Run<'a> {
    client: &'a mut LightClient,
    sink: &'a mut dyn Sink,
    filter: &'a Filter,
    described: &'a str,
    first_body: u64,
    /// The last credit record the sink holds: later blocks' records up to it are skipped.
    last_credit: &'a mut Option<u64>,
    tally: &'a mut Tally,
    bar: &'a indicatif::ProgressBar,
}

impl Run<'_> {
    /// Verifies from where the client stands up to the source's tip, delivering each verified
    /// range to the sink. Returns the tip.
    fn sync_from(&mut self, url: &str) -> Result<u64, SourceProblem> {
        let tip = match http_get(&format!("{url}/v1/status")) {
            Ok(s) => s["height"].as_u64().unwrap_or(0),
            Err(Failure::Rejected { status, .. }) => {
                return Err(SourceProblem::Unreachable(format!(
                    "status answered HTTP {status}"
                )));
            }
            Err(Failure::Local(e)) => return Err(SourceProblem::Unreachable(format!("{e:#}"))),
        };
        self.bar.set_length(tip);
        self.bar.set_position(self.client.height());
        while self.client.height() < tip {
            let from = self.client.height() + 1;
            let bodies = from >= self.first_body;
            let count = if bodies {
                MAX_LIGHT_BLOCKS.min(tip - self.client.height())
            } else {
                MAX_LIGHT_BLOCKS.min(self.first_body - from)
            };
            let blocks = fetch(url, from, count, bodies)?;
            let before = self.client.trusted();
            let mut credits = Vec::new();
            let mut subjects = Vec::new();
            let mut result = Ok(());
            for block in &blocks {
                if bodies && block.body.is_none() {
                    result = Err(SourceProblem::Forged(format!(
                        "height {}: asked for the body, got only the header",
                        block.header.height
                    )));
                    break;
                }
                match self.client.verify(block) {
                    Ok(verified) => {
                        let fresh = |c: &&VerifiedCredit| {
                            self.last_credit.is_none_or(|last| c.record.id > last)
                        };
                        credits.extend(
                            verified
                                .credits
                                .iter()
                                .filter(fresh)
                                .filter(|c| self.filter.keeps(c))
                                .cloned(),
                        );
                        subjects.extend(
                            verified
                                .subjects
                                .into_iter()
                                .filter(|s| self.filter.keeps_subject(s)),
                        );
                    }
                    Err(e) => {
                        result = Err(SourceProblem::Forged(e.to_string()));
                        break;
                    }
                }
            }
            // What verified before a failure is still good: keep it, then report.
            let after = self.client.trusted();
            if after.height > before.height {
                let last_credit = credits.last().map(|c| c.record.id).or(*self.last_credit);
                let batch = Batch {
                    before: &before,
                    after: &after,
                    credits: &credits,
                    subjects: &subjects,
                    filter: self.described,
                    last_credit,
                };
                let (records, versions) = self.sink.deliver(&batch).map_err(SourceProblem::Sink)?;
                *self.last_credit = last_credit;
                self.tally.records += records;
                self.tally.subjects += versions;
                self.tally.heights += after.height - before.height;
                self.bar.set_position(after.height);
                self.bar
                    .set_message(format!("{} records written", self.tally.records));
            }
            result?;
        }
        Ok(tip)
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a
/// temporary file beside it, synced, then renamed over it, then the directory synced.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A verified credit record as the file and push sinks write it.
fn credit_json(c: &VerifiedCredit, chain_id: &str) -> serde_json::Value {
    json!({
        "chain_id": chain_id,
        "height": c.height,
        "block_hash": c.block_hash,
        "tx_hash": c.tx_hash,
        "index": c.index,
        "record": c.record,
    })
}
