//! Execution: one transaction against a state, giving a write set and a
//! receipt, or a coded failure and nothing written.
//!
//! The node runs, per block: [`begin_block`] (governance changes that take
//! effect at this height, extraction draws that were waiting for a block
//! hash), then [`apply`] for each transaction in order, each on top of the
//! previous one's writes. A failed transaction still consumes its nonce, so
//! it cannot be replayed, and leaves a failure receipt.

use serde::{Deserialize, Serialize};

use crate::codec;
pub use crate::ctx::{BlockContext, Ctx, TxOutput, next_nonce, params, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::state::{Overlay, ReadCache, StateReader, WriteSet};
use crate::tx::{Action, VerifiedTx};
use crate::types::Hash;

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

/// Whether the chain has work that counts blocks and should not wait for transactions: an
/// extraction waiting for its anchor (the next block's hash) or waiting for its seal
/// (`extraction_seal_blocks`), or a passed governance change waiting for its effective
/// height. A node whose mempool is empty makes the next block promptly when this holds, and
/// otherwise waits for a transaction or its empty-block interval.
pub fn block_work_pending(state: &dyn StateReader) -> bool {
    [
        keys::EXTRACTION_ANCHOR_PREFIX,
        keys::EXTRACTION_SEAL_PREFIX,
        keys::PENDING_PREFIX,
    ]
    .iter()
    .any(|prefix| !state.scan_prefix(prefix).is_empty())
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
