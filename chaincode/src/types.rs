//! Primitive value types shared by every domain: hashes, keys, signatures,
//! time. Raw bytes on the wire; validation (point decoding, signature checks)
//! happens where it is needed, not on decode.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A SHA-256 digest. Lowercase hex in JSON, 32 raw bytes in bincode.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

/// Serde for 32-byte values: hex text for human-readable formats (JSON), the
/// plain array (as derived) for bincode, so canonical bytes do not change.
macro_rules! bytes32_serde {
    ($t:ident) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(self.0))
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = String::deserialize(d)?;
                    Hash::from_hex(&text)
                        .map(|h| $t(h.0))
                        .map_err(serde::de::Error::custom)
                } else {
                    <[u8; 32]>::deserialize(d).map($t)
                }
            }
        }
    };
}

bytes32_serde!(Hash);
bytes32_serde!(PublicKey);
bytes32_serde!(EncryptionKey);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    pub fn of(bytes: &[u8]) -> Hash {
        Hash(Sha256::digest(bytes).into())
    }

    /// SHA-256 over the concatenation of `parts`.
    pub fn of_parts(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Hash, String> {
        let bytes = hex::decode(s.trim()).map_err(|e| format!("not hex: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("hash must be 32 bytes, got {}", b.len()))?;
        Ok(Hash(arr))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

/// A member's X25519 public key (RFC 7748), to which seat notices of sealed extractions are
/// encrypted ([`crate::experts::seal`]); 32 bytes, hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EncryptionKey(pub [u8; 32]);

impl EncryptionKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<EncryptionKey, String> {
        Hash::from_hex(s)
            .map(|h| EncryptionKey(h.0))
            .map_err(|e| format!("encryption key: {e}"))
    }
}

impl fmt::Display for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({})", &self.to_hex()[..16])
    }
}

/// An ed25519 public key, as its 32 compressed bytes (hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<PublicKey, String> {
        Hash::from_hex(s)
            .map(|h| PublicKey(h.0))
            .map_err(|e| format!("public key: {e}"))
    }

    pub fn verifying_key(
        &self,
    ) -> Result<ed25519_dalek::VerifyingKey, ed25519_dalek::SignatureError> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0)
    }
}

impl From<&ed25519_dalek::VerifyingKey> for PublicKey {
    fn from(k: &ed25519_dalek::VerifyingKey) -> Self {
        PublicKey(k.to_bytes())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..16])
    }
}

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                let arr: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature(arr))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Signature, E> {
                self.visit_bytes(&v)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Signature, E> {
                let bytes = hex::decode(v).map_err(E::custom)?;
                self.visit_bytes(&bytes)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

/// Milliseconds since the Unix epoch, from the block header (never a local clock).
pub type TimestampMs = u64;

/// A calendar date (decision dates, publication end dates, validity).
pub type Date = chrono::NaiveDate;

/// Dates as they travel: only chrono's own `YYYY-MM-DD` text is accepted. chrono's parser
/// also takes other spellings of a date (a form feed inside the year, "202\x0c-09-01", reads
/// as 0202-09-01), which would give one transaction two encodings (found by fuzzing). Use with
/// `#[serde(deserialize_with = "strict_date::one")]` (or `strict_date::optional`).
pub mod strict_date {
    use super::Date;
    use serde::{Deserialize, Deserializer, de::Error};

    fn canonical(text: &str) -> Result<Date, String> {
        let date: Date = text
            .parse()
            .map_err(|e| format!("date {text:?} is not YYYY-MM-DD: {e}"))?;
        if date.to_string() != text {
            return Err(format!(
                "date {text:?} is not written as YYYY-MM-DD (it would read as {date})"
            ));
        }
        Ok(date)
    }

    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        canonical(&String::deserialize(d)?).map_err(D::Error::custom)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| canonical(&text))
            .transpose()
            .map_err(D::Error::custom)
    }
}

/// The alliance's calendar runs on Beijing time (UTC+8): a decision dated
/// 2024-03-01 is in force from 2024-03-01 00:00 CST.
pub const CALENDAR_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// The Beijing-time calendar date of a block timestamp.
pub fn date_of(time_ms: TimestampMs) -> Date {
    let shifted = time_ms as i64 + CALENDAR_OFFSET_MS;
    chrono::DateTime::from_timestamp_millis(shifted)
        .map(|dt| dt.date_naive())
        .unwrap_or(chrono::NaiveDate::MAX)
}

