//! Light verification for other regions: what a node serves so a client that trusts only the
//! alliance's genesis can check blocks and credit records, and the checks themselves.
//!
//! Trust passes from genesis forward. The genesis header is rebuilt from the genesis file, so
//! its hash and validator set need no node. For every later height the client checks, in
//! order: the height is the next one (no gaps), the parent hash links to the last verified
//! header, the commit certificate is for this header and carries signatures of more than two
//! thirds of the validator set it currently trusts; then, with a body, the transactions and
//! receipts match the header's roots and every credit record a transaction created comes with
//! a state proof against the header's state root. A header commits to the next height's
//! validator set by hash; when the set changes the node sends the new keys and the client
//! checks them against that hash before trusting any certificate they sign.

use caihong_chaincode::credit::CreditRecord;
use caihong_chaincode::genesis::Genesis;
use caihong_chaincode::{
    Action, Hash, PublicKey, Receipt, SignedTransaction, TxOutput, TxStatus, codec, keys,
};
use caihong_consensus::{ChainId, CommitCertificate, ValidatorSet};
use serde::{Deserialize, Serialize};

use crate::block::{BlockError, Header, validators_hash};
use crate::storage::StateProof;

/// Most blocks one light request returns.
pub const MAX_LIGHT_BLOCKS: u64 = 500;

/// A light answer stops adding blocks past this many bytes (it holds at least one block).
pub const LIGHT_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Largest light answer a client decodes: one block of the largest size the node builds plus
/// the soft limit above, with room to spare.
const MAX_LIGHT_DECODE: u64 = 64 * 1024 * 1024;

fn light_codec() -> impl bincode::Options {
    use bincode::Options as _;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(MAX_LIGHT_DECODE)
        .reject_trailing_bytes()
}

/// The wire form of a light answer (bincode, as the node's other binary messages).
pub fn encode_light(blocks: &[LightBlock]) -> Vec<u8> {
    use bincode::Options as _;
    light_codec()
        .serialize(blocks)
        .expect("light blocks encode")
}

/// Reads a light answer; a malformed or oversized one is an error, never a panic.
pub fn decode_light(bytes: &[u8]) -> Result<Vec<LightBlock>, String> {
    use bincode::Options as _;
    light_codec()
        .deserialize(bytes)
        .map_err(|e| format!("light answer does not decode: {e}"))
}

/// One block as a light client receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LightBlock {
    pub header: Header,
    pub certificate: CommitCertificate,
    /// Transactions, receipts and credit proofs, when asked for.
    pub body: Option<LightBody>,
    /// The validator set of the next height, when it differs from this height's.
    pub next_validators: Option<Vec<PublicKey>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LightBody {
    pub txs: Vec<SignedTransaction>,
    pub receipts: Vec<Receipt>,
    /// For each credit record the block's transactions created, in order: its state proof at
    /// this height (the proof carries the record).
    pub credit_proofs: Vec<StateProof>,
}

/// A credit record tied to the chain by a verified block and state proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedCredit {
    pub height: u64,
    pub block_hash: Hash,
    pub tx_hash: Hash,
    pub index: u32,
    pub record: CreditRecord,
}

/// Why a light block is not accepted. Every variant names the height.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightError {
    #[error("gap: expected height {expected}, the node sent {got}")]
    Gap { expected: u64, got: u64 },
    #[error("height {height}: {source}")]
    Block { height: u64, source: BlockError },
    #[error("height {height}: commit certificate does not verify: {reason}")]
    Certificate { height: u64, reason: String },
    #[error("height {height}: {detail}")]
    Body { height: u64, detail: String },
    #[error("height {height}: credit record {id}: {detail}")]
    Credit {
        height: u64,
        id: u64,
        detail: String,
    },
    #[error("height {height}: next validator set: {detail}")]
    Validators { height: u64, detail: String },
    #[error("genesis: {0}")]
    Genesis(String),
}

/// What a light client trusts: the last verified header and the validator set of the next
/// height.
#[derive(Debug, Clone)]
pub struct LightClient {
    chain_id: String,
    height: u64,
    hash: Hash,
    validators: Vec<PublicKey>,
    set: ValidatorSet,
}

fn validator_set(keys: &[PublicKey], height: u64) -> Result<ValidatorSet, LightError> {
    crate::chain::validator_set(keys).map_err(|e| LightError::Validators {
        height,
        detail: e.to_string(),
    })
}

