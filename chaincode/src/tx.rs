//! Signed transactions: what an operator asks the alliance to do.
//!
//! A transaction names its chain, its signer (an operator's ed25519 key), the
//! signer's next nonce and one typed action. The signature covers
//! domain-separated canonical bytes, so a signature made for one chain or for
//! another kind of message (a consensus vote) can never be replayed here.

use ed25519_dalek::{Signer, SigningKey, Verifier};
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::types::{Hash, PublicKey, Signature};

/// Everything an operator can ask for, grouped by domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Operators (操作员) of the signer's member.
    Operator(crate::members::OperatorAction),
    /// Governance (治理) proposals and votes.
    Governance(crate::governance::GovernanceAction),
    /// Market subjects (市场主体).
    Subject(crate::subjects::SubjectAction),
    /// Credit records (信用记录).
    Credit(crate::credit::CreditAction),
    /// CA issuers and certificates (CA 数字证书互认).
    Ca(crate::ca::CaAction),
    /// Evaluation experts (评标专家) and extractions (专家抽取).
    Expert(crate::experts::ExpertAction),
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub chain_id: String,
    pub signer: PublicKey,
    pub nonce: u64,
    pub action: Action,
}

/// A transaction with its signature, as submitted and stored in blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

/// Why a submitted transaction is not acceptable before execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxCheckError {
    #[error("transaction encoding: {0}")]
    Decode(#[from] DecodeError),
    #[error("signer {0} is not a valid ed25519 public key")]
    BadKey(PublicKey),
    #[error("signature does not verify for signer {0}")]
    BadSignature(PublicKey),
    #[error("transaction is for chain {found:?}, this chain is {expected:?}")]
    WrongChain { expected: String, found: String },
}

const TX_DOMAIN: &[u8] = b"caihong/tx/v1\0";

impl Transaction {
    /// The bytes the signer signs: a domain tag, then the canonical encoding
    /// (which starts with the chain id).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = TX_DOMAIN.to_vec();
        bytes.extend_from_slice(&codec::encode(self));
        bytes
    }

    pub fn sign(self, key: &SigningKey) -> SignedTransaction {
        let signature = Signature(key.sign(&self.signing_bytes()).to_bytes());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

impl SignedTransaction {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes)
    }

    /// The transaction's identity: SHA-256 of its canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::of(&self.encode())
    }

    /// Stateless checks: chain id and signature. Returns the proof that they
    /// passed, which is what execution takes.
    pub fn verify(self, chain_id: &str) -> Result<VerifiedTx, TxCheckError> {
        if self.tx.chain_id != chain_id {
            return Err(TxCheckError::WrongChain {
                expected: chain_id.to_string(),
                found: self.tx.chain_id.clone(),
            });
        }
        let key = self
            .tx
            .signer
            .verifying_key()
            .map_err(|_| TxCheckError::BadKey(self.tx.signer))?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify(&self.tx.signing_bytes(), &sig)
            .map_err(|_| TxCheckError::BadSignature(self.tx.signer))?;
        let hash = self.hash();
        Ok(VerifiedTx { signed: self, hash })
    }

    /// Marks a transaction as verified without checking: for callers that
    /// verified it already (batch verification in the node).
    pub fn assume_verified(self) -> VerifiedTx {
        let hash = self.hash();
        VerifiedTx { signed: self, hash }
    }
}

/// A transaction whose chain id and signature have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    signed: SignedTransaction,
    hash: Hash,
}

impl VerifiedTx {
    pub fn tx(&self) -> &Transaction {
        &self.signed.tx
    }

    pub fn signed(&self) -> &SignedTransaction {
        &self.signed
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }
}
