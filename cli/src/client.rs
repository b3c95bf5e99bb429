//! Submitting transactions from the command line: which key signs, which node to send to, and
//! how the outcome is printed and turned into an exit code. The submitting itself is
//! [`caihong_cli::Client`]'s.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use caihong_chaincode::ca::CaAction;
use caihong_chaincode::governance::{GovernanceAction, Proposal, ProposalStatus};
use caihong_chaincode::{Action, TxOutput};
pub use caihong_cli::Client;
use caihong_node::config::{Home, KeyFile};
use caihong_node::contract::{TxAnswer, TxState, route};
use clap::Args;
use ed25519_dalek::SigningKey;
use serde_json::Value;

use crate::node::{Failure, NodeArgs};

/// Who signs, where to send, and whether to wait.
#[derive(Debug, Args, Clone)]
pub struct TxArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Signing key file (default: the admin key of the member at --home).
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// Wait until the transaction is committed or failed (up to 60 s).
    #[arg(long, global = true)]
    pub wait: bool,
    /// Print only what the transaction created (a record, proposal or extraction id, a
    /// fingerprint), for `$(…)` in scripts. Waits for the commit, like --wait.
    #[arg(long, short, global = true, conflicts_with = "json")]
    pub quiet: bool,
}

impl TxArgs {
    pub fn signing_key(&self) -> anyhow::Result<SigningKey> {
        if let Some(path) = &self.key {
            return Ok(KeyFile::read(path)?);
        }
        match self.node.home_dir() {
            Some(h) => KeyFile::read(&Home::admin_key_path(&h))
                .with_context(|| format!("the admin key of {}", h.display())),
            None => anyhow::bail!(
                "say which key signs: --key FILE, or --home HOME for the member's admin key"
            ),
        }
    }
}