impl LightClient {
    /// Trust anchored in the genesis file alone.
    pub fn from_genesis(genesis: &Genesis) -> Result<LightClient, LightError> {
        let writes = genesis
            .initial_state()
            .map_err(|e| LightError::Genesis(e.message))?;
        let header = crate::chain::genesis_header(genesis, &writes);
        let validators =
            crate::storage::member_node_keys(&caihong_chaincode::MemState::new(), &writes);
        Ok(LightClient {
            chain_id: genesis.chain_id.clone(),
            height: 0,
            hash: header.hash(),
            set: validator_set(&validators, 1)?,
            validators,
        })
    }

    /// The last verified height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The last verified block hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Verifies the next block and, with its body, returns the credit records it created.
    /// Nothing changes when it fails.
    pub fn verify(&mut self, block: &LightBlock) -> Result<Vec<VerifiedCredit>, LightError> {
        let h = &block.header;
        let height = h.height;
        if height != self.height + 1 {
            return Err(LightError::Gap {
                expected: self.height + 1,
                got: height,
            });
        }
        let block_error = |source| LightError::Block { height, source };
        h.check_extends(&self.chain_id, self.height, self.hash)
            .map_err(block_error)?;
        h.check_certificate(&block.certificate)
            .map_err(block_error)?;
        let hash = h.hash();
        let cert = &block.certificate;
        cert.verify(&self.set, &ChainId(self.chain_id.clone()))
            .map_err(|e| LightError::Certificate {
                height,
                reason: e.to_string(),
            })?;
        let credits = match &block.body {
            Some(body) => verify_body(h, hash, body)?,
            None => Vec::new(),
        };
        let next = if validators_hash(&self.validators) == h.next_validators_hash {
            None
        } else {
            let keys = block
                .next_validators
                .as_ref()
                .ok_or_else(|| LightError::Validators {
                    height,
                    detail: "the header announces a new set but the node sent none".into(),
                })?;
            if validators_hash(keys) != h.next_validators_hash {
                return Err(LightError::Validators {
                    height,
                    detail: "the keys sent do not match the header's next_validators_hash".into(),
                });
            }
            Some((keys.clone(), validator_set(keys, height + 1)?))
        };
        if let Some((keys, set)) = next {
            self.validators = keys;
            self.set = set;
        }
        self.height = height;
        self.hash = hash;
        Ok(credits)
    }
}

fn verify_body(
    h: &Header,
    block_hash: Hash,
    body: &LightBody,
) -> Result<Vec<VerifiedCredit>, LightError> {
    let height = h.height;
    let bad = |detail: String| LightError::Body { height, detail };
    let block_error = |source| LightError::Block { height, source };
    let tx_hashes = h.check_txs(&body.txs).map_err(block_error)?;
    h.check_receipts(&tx_hashes, &body.receipts)
        .map_err(block_error)?;
    let mut proofs = body.credit_proofs.iter();
    let mut out = Vec::new();
    for (index, ((tx, receipt), &tx_hash)) in body
        .txs
        .iter()
        .zip(&body.receipts)
        .zip(&tx_hashes)
        .enumerate()
    {
        let id = match (&tx.tx.action, &receipt.status) {
            (Action::Credit(_), TxStatus::Success(TxOutput::CreditRecord(id))) => *id,
            _ => continue,
        };
        let credit = |detail: String| LightError::Credit { height, id, detail };
        let proof = proofs
            .next()
            .ok_or_else(|| credit("the node sent no state proof for it".into()))?;
        proof
            .verify_carried(&h.state_root, &keys::credit(id))
            .map_err(|e| credit(format!("state proof does not verify: {e}")))?;
        let bytes = proof
            .value
            .as_deref()
            .ok_or_else(|| credit("the proof shows no record".into()))?;
        let record: CreditRecord =
            codec::decode(bytes).map_err(|e| credit(format!("record does not decode: {e}")))?;
        if record.id != id || record.tx_hash != tx_hash {
            return Err(credit(format!(
                "the proven record is record {} of transaction {}",
                record.id, record.tx_hash
            )));
        }
        out.push(VerifiedCredit {
            height,
            block_hash,
            tx_hash,
            index: index as u32,
            record,
        });
    }
    if proofs.next().is_some() {
        return Err(bad("more credit proofs than credit records".into()));
    }
    Ok(out)
}
