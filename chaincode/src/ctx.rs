//! The execution context every domain module runs in: the block being executed
//! ([`BlockContext`]), typed reads and writes over the state ([`Ctx`], [`read`], [`scan`]), and
//! what a successful transaction produced ([`TxOutput`]).
//!
//! Domain modules (members, governance, subjects, credit, ca, experts) use this module and
//! nothing of [`crate::exec`], which dispatches to them. The signer checks
//! (`Ctx::operator`, `Ctx::require_role`) live with the operator records in
//! [`crate::members`].

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::codec;
use crate::keys;
use crate::params::ChainParams;
use crate::state::{Overlay, StateReader, WriteSet};
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
