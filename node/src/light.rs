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
//!
//! A client can save what it trusts ([`TrustedState`]: the last verified header's height and
//! hash and the next validator set) and resume from it later, so a long chain is verified
//! once, not on every run.

use caihong_chaincode::credit::CreditRecord;
use caihong_chaincode::genesis::Genesis;
use caihong_chaincode::subjects::Subject;
use caihong_chaincode::{
    Action, Hash, PublicKey, Receipt, SignedTransaction, TxOutput, TxStatus, codec, keys,
};
use caihong_consensus::{ChainId, CommitCertificate, ValidatorSet};
use serde::{Deserialize, Serialize};

use crate::block::{Block, BlockError, Header, validators_hash};
use crate::storage::{StateProof, StorageError, Store};

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

/// Light blocks `from..=last` from `store`, each with the body `body` makes, stopping once
/// the answer passes [`LIGHT_ANSWER_BYTES`] (it holds at least one block). Every height must
/// be in the store (callers check against [`Store::first_block`]).
pub fn serve<E: From<StorageError>>(
    store: &Store,
    from: u64,
    last: u64,
    mut body: impl FnMut(&Block) -> Result<Option<LightBody>, E>,
) -> Result<Vec<LightBlock>, E> {
    let history = store.validator_history()?;
    let mut blocks = Vec::new();
    let mut size = 0;
    for height in from..=last {
        let missing = || StorageError::corrupt("blocks", format!("block {height}"), "missing");
        let block = store.block(height)?.ok_or_else(missing)?;
        let certificate = store.commit_certificate(height)?.ok_or_else(missing)?;
        let body = body(&block)?;
        let next_validators = history
            .iter()
            .find(|(h, _)| *h == height + 1)
            .map(|(_, keys)| keys.clone());
        let item = LightBlock {
            header: block.header,
            certificate,
            body,
            next_validators,
        };
        size += encode_light(std::slice::from_ref(&item)).len();
        blocks.push(item);
        if size > LIGHT_ANSWER_BYTES {
            break;
        }
    }
    Ok(blocks)
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
    /// For each subject version the block's transactions wrote, in order: its state proof at
    /// this height, under the current-version key or, when a later transaction of the same
    /// block superseded it, under its version key.
    pub subject_proofs: Vec<StateProof>,
}

/// What one verified block created: its credit records and subject versions, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiedBlock {
    pub credits: Vec<VerifiedCredit>,
    pub subjects: Vec<VerifiedSubject>,
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

/// A subject version tied to the chain by a verified block and state proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedSubject {
    pub height: u64,
    pub block_hash: Hash,
    pub tx_hash: Hash,
    pub index: u32,
    pub subject: Subject,
}

