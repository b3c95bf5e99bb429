//! The one canonical encoding: bincode with fixed-width little-endian
//! integers, no trailing bytes, and a size limit. Every hash and signature
//! in the chain is over bytes made here, so two nodes never disagree on them.

use bincode::Options;
use serde::{Serialize, de::DeserializeOwned};

/// Largest encoded object accepted anywhere (a transaction carrying a CRL or
/// a certificate chain stays far below it).
pub const MAX_ENCODED_LEN: u64 = 4 * 1024 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input of {0} bytes exceeds the limit of {MAX_ENCODED_LEN} bytes")]
    TooLarge(usize),
    #[error("{0} trailing bytes after the encoded value")]
    TrailingBytes(usize),
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(MAX_ENCODED_LEN)
}

/// Canonical bytes of `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    options()
        .serialize(value)
        .expect("values built in memory stay under the size limit")
}

/// Length of `value`'s canonical bytes, without making them.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    options()
        .serialized_size(value)
        .expect("values built in memory stay under the size limit") as usize
}

/// Decodes canonical bytes, rejecting oversize input, trailing bytes,
/// unknown enum variants and invalid field values.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() as u64 > MAX_ENCODED_LEN {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let mut reader = bytes;
    let value = options()
        .deserialize_from(&mut reader)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !reader.is_empty() {
        return Err(DecodeError::TrailingBytes(reader.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum E {
        A(u32),
        B(String),
    }

    #[test]
    fn round_trip_and_fixed_width() {
        let bytes = encode(&E::A(7));
        assert_eq!(bytes, vec![0, 0, 0, 0, 7, 0, 0, 0]);
        assert_eq!(decode::<E>(&bytes).unwrap(), E::A(7));
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = encode(&E::B("x".into()));
        bytes.push(0);
        assert_eq!(decode::<E>(&bytes), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn unknown_variant_rejected() {
        let bytes = [9u8, 0, 0, 0, 1, 0, 0, 0];
        assert!(matches!(
            decode::<E>(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn oversize_length_prefix_rejected() {
        // A string claiming 2^40 bytes must fail fast, not allocate.
        let mut bytes = vec![1, 0, 0, 0];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            decode::<E>(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }
}
