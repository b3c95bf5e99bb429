//! Signing and submitting transactions to a node: the part every `caihong tx` command, the
//! demo and the importers share.
//!
//! The chain id comes from the node's status and the nonce from its `/v1/nonce` answer, so an
//! administrator only says which key signs and which node to send to. A nonce taken by a
//! concurrent submission from the same key is retried with a fresh nonce a few times before the
//! conflict is reported.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use caihong_chaincode::{Action, PublicKey, SignedTransaction, Transaction};
use caihong_node::config::{Home, KeyFile};
use clap::Args;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::node::{Failure, NodeArgs, http_get, http_post_json};

/// How often a nonce conflict is retried with a fresh nonce.
const NONCE_RETRIES: usize = 3;

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

/// A node to submit to, with the chain id it reported.
pub struct Client {
    pub url: String,
    pub chain_id: String,
}

impl Client {
    /// Asks the node at `url` for its chain id.
    pub fn connect(url: &str) -> Result<Client, Failure> {
        let status = http_get(&format!("{url}/v1/status"))?;
        let chain_id = status["chain_id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("{url}: status has no chain_id"))?
            .to_string();
        Ok(Client {
            url: url.to_string(),
            chain_id,
        })
    }

    /// The next nonce for `key` (committed nonces and those pending in the node's mempool).
    pub fn next_nonce(&self, key: &PublicKey) -> Result<u64, Failure> {
        let v = http_get(&format!("{}/v1/nonce/{}", self.url, key.to_hex()))?;
        Ok(v["next_free_nonce"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("{}: nonce answer has no next_free_nonce", self.url))?)
    }

    pub fn sign(&self, key: &SigningKey, nonce: u64, action: Action) -> SignedTransaction {
        Transaction {
            chain_id: self.chain_id.clone(),
            signer: PublicKey::from(&key.verifying_key()),
            nonce,
            action,
        }
        .sign(key)
    }

    /// Posts a signed transaction; with `wait`, the answer is its receipt (`status` committed or
    /// failed) unless the wait timed out.
    pub fn post(&self, tx: &SignedTransaction, wait: bool) -> Result<Value, Failure> {
        let body = json!({"tx": hex::encode(tx.encode()), "wait": wait, "timeout_ms": 60_000});
        http_post_json(
            &format!("{}/v1/tx", self.url),
            &body,
            Duration::from_secs(75),
        )
    }

    /// Signs `action` with the next nonce and submits it, retrying nonce conflicts.
    pub fn submit(&self, key: &SigningKey, action: Action, wait: bool) -> Result<Value, Failure> {
        let signer = PublicKey::from(&key.verifying_key());
        let mut attempt = 0;
        loop {
            let nonce = self.next_nonce(&signer)?;
            let tx = self.sign(key, nonce, action.clone());
            match self.post(&tx, wait) {
                Err(Failure::Rejected { status: 409, .. }) if attempt < NONCE_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200 * attempt as u64));
                }
                other => return other,
            }
        }
    }
}

/// Submits `action` as `args` say and prints the outcome: the exit code is 0 when accepted (or
/// committed, with `--wait`), 1 when the chain rejected or failed it, 2 for local errors.
pub fn run_action(args: &TxArgs, action: Action) -> anyhow::Result<ExitCode> {
    let url = args.node.url()?;
    let key = args.signing_key()?;
    let result = Client::connect(&url).and_then(|c| c.submit(&key, action, args.wait));
    match result {
        Ok(v) => {
            if args.node.json {
                println!("{}", serde_json::to_string_pretty(&v).expect("json"));
                if v["status"] == "failed" {
                    eprintln!("{}", failure_line(&v));
                }
            } else {
                print_receipt(&v);
            }
            Ok(if v["status"] == "failed" {
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
            Ok(ExitCode::from(1))
        }
        Err(Failure::Local(e)) => Err(e),
    }
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
fn failure_line(v: &Value) -> String {
    format!(
        "failed ({}): {}",
        v["error"]["code"].as_str().unwrap_or("?"),
        v["error"]["message"].as_str().unwrap_or_default()
    )
}

fn print_receipt(v: &Value) {
    let hash = v["hash"].as_str().unwrap_or_default();
    match v["status"].as_str() {
        Some("committed") => {
            println!("committed  tx {hash} at height {}", v["height"]);
            if let Some(out) = describe_output(&v["output"]) {
                println!("{out}");
            }
        }
        Some("failed") => {
            println!("failed     tx {hash} at height {}", v["height"]);
            eprintln!("{}", failure_line(v));
        }
        _ => {
            println!("accepted   tx {hash} (pending)");
            if let Some(note) = v["note"].as_str() {
                println!("{note}");
            }
        }
    }
}

/// What a committed transaction produced, in words (see `TxOutput`).
fn describe_output(output: &Value) -> Option<String> {
    let (kind, value) = match output {
        Value::Object(map) => map.iter().next()?,
        _ => return None,
    };
    Some(match kind.as_str() {
        "Proposal" => format!("proposal (提案) {value}"),
        "SubjectVersion" => format!(
            "subject (市场主体) {} version {}",
            value["uscc"].as_str().unwrap_or_default(),
            value["version"]
        ),
        "CreditRecord" => format!("credit record (信用记录) {value}"),
        "Certificate" => format!("certificate (证书) {}", value.as_str().unwrap_or_default()),
        "Expert" => format!("expert (评标专家) {}", value.as_str().unwrap_or_default()),
        "Extraction" => format!("extraction (专家抽取) {value}"),
        "Revoked" => format!("revoked {} certificate serials", value["count"]),
        other => format!("{other}: {value}"),
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
