//! Execution: one transaction against a state, giving a write set and a
//! receipt, or a coded failure and nothing written.
//!
//! The node runs, per block: [`begin_block`] (governance changes that take
//! effect at this height, extraction draws that were waiting for a block
//! hash), then [`apply`] for each transaction in order, each on top of the
//! previous one's writes. A failed transaction still consumes its nonce, so
//! it cannot be replayed, and leaves a failure receipt.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::codec;
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{MemberId, Operator, Role};
use crate::params::ChainParams;
use crate::state::{Overlay, ReadCache, StateReader, WriteSet};
use crate::tx::{Action, VerifiedTx};
use crate::types::{Date, Hash, PublicKey, TimestampMs, date_of};

/// What the block being executed tells chaincode about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockContext {
    pub chain_id: String,
    pub height: u64,
    /// Block time from the header (milliseconds since the Unix epoch).
    pub time_ms: TimestampMs,
    /// Hash of the last committed block (height − 1).
    pub parent_hash: Hash,
}

impl BlockContext {
    /// The block's calendar date (Beijing time).
    pub fn date(&self) -> Date {
        date_of(self.time_ms)
    }
}

/// What a successful transaction produced, for the submitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxOutput {
    None,
    Proposal(u64),
    SubjectVersion {
        uscc: String,
        version: u32,
    },
    CreditRecord(u64),
    Certificate(Hash),
    Expert(Hash),
    Extraction(u64),
    /// Certificate serials newly revoked.
    Revoked {
        count: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxStatus {
    Success(TxOutput),
    Failed(TxError),
}

/// The result of one transaction in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: Hash,
    pub status: TxStatus,
}

impl Receipt {
    pub fn is_success(&self) -> bool {
        matches!(self.status, TxStatus::Success(_))
    }
}

/// A successful execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub writes: WriteSet,
    pub receipt: Receipt,
}

/// The execution context of one transaction: typed reads and writes over an
/// overlay of the state, the block, and who signed.
pub struct Ctx<'a> {
    state: Overlay<&'a dyn StateReader>,
    pub block: &'a BlockContext,
    pub signer: PublicKey,
    pub tx_hash: Hash,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("height", &self.block.height)
            .field("signer", &self.signer)
            .field("tx_hash", &self.tx_hash)
            .field("writes", &self.state.writes().len())
            .finish()
    }
}

impl<'a> Ctx<'a> {
    pub fn new(
        state: &'a dyn StateReader,
        block: &'a BlockContext,
        signer: PublicKey,
        tx_hash: Hash,
    ) -> Self {
        Ctx {
            state: Overlay::new(state),
            block,
            signer,
            tx_hash,
        }
    }

    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Option<T> {
        read(&self.state, key)
    }

    pub fn exists(&self, key: &[u8]) -> bool {
        self.state.get(key).is_some()
    }

