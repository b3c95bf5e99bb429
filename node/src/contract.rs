//! The HTTP API's contract: its routes, and the requests and answers of the routes a client
//! acts on. The node's handlers ([`crate::api`]) answer with these types and the CLI's client
//! (`caihong_cli::Client`) and the multi-process tests read them, so the two sides cannot
//! drift apart. Read routes that return a chaincode record (a subject, a credit record, an
//! expert, ...) answer with that record's own type, serialized as JSON.
//!
//! docs/API.md describes every route for people; this module is what code compiles against.

use caihong_chaincode::{SignedTransaction, TxOutput};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Route paths. Segments in braces are parameters: fill them with [`route::path`].
pub mod route {
    pub const HEALTHZ: &str = "/healthz";
    pub const METRICS: &str = "/metrics";
    pub const STATUS: &str = "/v1/status";
    pub const TX: &str = "/v1/tx";
    pub const TXS: &str = "/v1/txs";
    pub const TX_BY_HASH: &str = "/v1/tx/{hash}";
    pub const LATEST_BLOCK: &str = "/v1/blocks/latest";
    pub const BLOCK: &str = "/v1/blocks/{height}";
    pub const STATE_PROOF: &str = "/v1/state/proof";
    pub const VALIDATORS: &str = "/v1/validators";
    pub const LIGHT_BLOCKS: &str = "/v1/light/blocks";
    pub const NONCE: &str = "/v1/nonce/{key}";
    pub const MEMBERS: &str = "/v1/members";
    pub const EVIDENCE: &str = "/v1/evidence";
    pub const PROPOSALS: &str = "/v1/governance/proposals";
    pub const PROPOSAL: &str = "/v1/governance/proposals/{id}";
    pub const SUBJECT: &str = "/v1/subjects/{uscc}";
    pub const SUBJECT_HISTORY: &str = "/v1/subjects/{uscc}/history";
    pub const CREDIT_RECORD: &str = "/v1/credit/records/{id}";
    pub const CREDIT_BY_SUBJECT: &str = "/v1/credit/by-subject/{uscc}";
    pub const CREDIT_RESTRICTION: &str = "/v1/credit/restriction/{uscc}";
    pub const CREDIT_SCORE: &str = "/v1/credit/score/{uscc}";
    pub const CREDIT_SINCE: &str = "/v1/credit/since/{height}";
    pub const CA_ISSUERS: &str = "/v1/ca/issuers";
    pub const CA_VERIFY: &str = "/v1/ca/verify";
    pub const EXPERTS: &str = "/v1/experts";
    pub const EXPERT: &str = "/v1/experts/{id}";
    pub const EXTRACTION: &str = "/v1/extractions/{id}";
    pub const EXTRACTION_CANDIDATES: &str = "/v1/extractions/{id}/candidates";
    pub const EVENTS: &str = "/v1/events";
    /// The web console ([`crate::console`]); its login page and style sheet are open to all.
    pub const CONSOLE: &str = "/console";
    pub const CONSOLE_LOGIN: &str = "/console/login";
    pub const CONSOLE_STYLE: &str = "/console/style.css";
    /// Loopback only: `caihong backup` on the node's own machine.
    pub const ADMIN_BACKUP: &str = "/v1/admin/backup";

    /// `route` with its `{parameter}` segments replaced, in order, by `args`.
    pub fn path(route: &str, args: &[&str]) -> String {
        let mut args = args.iter();
        route
            .split('/')
            .map(|segment| match segment.starts_with('{') {
                true => args.next().copied().unwrap_or(segment),
                false => segment,
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// `GET /v1/status`: what the node is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub chain_id: String,
    /// SHA-256 of the genesis file (hex): which alliance this is, even between alliances that
    /// share a chain id.
    #[serde(default)]
    pub genesis_hash: String,
    pub member: String,
    pub node_key: String,
    pub height: u64,
    pub latest_block_hash: String,
    pub latest_block_time_ms: u64,
    pub peers: Vec<String>,
    pub syncing: bool,
    pub validator: bool,
    pub consensus_round: u32,
    pub mempool_size: usize,
    pub committed_txs: u64,
    pub last_block_interval_ms: u64,
    pub highest_peer_height: u64,
    /// The last committed height each connected or recently heard peer announced, by node key
    /// (hex).
    #[serde(default)]
    pub peer_heights: std::collections::BTreeMap<String, u64>,
    pub rounds_last_height: u32,
    /// Consensus-topic messages refused as forged, foreign or undecodable (each a strike
    /// against the member that relayed it).
    pub rejected_consensus_gossip: u64,
    /// The last `(height, round, step)` this node's key signed a consensus message for.
    pub last_signed: Option<(u64, u32, String)>,
}

/// `POST /v1/tx`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTx {
    /// Hex of the canonical bytes of a `SignedTransaction`.
    pub tx: String,
    /// Answer when the transaction is committed (or failed), up to `timeout_ms`.
    #[serde(default)]
    pub wait: bool,
    /// How long to wait (default 30 s, at most 120 s).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// `POST /v1/txs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTxs {
    /// Hex of the canonical bytes of each `SignedTransaction`.
    pub txs: Vec<String>,
}

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxState {
    /// Admitted, waiting for a block.
    Pending,
    /// In a block, and it did what it asked.
    Committed,
    /// In a block, and the chain refused it (its nonce is used; `error` says why).
    Failed,
}

/// Why the chain refused a transaction: a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxFailure {
    pub code: String,
    pub message: String,
}

/// A transaction's state: the answer of `POST /v1/tx` and `GET /v1/tx/{hash}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxAnswer {
    pub hash: String,
    pub status: TxState,
    /// Where it was committed (not for a pending one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// What a committed transaction produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<TxOutput>,
    /// Why a failed transaction was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TxFailure>,
    /// The signed transaction itself (`GET /v1/tx/{hash}` of a committed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<SignedTransaction>,
    /// Why a waited-for transaction is still pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TxAnswer {
    pub fn pending(hash: String) -> Self {
        TxAnswer {
            hash,
            status: TxState::Pending,
            height: None,
            index: None,
            output: None,
            error: None,
            tx: None,
            note: None,
        }
    }