/// Submits `action` as `args` say and prints the outcome: the exit code is 0 when accepted (or
/// committed, with `--wait`), 1 when the chain rejected or failed it, 2 for local errors.
pub fn run_action(args: &TxArgs, action: Action) -> anyhow::Result<ExitCode> {
    let url = args.node.url()?;
    let key = args.signing_key()?;
    crate::session::catch_up(&url, std::time::Duration::from_secs(args.node.timeout));
    // What a CA transaction's hash output names depends on the action (an issuer's or a
    // subject certificate's fingerprint).
    let issuer = matches!(
        action,
        Action::Ca(CaAction::RegisterIssuer { .. } | CaAction::SetRecognition { .. })
    );
    let voted_on = match &action {
        Action::Governance(GovernanceAction::Vote { proposal, .. }) => Some(*proposal),
        _ => None,
    };
    let result = Client::connect(&url).and_then(|client| {
        Ok((
            client.submit(&key, action, args.wait || args.quiet)?,
            client,
        ))
    });
    match result {
        Ok((answer, client)) => {
            if let Some(height) = answer.height {
                crate::session::remember(&client, height);
            }
            if args.quiet {
                print_created(&answer);
            } else if args.node.json {
                println!("{}", serde_json::to_string_pretty(&answer).expect("json"));
                if answer.status == TxState::Failed {
                    eprintln!("{}", failure_line(&answer));
                }
            } else {
                print_receipt(&answer, issuer);
                if let (Some(id), TxState::Committed) = (voted_on, answer.status) {
                    print_proposal_state(&client, id);
                }
            }
            Ok(if answer.status == TxState::Failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(Failure::Rejected { status, body }) => {
            if args.node.json {
                println!("{}", serde_json::to_string_pretty(&body).expect("json"));
            }
            eprintln!("rejected by {url}: {}", explain_rejection(status, &body));
            if body["code"] == "UNKNOWN_SIGNER"
                && let Some(hint) = node_key_hint(args, &key)
            {
                eprintln!("{hint}");
            }
            Ok(ExitCode::from(1))
        }
        Err(Failure::Local(e)) => Err(e),
    }
}

/// When the key that signed is a member's node key (which signs consensus messages, not
/// transactions), says so: the usual slip is `--key HOME/node_key.json`.
fn node_key_hint(args: &TxArgs, key: &SigningKey) -> Option<String> {
    let dir = match &args.key {
        Some(path) => path.parent()?.to_path_buf(),
        None => args.node.home_dir()?,
    };
    let node_key = KeyFile::read(&Home::node_key_path(&dir)).ok()?;
    (node_key.verifying_key() == key.verifying_key()).then(|| {
        format!(
            "the signing key is the node key of {} (it signs consensus messages, not \
             transactions); sign with an operator key: {} or --key",
            dir.display(),
            Home::admin_key_path(&dir).display()
        )
    })
}

/// One line an administrator can act on, from an API error body.
pub fn explain_rejection(status: u16, body: &Value) -> String {
    let message = body["error"].as_str().unwrap_or("request failed");
    match body["code"].as_str() {
        Some("BAD_NONCE") => format!(
            "nonce conflict (BAD_NONCE): {message}; another transaction from this key is pending: retry"
        ),
        Some(code) => format!("{code}: {message}"),
        None => format!("HTTP {status}: {message}"),
    }
}

/// `failed (CODE): message` of a failure receipt: the chain ran the transaction and refused it.
pub fn failure_line(answer: &TxAnswer) -> String {
    match &answer.error {
        Some(e) => format!("failed ({}): {}", e.code, e.message),
        None => "failed (?)".to_string(),
    }
}

fn print_receipt(answer: &TxAnswer, issuer: bool) {
    let hash = &answer.hash;
    let height = answer.height.unwrap_or_default();
    match answer.status {
        TxState::Committed => {
            println!("committed  tx {hash} at height {height}");
            let output = answer.output.as_ref();
            if let Some(out) = output.and_then(|o| describe_output(o, issuer)) {
                println!("{out}");
            }
        }
        TxState::Failed => {
            println!("failed     tx {hash} at height {height}");
            eprintln!("{}", failure_line(answer));
        }
        TxState::Pending => {
            println!("accepted   tx {hash} (pending)");
            if let Some(note) = &answer.note {
                println!("{note}");
            }
        }
    }
}

/// `--quiet`: the created object's id alone on stdout; a failure on stderr.
fn print_created(answer: &TxAnswer) {
    match (answer.status, &answer.output) {
        (TxState::Failed, _) => eprintln!("{}", failure_line(answer)),
        (_, Some(output)) => {
            if let Some(id) = created_id(output) {
                println!("{id}");
            }
        }
        (_, None) => {}
    }
}

/// The id a script goes on with: what `describe_output` names, without the words.
pub fn created_id(output: &TxOutput) -> Option<String> {
    Some(match output {
        TxOutput::None => return None,
        TxOutput::Proposal(id) | TxOutput::CreditRecord(id) | TxOutput::Extraction(id) => {
            id.to_string()
        }
        TxOutput::SubjectVersion { version, .. } => version.to_string(),
        TxOutput::Certificate(hash) | TxOutput::Expert(hash) => hash.to_string(),
        TxOutput::Revoked { count } => count.to_string(),
    })
}

/// After a vote: where the proposal stands now (passed, still open with its votes, …).
fn print_proposal_state(client: &Client, id: u64) {
    let path = route::path(route::PROPOSAL, &[&id.to_string()]);
    let Ok(p) = client.get::<Proposal>(&path) else {
        return;
    };
    let approve = p.votes.values().filter(|v| **v).count();
    let against = p.votes.len() - approve;
    let state = match &p.status {
        ProposalStatus::Open => format!("still open until height {}", p.expires_height),
        ProposalStatus::Passed { effective_height } => {
            format!("passed; takes effect at height {effective_height}")
        }
        ProposalStatus::Rejected => "rejected".to_string(),
        ProposalStatus::Applied { height } => format!("applied at height {height}"),
        ProposalStatus::Failed { height, reason } => {
            format!("passed but failed at height {height}: {reason}")
        }
    };
    println!("proposal (提案) {id}: {state} ({approve} for, {against} against)");
}

/// What a committed transaction produced, in words (with the id to use in later commands).
pub fn describe_output(output: &TxOutput, issuer: bool) -> Option<String> {
    Some(match output {
        TxOutput::None => return None,
        TxOutput::Proposal(id) => format!("proposal (提案) {id}"),
        TxOutput::SubjectVersion { uscc, version } => {
            format!("subject (市场主体) {uscc} version {version}")
        }
        TxOutput::CreditRecord(id) => format!("credit record (信用记录) {id}"),
        TxOutput::Certificate(hash) if issuer => {
            format!("issuer (CA 机构) fingerprint {hash} (what ca recognize --issuer takes)")
        }
        TxOutput::Certificate(hash) => format!("certificate (证书) fingerprint {hash}"),
        TxOutput::Expert(hash) => format!("expert (评标专家) {hash}"),
        TxOutput::Extraction(id) => format!("extraction (专家抽取) {id}"),
        TxOutput::Revoked { count } => format!("revoked {count} certificate serials"),
    })
}

/// A failure as an error, for commands that stop at the first one.
pub fn failure(f: Failure) -> anyhow::Error {
    match f {
        Failure::Rejected { status, body } => {
            anyhow::anyhow!("rejected: {}", explain_rejection(status, &body))
        }
        Failure::Local(e) => e,
    }
}