/// Start of a Beijing-time calendar day in Unix milliseconds.
pub fn start_of_day_ms(date: Date) -> TimestampMs {
    let utc = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis();
    (utc - CALENDAR_OFFSET_MS).max(0) as u64
}

/// Parses `YYYY-MM-DD`, `YYYY/MM/DD` or `YYYY年MM月DD日` (the forms centers export).
pub fn parse_date(s: &str) -> Result<Date, String> {
    let t = s.trim();
    for fmt in ["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d", "%Y%m%d"] {
        if let Ok(d) = chrono::NaiveDate::parse_from_str(t, fmt) {
            return Ok(d);
        }
    }
    Err(format!(
        "date {t:?} is not YYYY-MM-DD, YYYY/MM/DD or YYYY年MM月DD日"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Dated {
        #[serde(deserialize_with = "strict_date::one")]
        date: Date,
        #[serde(default, deserialize_with = "strict_date::optional")]
        until: Option<Date>,
    }

    /// Regression (fuzz, tests/fuzz-corpus/tx/regression-date-two-encodings): a date spelled
    /// any way but `YYYY-MM-DD` does not decode, so a transaction has one encoding.
    #[test]
    fn dates_decode_only_as_written() {
        let ok = Dated {
            date: chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            until: chrono::NaiveDate::from_ymd_opt(202, 9, 1),
        };
        let bytes = crate::codec::encode(&ok);
        assert_eq!(crate::codec::decode::<Dated>(&bytes).unwrap(), ok);
        for odd in ["202\x0c-09-01", " 2026-09-01", "2026-9-1", "+2026-09-01"] {
            let text = |t: &str| crate::codec::encode(&(t.to_string(), None::<String>));
            let err = crate::codec::decode::<Dated>(&text(odd)).unwrap_err();
            assert!(err.to_string().contains("YYYY-MM-DD"), "{odd:?}: {err}");
            let both = crate::codec::encode(&("2026-09-01".to_string(), Some(odd.to_string())));
            assert!(crate::codec::decode::<Dated>(&both).is_err(), "{odd:?}");
        }
        let json: Dated = serde_json::from_str(r#"{"date":"2026-09-01"}"#).unwrap();
        assert_eq!(json.until, None);
    }

    #[test]
    fn dates_parse_in_every_export_form() {
        let d = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        for s in ["2024-03-01", "2024/03/01", "2024年03月01日", "2024年3月1日"] {
            assert_eq!(parse_date(s).unwrap(), d, "{s}");
        }
        assert!(parse_date("01/03/2024").unwrap_err().contains("01/03/2024"));
    }

    #[test]
    fn calendar_is_beijing_time() {
        let d = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let start = start_of_day_ms(d);
        assert_eq!(date_of(start), d);
        assert_eq!(date_of(start - 1), d.pred_opt().unwrap());
        // 16:00 UTC on Feb 29 is midnight in Beijing.
        assert_eq!(start, 1_709_222_400_000);
    }

    #[test]
    fn json_uses_hex_and_bincode_keeps_raw_bytes() {
        let h = Hash::of(b"x");
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            format!("\"{}\"", h.to_hex())
        );
        assert_eq!(
            serde_json::from_str::<Hash>(&serde_json::to_string(&h).unwrap()).unwrap(),
            h
        );
        assert_eq!(crate::codec::encode(&h), h.0.to_vec());
        let k = PublicKey([7; 32]);
        assert_eq!(
            crate::codec::decode::<PublicKey>(&crate::codec::encode(&k)).unwrap(),
            k
        );
        let sig = Signature([9; 64]);
        let json = serde_json::to_string(&sig).unwrap();
        assert_eq!(serde_json::from_str::<Signature>(&json).unwrap(), sig);
    }

    #[test]
    fn hash_hex_round_trip() {
        let h = Hash::of(b"caihong");
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(Hash::from_hex("abcd").unwrap_err().contains("32 bytes"));
    }
}