    pub fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.state.put(key, codec::encode(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.state.delete(key);
    }

    pub fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Vec<(Vec<u8>, T)> {
        scan(&self.state, prefix)
    }

    pub fn reader(&self) -> &dyn StateReader {
        &self.state
    }

    pub fn params(&self) -> ChainParams {
        params(&self.state)
    }

    /// Takes the next value of a sequence counter.
    pub fn next_id(&mut self, counter: &[u8]) -> u64 {
        let id: u64 = self.get(counter).unwrap_or(1);
        self.put(counter.to_vec(), &(id + 1));
        id
    }

    /// The signing operator, who must be active.
    pub fn operator(&self) -> Result<Operator, TxError> {
        let op: Operator = self.get(&keys::operator(&self.signer)).ok_or_else(|| {
            TxError::new(
                ErrorCode::UnknownSigner,
                format!("signer {} is not a registered operator", self.signer),
            )
        })?;
        ensure(op.active, ErrorCode::UnknownSigner, || {
            format!("operator {} ({}) is deactivated", op.name, self.signer)
        })?;
        Ok(op)
    }

    /// Checks the signer holds `role` (admins hold every role of their member)
    /// and returns the member it acts for.
    pub fn require_role(&self, role: Role) -> Result<MemberId, TxError> {
        let op = self.operator()?;
        ensure(op.has_role(role), ErrorCode::Unauthorized, || {
            format!(
                "operator {} of member {} lacks the {} role; its roles: {}",
                op.name,
                op.member,
                role.label(),
                op.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        ensure(
            self.exists(&keys::member(op.member.as_str())),
            ErrorCode::Unauthorized,
            || format!("member {} is no longer in the alliance", op.member),
        )?;
        Ok(op.member)
    }

    pub fn into_writes(self) -> WriteSet {
        self.state.into_writes()
    }
}

/// Reads and decodes a value written by chaincode.
pub fn read<T: DeserializeOwned>(state: &dyn StateReader, key: &[u8]) -> Option<T> {
    state.get(key).map(|bytes| {
        codec::decode(&bytes).unwrap_or_else(|e| {
            panic!(
                "state value at {:?} does not decode ({e}): the store is corrupt",
                String::from_utf8_lossy(key)
            )
        })
    })
}

/// Scans and decodes every value under `prefix`, in key order.
pub fn scan<T: DeserializeOwned>(state: &dyn StateReader, prefix: &[u8]) -> Vec<(Vec<u8>, T)> {
    state
        .scan_prefix(prefix)
        .into_iter()
        .map(|(k, v)| {
            let value = codec::decode(&v).unwrap_or_else(|e| {
                panic!(
                    "state value at {:?} does not decode ({e}): the store is corrupt",
                    String::from_utf8_lossy(&k)
                )
            });
            (k, value)
        })
        .collect()
}

/// Current chain parameters.
pub fn params(state: &dyn StateReader) -> ChainParams {
    read(state, keys::PARAMS).unwrap_or_default()
}

/// The nonce the signer must use next.
pub fn next_nonce(state: &dyn StateReader, signer: &PublicKey) -> u64 {
    read(state, &keys::nonce(signer)).unwrap_or(0)
}

/// Executes one verified transaction. On failure nothing is written.
pub fn execute(
    state: &dyn StateReader,
    block: &BlockContext,
    tx: &VerifiedTx,
) -> Result<Executed, TxError> {
    let t = tx.tx();
    check_envelope(state, block, tx)?;
    let mut ctx = Ctx::new(state, block, t.signer, tx.hash());
    ctx.put(keys::nonce(&t.signer), &(t.nonce + 1));
    let output = match &t.action {
        Action::Operator(a) => crate::members::execute(&mut ctx, a)?,
        Action::Governance(a) => crate::governance::execute(&mut ctx, a)?,
        Action::Subject(a) => crate::subjects::execute(&mut ctx, a)?,
        Action::Credit(a) => crate::credit::execute(&mut ctx, a)?,
        Action::Ca(a) => crate::ca::execute(&mut ctx, a)?,
        Action::Expert(a) => crate::experts::execute(&mut ctx, a)?,
    };
    Ok(Executed {
        writes: ctx.into_writes(),
        receipt: Receipt {
            tx_hash: tx.hash(),
            status: TxStatus::Success(output),
        },
    })
}

/// Chain id, known active signer, and the next nonce: what must hold for a
/// transaction to be admitted to a mempool or a block at all.
pub fn check_envelope(
    state: &dyn StateReader,
    block: &BlockContext,
    tx: &VerifiedTx,
) -> Result<(), TxError> {
    let t = tx.tx();
    ensure(t.chain_id == block.chain_id, ErrorCode::WrongChain, || {
        format!(
            "transaction is for chain {:?}, this chain is {:?}",
            t.chain_id, block.chain_id
        )
    })?;
    Ctx::new(state, block, t.signer, tx.hash()).operator()?;
    let expected = next_nonce(state, &t.signer);
    if t.nonce != expected {
        return fail(
            ErrorCode::BadNonce,
            format!(
                "nonce {} is not the signer's next nonce {expected}; fetch the current nonce and retry",
                t.nonce
            ),
        );
    }
    Ok(())
}

/// Executes a transaction inside a block: a failure still consumes the nonce
/// (when the envelope was valid) and gives a failure receipt.
pub fn apply(
    state: &dyn StateReader,
    block: &BlockContext,
    tx: &VerifiedTx,
) -> (WriteSet, Receipt) {
    match execute(state, block, tx) {
        Ok(done) => (done.writes, done.receipt),
        Err(error) => {
            let mut writes = WriteSet::new();
            if check_envelope(state, block, tx).is_ok() {
                writes.insert(
                    keys::nonce(&tx.tx().signer),
                    Some(codec::encode(&(tx.tx().nonce + 1))),
                );
            }
            let receipt = Receipt {
                tx_hash: tx.hash(),
                status: TxStatus::Failed(error),
            };
            (writes, receipt)
        }
    }
}

/// State changes that happen at the start of every block, before its
/// transactions: governance decisions reaching their effective height, and
/// extraction draws anchored to the previous block's hash.
pub fn begin_block(state: &dyn StateReader, block: &BlockContext) -> WriteSet {
    let mut overlay = Overlay::new(state);
    let gov = crate::governance::begin_block(&overlay, block);
    overlay.apply(gov);
    let ext = crate::experts::begin_block(&overlay, block);
    overlay.apply(ext);
    overlay.into_writes()
}

/// Executes a whole block's transactions after [`begin_block`]; the node's
/// proposer and validators both call this, so they agree byte for byte.
pub fn execute_block(
    state: &dyn StateReader,
    block: &BlockContext,
    txs: &[VerifiedTx],
) -> (WriteSet, Vec<Receipt>) {
    // The state below the block's writes does not change while it runs.
    let base = ReadCache::new(state);
    let mut overlay = Overlay::new(&base);
    overlay.apply(begin_block(&overlay, block));
    let mut receipts = Vec::with_capacity(txs.len());
    for tx in txs {
        let (writes, receipt) = apply(&overlay, block, tx);
        overlay.apply(writes);
        receipts.push(receipt);
    }
    (overlay.into_writes(), receipts)
}
