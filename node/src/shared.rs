//! What the node's tasks publish for the API to read: the status, the stream of committed
//! transactions, and handles on the store, the mempool and transaction intake.

use std::sync::{Arc, Mutex, RwLock};

use caihong_chaincode::{Hash, Receipt, SignedTransaction};
use caihong_consensus::SafetyState;
use tokio::sync::{Notify, broadcast};

pub use crate::contract::Status;

use crate::intake::IntakeQueue;
use crate::mempool::{AdmitError, Mempool};
use crate::storage::Store;

/// `Status` has one writer per field: the consensus host, except the signer-state line at
/// start (the runtime, before the host runs).
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
    /// Told by intake when transactions were admitted (the host starts a waiting height).
    pub arrived: Arc<Notify>,
    /// This node's member and its encryption key: the API shows this member's own view of
    /// sealed extractions (its seats, or its whole committee as the requester).
    pub member: String,
    pub encryption_key: Option<Arc<EncryptionSecret>>,
}

/// A member's X25519 private key; `Debug` never prints it.
pub struct EncryptionSecret(pub x25519_dalek::StaticSecret);

impl std::fmt::Debug for EncryptionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionSecret(..)")
    }
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
