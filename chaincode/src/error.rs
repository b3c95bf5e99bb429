//! Coded failures. Every rule that rejects a transaction returns one of these;
//! the code is stable (receipts and the CLI's exit codes depend on it) and the
//! message says what was wrong and, where it can, what to do.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Stable failure codes. Append new codes at the end: receipts store them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The transaction names another chain.
    WrongChain,
    /// The nonce is not the signer's next one (replay, gap or conflict: retry).
    BadNonce,
    /// The signer is not a registered, active operator.
    UnknownSigner,
    /// The signer lacks the role the action needs, or acts for another member.
    Unauthorized,
    /// A field is malformed or out of range.
    InvalidInput,
    /// A unified social credit code failed validation.
    InvalidUscc,
    /// The thing referred to does not exist.
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// Only the home member may change this.
    NotHomeMember,
    /// The proposal is past its expiry height.
    ProposalExpired,
    /// The proposal is no longer open (passed, rejected or applied).
    ProposalClosed,
    /// The action comes too early (e.g. credit repair before the minimum period).
    TooEarly,
    /// Not enough eligible experts for an extraction requirement.
    InsufficientExperts,
    /// A certificate or CRL could not be parsed or failed its checks.
    InvalidCertificate,
    /// The action conflicts with the current state (wrong status, duplicate vote).
    Conflict,
}

impl ErrorCode {
    /// The code as shown in receipts and by the CLI, e.g. `UNAUTHORIZED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::WrongChain => "WRONG_CHAIN",
            ErrorCode::BadNonce => "BAD_NONCE",
            ErrorCode::UnknownSigner => "UNKNOWN_SIGNER",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::InvalidUscc => "INVALID_USCC",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::NotHomeMember => "NOT_HOME_MEMBER",
            ErrorCode::ProposalExpired => "PROPOSAL_EXPIRED",
            ErrorCode::ProposalClosed => "PROPOSAL_CLOSED",
            ErrorCode::TooEarly => "TOO_EARLY",
            ErrorCode::InsufficientExperts => "INSUFFICIENT_EXPERTS",
            ErrorCode::InvalidCertificate => "INVALID_CERTIFICATE",
            ErrorCode::Conflict => "CONFLICT",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected transaction: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TxError {
    pub code: ErrorCode,
    pub message: String,
}

impl TxError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        TxError {
            code,
            message: message.into(),
        }
    }
}

/// Shorthand for `Err(TxError::new(code, message))`.
pub fn fail<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, TxError> {
    Err(TxError::new(code, message))
}

/// Returns the error when `condition` does not hold.
pub fn ensure(
    condition: bool,
    code: ErrorCode,
    message: impl FnOnce() -> String,
) -> Result<(), TxError> {
    if condition {
        Ok(())
    } else {
        Err(TxError::new(code, message()))
    }
}

impl From<crate::uscc::UsccError> for TxError {
    fn from(e: crate::uscc::UsccError) -> Self {
        TxError::new(ErrorCode::InvalidUscc, e.to_string())
    }
}
