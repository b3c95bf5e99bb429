//! A typed client of a node's HTTP API, on the contract the node's handlers answer with
//! (`caihong_node::contract`): the `caihong` commands, the benchmark and the multi-process
//! tests all talk to nodes through it.
//!
//! The chain id comes from the node's status and the nonce from its `/v1/nonce` answer, so a
//! caller only says which key signs. A nonce taken by a concurrent submission from the same
//! key is retried with a fresh nonce a few times before the conflict is reported.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use caihong_chaincode::{Action, Hash, PublicKey, SignedTransaction, Transaction};
use caihong_node::contract::{
    BatchAnswer, BlockAnswer, EventsAnswer, NonceAnswer, Status, SubmitTx, SubmitTxs, TxAnswer,
    route,
};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How often a nonce conflict is retried with a fresh nonce.
const NONCE_RETRIES: usize = 3;

/// How long a request waits for its answer, in milliseconds, unless [`set_timeout`] changed
/// it (a waited-for transaction waits that much longer than the commit wait).
static REQUEST_TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);

/// How long each request of this process waits for its answer (`caihong --timeout`).
pub fn set_timeout(timeout: Duration) {
    REQUEST_TIMEOUT_MS.store(timeout.as_millis() as u64, Ordering::Relaxed);
}

fn request_timeout() -> Duration {
    Duration::from_millis(REQUEST_TIMEOUT_MS.load(Ordering::Relaxed))
}

/// The HTTP agent of this process: the default one (Mozilla's web roots for `https://`) unless
/// [`set_ca_cert`] named the CA that signs the nodes' API certificates.
static AGENT: std::sync::RwLock<Option<ureq::Agent>> = std::sync::RwLock::new(None);

fn agent() -> ureq::Agent {
    if let Some(agent) = AGENT.read().expect("agent").clone() {
        return agent;
    }
    // Commands without --ca-cert (the demo, the benchmark) still follow $CAIHONG_CA_CERT.
    if let Some(ca) = std::env::var_os("CAIHONG_CA_CERT")
        && set_ca_cert(std::path::Path::new(&ca)).is_ok()
        && let Some(agent) = AGENT.read().expect("agent").clone()
    {
        return agent;
    }
    ureq::AgentBuilder::new().build()
}

/// A GET of `url` through this process's agent (its TLS trust), without the token.
pub fn get(url: &str) -> ureq::Request {
    agent().get(url)
}

/// Trusts only the CA certificate(s) in `path` (PEM) for `https://` nodes (`caihong
/// --ca-cert`, e.g. the alliance's own CA).
pub fn set_ca_cert(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.with_context(|| format!("{} is not PEM", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{} holds a certificate rustls refuses", path.display()))?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "{} holds no CA certificate (--ca-cert)",
        path.display()
    );
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new(config))
        .build();
    *AGENT.write().expect("agent") = Some(agent);
    Ok(())
}

/// The bearer token every request of this process sends (`caihong --token`), if any.
static TOKEN: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

/// Sends `token` (an API client's, from `caihong api-client add`) with every request.
pub fn set_token(token: Option<String>) {
    *TOKEN.write().expect("token") = token.filter(|t| !t.trim().is_empty());
}

/// `request` with the process's bearer token (`set_token`, else `$CAIHONG_TOKEN`), when there
/// is one.
pub fn authorized(request: ureq::Request) -> ureq::Request {
    let token = TOKEN
        .read()
        .expect("token")
        .clone()
        .or_else(|| std::env::var("CAIHONG_TOKEN").ok())
        .filter(|t| !t.trim().is_empty());
    match token {
        Some(token) => request.set("authorization", &format!("Bearer {}", token.trim())),
        None => request,
    }
}

/// An HTTP failure, split into "the node said no" and "could not reach it".
#[derive(Debug)]
pub enum Failure {
    /// The node answered with an error: its status and JSON body (`contract::ErrorBody`).
    Rejected { status: u16, body: Value },
    /// Usage or transport problem.
    Local(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Local(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rejected { status, body } => write!(f, "HTTP {status}: {body}"),
            Failure::Local(e) => write!(f, "{e:#}"),
        }
    }
}

/// GETs `url` and reads the JSON answer as `T`.
pub fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, Failure> {
    answer(
        authorized(agent().get(url))
            .timeout(request_timeout())
            .call(),
        url,
    )
}

/// POSTs `body` as JSON to `url` and reads the JSON answer as `T`.
pub fn post_json<T: DeserializeOwned>(
    url: &str,
    body: &impl Serialize,
    timeout: Duration,
) -> Result<T, Failure> {
    answer(
        authorized(agent().post(url))
            .timeout(timeout)
            .send_json(body),
        url,
    )
}

/// POSTs raw bytes (a DER certificate, ...) to `url`.
pub fn post_bytes<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, Failure> {
    answer(
        authorized(agent().post(url))
            .timeout(request_timeout())
            .set("content-type", "application/octet-stream")
            .send_bytes(body),
        url,
    )
}