    /// Committed or failed: the chain has decided.
    pub fn is_final(&self) -> bool {
        self.status != TxState::Pending
    }
}

/// `POST /v1/txs`: one entry per transaction sent, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// Entries admitted (or already pending).
    pub accepted: usize,
    pub results: Vec<BatchEntry>,
}

/// One transaction of a batch: its hash and `pending`, or the error (and its code) the
/// single-transaction route would have given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TxState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Every 4xx and 5xx answer: what was wrong and, for a chain rejection, its code
/// (`BAD_NONCE`, `MEMPOOL_FULL`, a chaincode `ErrorCode`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `GET /v1/nonce/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceAnswer {
    pub key: String,
    /// The nonce the chain expects next from this key.
    pub next_nonce: u64,
    /// The first nonce no transaction pending here uses: what a new transaction takes.
    pub next_free_nonce: u64,
}

/// `GET /v1/blocks/{height}` and `/v1/blocks/latest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAnswer {
    pub height: u64,
    pub hash: String,
    pub chain_id: String,
    pub time_ms: u64,
    pub parent_hash: String,
    pub proposer: String,
    pub txs_root: String,
    pub receipts_root: String,
    pub state_root: String,
    pub next_validators_hash: String,
    /// The transactions' hashes, in block order.
    pub txs: Vec<String>,
    /// The canonical header bytes, for checking the hash.
    pub header_bincode_hex: String,
    pub certificate_bincode_hex: Option<String>,
    pub certificate: Option<CertificateSummary>,
}

/// Who signed a block's commit certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSummary {
    pub height: u64,
    pub round: u32,
    pub value: String,
    pub signers: Vec<String>,
}

/// `GET /v1/validators`: each validator set and the height it decides from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSetFrom {
    pub from_height: u64,
    pub node_keys: Vec<String>,
}

/// `GET /v1/state/proof?key=..&height=..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofAnswer {
    pub height: u64,
    pub state_root: String,
    pub key: String,
    pub proof_bincode_hex: String,
}

/// One committed event of `GET /v1/events` (see `node::events` for how events are derived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `H:N`: event `N` (from 0, among all of block `H`'s events) of block `H`; pass it as
    /// `after` to read what follows it.
    pub cursor: String,
    pub height: u64,
    /// The transaction's index in its block; null for block-start events (a governance change
    /// taking effect, an extraction drawn at the block's start).
    pub tx_index: Option<u32>,
    /// The transaction's hash (hex); null for block-start events.
    pub tx_hash: Option<String>,
    /// The block's time, Unix milliseconds.
    pub time_ms: u64,
    /// `family.what`, e.g. `credit.recorded` (docs/API.md lists them).
    pub kind: String,
    pub data: Value,
}

/// `GET /v1/events`: one page of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsAnswer {
    pub events: Vec<Event>,
    /// The cursor to pass as `after` next: the last event's when the page is full, else the
    /// last height read whole (so empty blocks are not read again).
    pub next: String,
    /// The node's latest committed height when it answered.
    pub tip: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fill_parameters_in_order() {
        assert_eq!(route::path(route::NONCE, &["ab"]), "/v1/nonce/ab");
        assert_eq!(
            route::path(route::SUBJECT_HISTORY, &["91"]),
            "/v1/subjects/91/history"
        );
        assert_eq!(route::path(route::STATUS, &[]), route::STATUS);
    }

    /// A pending answer carries no committed-only fields; a failed one reads back whole.
    #[test]
    fn tx_answers_round_trip_without_empty_fields() {
        let pending = serde_json::to_value(TxAnswer::pending("aa".into())).unwrap();
        assert_eq!(
            pending,
            serde_json::json!({"hash": "aa", "status": "pending"})
        );
        let failed = TxAnswer {
            height: Some(3),
            index: Some(0),
            error: Some(TxFailure {
                code: "BAD_NONCE".into(),
                message: "m".into(),
            }),
            status: TxState::Failed,
            ..TxAnswer::pending("bb".into())
        };
        let text = serde_json::to_string(&failed).unwrap();
        assert_eq!(serde_json::from_str::<TxAnswer>(&text).unwrap(), failed);
    }
}

/// `POST /v1/admin/backup`: where the node writes the backup (an absolute path on its
/// machine that does not exist, or an empty directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupRequest {
    pub out: String,
}

/// What a backup holds (`caihong-backup.json` in it, and the answer of
/// `POST /v1/admin/backup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    pub chain_id: String,
    /// The member whose node made it.
    pub member: String,
    /// The height it is consistent at: every block up to it, and the state after it.
    pub height: u64,
    pub block_hash: String,
    pub state_root: String,
    /// When it was made (ms since the Unix epoch).
    pub made_ms: u64,
    /// Bytes of its files.
    pub bytes: u64,
}
