//! What the node's tasks publish for the API to read: the status, the stream of committed
//! transactions, and handles on the store, the mempool and transaction intake.

use std::sync::{Arc, Mutex, RwLock};

use caihong_chaincode::{Hash, Receipt, SignedTransaction};
use caihong_consensus::SafetyState;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::intake::IntakeQueue;
use crate::mempool::{AdmitError, Mempool};
use crate::storage::Store;

/// What the API and metrics read. Each field has one writer: the consensus host, except
/// `syncing` and `highest_peer_height` (block sync).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub chain_id: String,
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
    pub rounds_last_height: u32,
    /// Consensus-topic messages refused as forged, foreign or undecodable (each a strike
    /// against the member that relayed it).
    pub rejected_consensus_gossip: u64,
    /// The last `(height, round, step)` this node's key signed a consensus message for.
    pub last_signed: Option<(u64, u32, String)>,
}

impl Status {
    pub fn note_signed(&mut self, state: &SafetyState) {
        self.last_signed = state
            .last_signed
            .map(|(h, r, step)| (h, r, format!("{step:?}").to_lowercase()));
    }
}

/// A committed transaction, for clients waiting on it.
#[derive(Debug, Clone)]
pub struct Committed {
    pub height: u64,
    pub tx_hash: Hash,
    pub receipt: Receipt,
}

/// Shared with the API.
#[derive(Debug, Clone)]
pub struct Shared {
    pub chain_id: String,
    pub store: Arc<Store>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub status: Arc<RwLock<Status>>,
    pub commits: broadcast::Sender<Committed>,
    /// The intake thread, which verifies and admits what the API submits.
    pub intake: IntakeQueue,
}

impl Shared {
    /// Checks and admits a transaction and gossips it. Errors say why not.
    pub async fn admit(&self, tx: SignedTransaction) -> Result<Hash, AdmitError> {
        self.admit_batch(vec![tx])
            .await
            .pop()
            .expect("one result per transaction")
    }

    /// Checks and admits transactions on the intake thread (their signatures verified in one
    /// batch with whatever else is arriving) and gossips those admitted. One result per
    /// transaction, in order.
    pub async fn admit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, AdmitError>> {
        crate::intake::submit(&self.intake, txs).await
    }
}