fn answer<T: DeserializeOwned>(
    result: Result<ureq::Response, ureq::Error>,
    url: &str,
) -> Result<T, Failure> {
    match result {
        Ok(r) => r.into_json().map_err(|e| {
            Failure::Local(anyhow::anyhow!(
                "{url}: the answer is not what the API contract says: {e}"
            ))
        }),
        Err(ureq::Error::Status(status, r)) => {
            // A JSON error body, or the text of one that is not (e.g. a TLS port's answer to
            // plain HTTP, or a proxy's page).
            let text = r.into_string().unwrap_or_default();
            let body = serde_json::from_str(&text)
                .unwrap_or_else(|_| serde_json::json!({ "error": text.trim() }));
            Err(Failure::Rejected { status, body })
        }
        Err(ureq::Error::Transport(t)) => {
            // The transport error's own text repeats the URL: say it once.
            let cause = std::error::Error::source(&t)
                .map(|e| e.to_string())
                .or_else(|| t.message().map(str::to_string))
                .unwrap_or_default();
            let timed_out = cause.contains("timed out");
            let certificate = cause.contains("certificate");
            Err(Failure::Local(if certificate {
                anyhow::anyhow!(
                    "node at {url} presented a TLS certificate this machine does not trust \
                     ({cause}): give the CA that signed it with --ca-cert FILE (or \
                     CAIHONG_CA_CERT)"
                )
            } else if timed_out {
                anyhow::anyhow!(
                    "node at {url} did not answer within {} s ({cause}); is it overloaded or \
                     stuck? Check its log, or give it longer with --timeout",
                    request_timeout().as_secs()
                )
            } else {
                anyhow::anyhow!(
                    "node unreachable at {url}: {}: {cause}; is the node running, and is the \
                     URL (--node) or the home (--home) the right one?",
                    t.kind()
                )
            }))
        }
    }
}

/// `text` percent-encoded for a query string (letters, digits and `-._~,:` as they are).
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A node to talk to, with the chain id it reported.
#[derive(Debug, Clone)]
pub struct Client {
    pub url: String,
    pub chain_id: String,
}

impl Client {
    /// Asks the node at `url` for its chain id.
    pub fn connect(url: &str) -> Result<Client, Failure> {
        let url = url.trim_end_matches('/');
        let status: Status = get_json(&format!("{url}{}", route::STATUS))?;
        Ok(Client {
            url: url.to_string(),
            chain_id: status.chain_id,
        })
    }

    /// The full URL of `path` on this node.
    pub fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// GETs `path` (a [`route`] with its parameters filled in).
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        get_json(&self.url_of(path))
    }

    pub fn status(&self) -> Result<Status, Failure> {
        self.get(route::STATUS)
    }

    pub fn block(&self, height: u64) -> Result<BlockAnswer, Failure> {
        self.get(&route::path(route::BLOCK, &[&height.to_string()]))
    }

    /// A transaction's state: committed or failed with its receipt, or pending.
    pub fn tx(&self, hash: &Hash) -> Result<TxAnswer, Failure> {
        self.get(&route::path(route::TX_BY_HASH, &[&hash.to_hex()]))
    }

    /// The next nonce for `key` (committed nonces and those pending in the node's mempool).
    pub fn next_nonce(&self, key: &PublicKey) -> Result<u64, Failure> {
        let answer: NonceAnswer = self.get(&route::path(route::NONCE, &[&key.to_hex()]))?;
        Ok(answer.next_free_nonce)
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

    /// Posts a signed transaction; with `wait`, the answer is its receipt (committed or
    /// failed) unless the wait (60 s) timed out.
    pub fn post(&self, tx: &SignedTransaction, wait: bool) -> Result<TxAnswer, Failure> {
        let request = SubmitTx {
            tx: hex::encode(tx.encode()),
            wait,
            timeout_ms: Some(60_000),
        };
        let commit_wait = if wait {
            Duration::from_secs(60)
        } else {
            Duration::ZERO
        };
        post_json(
            &self.url_of(route::TX),
            &request,
            commit_wait + request_timeout(),
        )
    }

    /// One page of the committed-event feed (`GET /v1/events`) after `after` (a cursor, `H` or
    /// `H:N`), of `kinds` (families or kinds, comma-separated; all when `None`), at most
    /// `limit` events; when there are none yet, the node waits up to `wait_secs` for one.
    pub fn events(
        &self,
        after: &str,
        kinds: Option<&str>,
        limit: Option<usize>,
        wait_secs: u64,
    ) -> Result<EventsAnswer, Failure> {
        let mut url = format!(
            "{}?after={}&wait={wait_secs}",
            self.url_of(route::EVENTS),
            query_value(after)
        );
        if let Some(kinds) = kinds {
            url += &format!("&kinds={}", query_value(kinds));
        }
        if let Some(limit) = limit {
            url += &format!("&limit={limit}");
        }
        answer(
            authorized(agent().get(&url))
                .timeout(Duration::from_secs(wait_secs) + request_timeout())
                .call(),
            &url,
        )
    }

    /// Posts many signed transactions in one request (`POST /v1/txs`).
    pub fn post_batch(&self, txs: &[SignedTransaction]) -> Result<BatchAnswer, Failure> {
        let request = SubmitTxs {
            txs: txs.iter().map(|t| hex::encode(t.encode())).collect(),
        };
        post_json(&self.url_of(route::TXS), &request, request_timeout())
    }

    /// Signs `action` with the next nonce and submits it, retrying nonce conflicts.
    pub fn submit(
        &self,
        key: &SigningKey,
        action: Action,
        wait: bool,
    ) -> Result<TxAnswer, Failure> {
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
