//! The alliance's data model and rules, pure and deterministic.
//!
//! Everything a member node executes lives here, with no IO, no clock and no
//! randomness but what comes from chain data, so that every node, the CLI and
//! the tests see the same results and the same errors.
//!
//! # Layout
//! - [`types`], [`codec`]: hashes, keys, dates; the one canonical bincode encoding.
//! - [`tx`]: signed transactions and the [`tx::Action`] enum.
//! - [`state`], [`keys`]: the state read trait, overlays, and typed keys.
//! - [`ctx`]: the execution context domain modules run in: the block, typed state access,
//!   what a transaction produced.
//! - [`exec`]: executing transactions and blocks (dispatching each action to its domain
//!   module); receipts.
//! - [`error`]: coded failures.
//! - [`genesis`], [`params`]: the initial state and chain parameters.
//! - Domains: [`members`] (成员单位, operators), [`governance`] (治理),
//!   [`subjects`] (市场主体), [`credit`] (信用信息), [`ca`] (CA 互认),
//!   [`experts`] (评标专家, 专家抽取).
//! - [`sandbox`]: an in-memory alliance for tests, examples and benchmarks.
//! - [`uscc`]: unified social credit codes (统一社会信用代码) and their two checks.
//! - [`x509`]: certificate and CRL parsing and signature checks (RSA, P-256, Ed25519, SM2).
//!
//! Modules use only modules below them: domain modules use [`ctx`], never [`exec`]
//! (`tests/module-deps.py` checks every crate for cycles).
//!
//! # Errors
//! - A transaction that breaks a rule fails with a [`TxError`]: an [`ErrorCode`] a client can
//!   act on and a message that says what was wrong and what to do. It writes nothing but its
//!   nonce (see [`exec::apply`]).
//! - Parsing outside input returns typed errors: [`TxCheckError`], [`UsccError`],
//!   [`codec::DecodeError`], [`x509::CertError`].
//! - Panics only where the state itself is broken: a stored value that does not decode
//!   ([`ctx::read`]) means a corrupt store, and executing on it would fork this node from the
//!   others; the node stops instead.
pub mod ca;
pub mod codec;
pub mod credit;
pub mod ctx;
pub mod error;
pub mod exec;
pub mod experts;
pub mod genesis;
pub mod governance;
pub mod keys;
pub mod members;
pub mod params;
pub mod sandbox;
pub mod state;
pub mod subjects;
pub mod tx;
pub mod types;
pub mod uscc;
pub mod x509;

pub use error::{ErrorCode, TxError};
pub use exec::{BlockContext, Receipt, TxOutput, TxStatus};
pub use state::{MemState, Overlay, ReadCache, StateReader, WriteSet};
pub use tx::{Action, SignedTransaction, Transaction, TxCheckError, VerifiedTx};
pub use types::{Date, Hash, PublicKey, Signature, TimestampMs};
pub use uscc::{Uscc, UsccError};