/// What a light client trusts, saved between runs: resuming from it needs no re-verification.
/// Only the client's own verified state belongs here; a value from anywhere else would be
/// trusted without a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedState {
    pub chain_id: String,
    /// The genesis header's hash: a state saved for another alliance is refused.
    pub genesis_hash: Hash,
    pub height: u64,
    pub hash: Hash,
    /// The validator set of `height + 1`.
    pub validators: Vec<PublicKey>,
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
    #[error("height {height}: subject {uscc} version {version}: {detail}")]
    Subject {
        height: u64,
        uscc: String,
        version: u32,
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
    genesis_hash: Hash,
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
            genesis_hash: header.hash(),
            height: 0,
            hash: header.hash(),
            set: validator_set(&validators, 1)?,
            validators,
        })
    }

    /// Trust resumed from a state this client saved ([`LightClient::trusted`]) for the same
    /// genesis.
    pub fn resume(genesis: &Genesis, saved: &TrustedState) -> Result<LightClient, LightError> {
        let fresh = LightClient::from_genesis(genesis)?;
        if saved.chain_id != fresh.chain_id || saved.genesis_hash != fresh.genesis_hash {
            return Err(LightError::Genesis(format!(
                "the saved state is for chain {} (genesis {}), not chain {} (genesis {})",
                saved.chain_id, saved.genesis_hash, fresh.chain_id, fresh.genesis_hash
            )));
        }
        Ok(LightClient {
            height: saved.height,
            hash: saved.hash,
            set: validator_set(&saved.validators, saved.height + 1)?,
            validators: saved.validators.clone(),
            ..fresh
        })
    }

    /// What this client trusts now, to save and resume from.
    pub fn trusted(&self) -> TrustedState {
        TrustedState {
            chain_id: self.chain_id.clone(),
            genesis_hash: self.genesis_hash,
            height: self.height,
            hash: self.hash,
            validators: self.validators.clone(),
        }
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

    /// Verifies the next block and, with its body, returns the credit records and subject
    /// versions it created. Nothing changes when it fails.
    pub fn verify(&mut self, block: &LightBlock) -> Result<VerifiedBlock, LightError> {
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
        let verified = match &block.body {
            Some(body) => verify_body(h, hash, body)?,
            None => VerifiedBlock::default(),
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
        Ok(verified)
    }
}

fn verify_body(
    h: &Header,
    block_hash: Hash,
    body: &LightBody,
) -> Result<VerifiedBlock, LightError> {
    let height = h.height;
    let bad = |detail: String| LightError::Body { height, detail };
    let block_error = |source| LightError::Block { height, source };
    let tx_hashes = h.check_txs(&body.txs).map_err(block_error)?;
    h.check_receipts(&tx_hashes, &body.receipts)
        .map_err(block_error)?;
    let mut proofs = body.credit_proofs.iter();
    let mut subject_proofs = body.subject_proofs.iter();
    let mut out = VerifiedBlock::default();
    for (index, ((tx, receipt), &tx_hash)) in body
        .txs
        .iter()
        .zip(&body.receipts)
        .zip(&tx_hashes)
        .enumerate()
    {
        let id = match (&tx.tx.action, &receipt.status) {
            (Action::Credit(_), TxStatus::Success(TxOutput::CreditRecord(id))) => *id,
            (Action::Subject(_), TxStatus::Success(TxOutput::SubjectVersion { uscc, version })) => {
                let proof = subject_proofs.next();
                let subject = verify_subject(h, tx_hash, uscc, *version, proof)?;
                out.subjects.push(VerifiedSubject {
                    height,
                    block_hash,
                    tx_hash,
                    index: index as u32,
                    subject,
                });
                continue;
            }
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
        out.credits.push(VerifiedCredit {
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
    if subject_proofs.next().is_some() {
        return Err(bad("more subject proofs than subject versions".into()));
    }
    Ok(out)
}

/// Checks the proof of the subject version a transaction wrote: under the current-version key
/// or, if superseded within the block, under its version key.
fn verify_subject(
    h: &Header,
    tx_hash: Hash,
    uscc: &str,
    version: u32,
    proof: Option<&StateProof>,
) -> Result<Subject, LightError> {
    let fail = |detail: String| LightError::Subject {
        height: h.height,
        uscc: uscc.to_string(),
        version,
        detail,
    };
    let proof = proof.ok_or_else(|| fail("the node sent no state proof for it".into()))?;
    let parsed = caihong_chaincode::Uscc::parse(uscc)
        .map_err(|e| fail(format!("the receipt's USCC does not parse: {e}")))?;
    let current = keys::subject(&parsed);
    let superseded = keys::subject_version(&parsed, version);
    proof
        .verify_carried(&h.state_root, &current)
        .or_else(|_| proof.verify_carried(&h.state_root, &superseded))
        .map_err(|e| fail(format!("state proof does not verify: {e}")))?;
    let bytes = proof
        .value
        .as_deref()
        .ok_or_else(|| fail("the proof shows no subject".into()))?;
    let subject: Subject =
        codec::decode(bytes).map_err(|e| fail(format!("subject does not decode: {e}")))?;
    if subject.uscc != parsed || subject.version != version || subject.tx_hash != tx_hash {
        return Err(fail(format!(
            "the proven subject is {} version {} of transaction {}",
            subject.uscc, subject.version, subject.tx_hash
        )));
    }
    Ok(subject)
}
