//! The alliance's data model and rules, pure and deterministic.
//!
//! Everything a member node executes lives here, with no IO, no clock and no
//! randomness but what comes from chain data, so that every node, the CLI and
//! the tests see the same results and the same errors.
//!
//! # Layout
//! - [`types`], [`codec`]: hashes, keys, dates; the one canonical bincode encoding.
//! - [`uscc`]: unified social credit codes (统一社会信用代码) and their two checks.
//! - [`x509`]: certificate and CRL parsing and signature checks (RSA, P-256, Ed25519, SM2).
pub mod codec;
pub mod types;
pub mod uscc;
pub mod x509;

pub use types::{Date, Hash, PublicKey, Signature, TimestampMs};
pub use uscc::{Uscc, UsccError};
