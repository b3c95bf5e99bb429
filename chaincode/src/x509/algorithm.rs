//! Signature and public-key algorithms, and checking a signature with an issuer's key.
//!
//! Supported: RSA PKCS#1 v1.5 with SHA-256/384/512 (keys up to 8192 bits), ECDSA on P-256
//! with SHA-256, Ed25519, and SM2-with-SM3 (GM/T 0003; Z computed with
//! [`SM2_DEFAULT_DISTID`]). Anything else gives [`CertError::UnsupportedAlgorithm`].

use std::fmt;

use ed25519_dalek::Verifier as _;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_parser::asn1_rs::Oid;
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::input::der_tlv;
use super::{CertError, Certificate};

/// The signer ID (ENTL/ID in Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)) used for
/// certificates and CRLs: GM/T 0009's default, as used by Chinese CAs, GmSSL and OpenSSL 3.
pub const SM2_DEFAULT_DISTID: &str = "1234567812345678";

/// Largest RSA modulus accepted for verification, in bits (bounds verification work).
pub const RSA_MAX_BITS: usize = 8192;

/// A certificate's or CRL's signature algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SignatureAlgorithm {
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    /// Recognized so it can be named; never verified (SHA-1 is broken for signatures).
    RsaPkcs1Sha1,
    /// RSASSA-PSS: recognized, not verified.
    RsaPss,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    Ed25519,
    /// SM2 signature with SM3 (1.2.156.10197.1.501).
    Sm2Sm3,
    /// Any other algorithm, by dotted OID.
    Other(String),
}

impl SignatureAlgorithm {
    pub(crate) fn from_oid(oid: &Oid<'_>) -> SignatureAlgorithm {
        let s = oid.to_id_string();
        match s.as_str() {
            "1.2.840.113549.1.1.11" => Self::RsaPkcs1Sha256,
            "1.2.840.113549.1.1.12" => Self::RsaPkcs1Sha384,
            "1.2.840.113549.1.1.13" => Self::RsaPkcs1Sha512,
            "1.2.840.113549.1.1.5" => Self::RsaPkcs1Sha1,
            "1.2.840.113549.1.1.10" => Self::RsaPss,
            "1.2.840.10045.4.3.2" => Self::EcdsaSha256,
            "1.2.840.10045.4.3.3" => Self::EcdsaSha384,
            "1.2.840.10045.4.3.4" => Self::EcdsaSha512,
            "1.3.101.112" => Self::Ed25519,
            "1.2.156.10197.1.501" => Self::Sm2Sm3,
            _ => Self::Other(s),
        }
    }

    /// Dotted OID.
    pub fn oid(&self) -> &str {
        match self {
            Self::RsaPkcs1Sha256 => "1.2.840.113549.1.1.11",
            Self::RsaPkcs1Sha384 => "1.2.840.113549.1.1.12",
            Self::RsaPkcs1Sha512 => "1.2.840.113549.1.1.13",
            Self::RsaPkcs1Sha1 => "1.2.840.113549.1.1.5",
            Self::RsaPss => "1.2.840.113549.1.1.10",
            Self::EcdsaSha256 => "1.2.840.10045.4.3.2",
            Self::EcdsaSha384 => "1.2.840.10045.4.3.3",
            Self::EcdsaSha512 => "1.2.840.10045.4.3.4",
            Self::Ed25519 => "1.3.101.112",
            Self::Sm2Sm3 => "1.2.156.10197.1.501",
            Self::Other(oid) => oid,
        }
    }

    /// Conventional name (as OpenSSL prints it), or the dotted OID for unknown ones.
    pub fn name(&self) -> &str {
        match self {
            Self::RsaPkcs1Sha256 => "sha256WithRSAEncryption",
            Self::RsaPkcs1Sha384 => "sha384WithRSAEncryption",
            Self::RsaPkcs1Sha512 => "sha512WithRSAEncryption",
            Self::RsaPkcs1Sha1 => "sha1WithRSAEncryption",
            Self::RsaPss => "RSASSA-PSS",
            Self::EcdsaSha256 => "ecdsa-with-SHA256",
            Self::EcdsaSha384 => "ecdsa-with-SHA384",
            Self::EcdsaSha512 => "ecdsa-with-SHA512",
            Self::Ed25519 => "Ed25519",
            Self::Sm2Sm3 => "SM2-with-SM3",
            Self::Other(oid) => oid,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The algorithm (and size or curve) of a subject public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PublicKeyAlgorithm {
    /// RSA with the modulus size in bits (0 if the key could not be decoded).
    Rsa {
        bits: u32,
    },
    /// ECDSA on NIST P-256 (prime256v1).
    EcP256,
    EcP384,
    EcP521,
    /// An EC key on another curve, by the curve's dotted OID (or `""` when absent).
    Ec {
        curve: String,
    },
    Ed25519,
    /// SM2 (1.2.156.10197.1.301), as id-ecPublicKey with the SM2 curve or as the bare OID.
    Sm2,
    /// Any other key type, by dotted OID.
    Other(String),
}

impl PublicKeyAlgorithm {
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> PublicKeyAlgorithm {
        const SM2_CURVE: &str = "1.2.156.10197.1.301";
        let alg = spki.algorithm.algorithm.to_id_string();
        match alg.as_str() {
            "1.2.840.113549.1.1.1" => {
                let bits = match spki.parsed() {
                    Ok(ParsedKey::RSA(rsa)) => modulus_bits(rsa.modulus),
                    _ => 0,
                };
                Self::Rsa { bits }
            }
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    "1.2.840.10045.3.1.7" => Self::EcP256,
                    "1.3.132.0.34" => Self::EcP384,
                    "1.3.132.0.35" => Self::EcP521,
                    SM2_CURVE => Self::Sm2,
                    _ => Self::Ec { curve },
                }
            }
            "1.3.101.112" => Self::Ed25519,
            SM2_CURVE => Self::Sm2,
            _ => Self::Other(alg),
        }
    }
}

impl fmt::Display for PublicKeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA {bits}"),
            Self::EcP256 => f.write_str("EC P-256"),
            Self::EcP384 => f.write_str("EC P-384"),
            Self::EcP521 => f.write_str("EC P-521"),
            Self::Ec { curve } => write!(f, "EC (curve {curve})"),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Sm2 => f.write_str("SM2"),
            Self::Other(oid) => write!(f, "unknown ({oid})"),
        }
    }
}

fn modulus_bits(modulus: &[u8]) -> u32 {
    let Some(pos) = modulus.iter().position(|&b| b != 0) else {
        return 0;
    };
    let significant = (modulus.len() - pos) as u32;
    significant * 8 - modulus[pos].leading_zeros()
}

/// Verifies `signature` over `message` (TBS bytes) made with `algorithm` by `issuer`'s key.
pub(crate) fn verify(
    algorithm: &SignatureAlgorithm,
    issuer: &Certificate,
    message: &[u8],
    signature: &[u8],
    unused_bits: u8,
) -> Result<(), CertError> {
    use PublicKeyAlgorithm as K;
    use SignatureAlgorithm as S;
    let key_alg = issuer.public_key_algorithm();
    let key = issuer.public_key();
    let unsupported = || CertError::UnsupportedAlgorithm {
        algorithm: format!("{} ({})", algorithm.name(), algorithm.oid()),
    };
    let mismatch = || CertError::KeyAlgorithmMismatch {
        signature_algorithm: algorithm.name().to_string(),
        public_key_algorithm: key_alg.to_string(),
    };
    match algorithm {
        S::RsaPkcs1Sha1 | S::RsaPss | S::Other(_) => return Err(unsupported()),
        _ => {}
    }
    if unused_bits != 0 {
        return Err(bad("the signature BIT STRING has unused bits"));
    }
    match (algorithm, key_alg) {
        (S::RsaPkcs1Sha256 | S::RsaPkcs1Sha384 | S::RsaPkcs1Sha512, K::Rsa { .. }) => {
            verify_rsa(algorithm, issuer, message, signature)
        }
        (S::RsaPkcs1Sha256 | S::RsaPkcs1Sha384 | S::RsaPkcs1Sha512, _) => Err(mismatch()),
        (S::EcdsaSha256, K::EcP256) => verify_p256(key, message, signature),
        (
            S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512,
            K::EcP384 | K::EcP521 | K::Ec { .. },
        ) => Err(CertError::UnsupportedAlgorithm {
            algorithm: format!("{} ({} key)", algorithm.name(), key_alg),
        }),
        (S::EcdsaSha384 | S::EcdsaSha512, K::EcP256) => Err(unsupported()),
        (S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512, _) => Err(mismatch()),
        (S::Ed25519, K::Ed25519) => verify_ed25519(key, message, signature),
        (S::Ed25519, _) => Err(mismatch()),
        (S::Sm2Sm3, K::Sm2) => verify_sm2(key, message, signature),
        (S::Sm2Sm3, _) => Err(mismatch()),
        (S::RsaPkcs1Sha1 | S::RsaPss | S::Other(_), _) => Err(unsupported()),
    }
}

fn bad(reason: impl Into<String>) -> CertError {
    CertError::BadSignature {
        reason: reason.into(),
    }
}

fn invalid_key(reason: impl fmt::Display) -> CertError {
    CertError::InvalidPublicKey {
        reason: reason.to_string(),
    }
}

fn verify_rsa(
    algorithm: &SignatureAlgorithm,
    issuer: &Certificate,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CertError> {
    use rsa::pkcs1::der::Decode as _;
    // Decode n and e from PKCS#1, then build the key with our own size bound (the crate's
    // default refuses keys over 4096 bits).
    let parsed = rsa::pkcs1::RsaPublicKey::from_der(issuer.public_key())
        .map_err(|e| invalid_key(format!("RSA key: {e}")))?;
    let n = rsa::BigUint::from_bytes_be(parsed.modulus.as_bytes());
    let e = rsa::BigUint::from_bytes_be(parsed.public_exponent.as_bytes());
    let key = rsa::RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS)
        .map_err(|e| invalid_key(format!("RSA key: {e}")))?;
    let result = match algorithm {
        SignatureAlgorithm::RsaPkcs1Sha256 => key.verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        ),
        SignatureAlgorithm::RsaPkcs1Sha384 => key.verify(
            rsa::Pkcs1v15Sign::new::<Sha384>(),
            &Sha384::digest(message),
            signature,
        ),
        _ => key.verify(
            rsa::Pkcs1v15Sign::new::<Sha512>(),
            &Sha512::digest(message),
            signature,
        ),
    };
    result.map_err(|e| bad(format!("RSA PKCS#1 v1.5 ({}): {e}", algorithm.name())))
}

fn verify_p256(key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CertError> {
    use p256::ecdsa::signature::Verifier as _;
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
        .map_err(|_| invalid_key("not a P-256 point"))?;
    let (r, s) = der_signature_scalars(signature)?;
    let sig =
        p256::ecdsa::Signature::from_scalars(r, s).map_err(|_| bad("ECDSA r or s out of range"))?;
    vk.verify(message, &sig)
        .map_err(|_| bad("ECDSA P-256 signature does not verify"))
}

fn verify_ed25519(key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CertError> {
    let key: &[u8; 32] = key
        .try_into()
        .map_err(|_| invalid_key(format!("Ed25519 key is {} bytes, not 32", key.len())))?;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(key).map_err(invalid_key)?;
    let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| {
        bad(format!(
            "Ed25519 signature is {} bytes, not 64",
            signature.len()
        ))
    })?;
    vk.verify(message, &sig)
        .map_err(|_| bad("Ed25519 signature does not verify"))
}

fn verify_sm2(key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CertError> {
    use sm2::dsa::signature::Verifier as _;
    let vk = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DEFAULT_DISTID, key)
        .map_err(|_| invalid_key("not an SM2 point"))?;
    let (r, s) = der_signature_scalars(signature)?;
    let sig =
        sm2::dsa::Signature::from_scalars(r, s).map_err(|_| bad("SM2 r or s out of range"))?;
    vk.verify(message, &sig)
        .map_err(|_| bad("SM2-with-SM3 signature does not verify"))
}

/// Decodes `SEQUENCE { r INTEGER, s INTEGER }` (ECDSA-Sig-Value, also used by SM2) into two
/// 32-byte big-endian scalars. Strict DER (minimal lengths and integers, nothing trailing), so
/// a signature has one encoding.
fn der_signature_scalars(sig: &[u8]) -> Result<([u8; 32], [u8; 32]), CertError> {
    let malformed = || bad("signature is not a strict-DER SEQUENCE of two INTEGERs");
    let expect = |input, tag| match der_tlv(input) {
        Some((tlv, rest)) if tlv.tag == tag => Ok((tlv.contents, rest)),
        _ => Err(malformed()),
    };
    let (body, rest) = expect(sig, 0x30)?;
    let (r, body) = expect(body, 0x02)?;
    let (s, body) = expect(body, 0x02)?;
    if !rest.is_empty() || !body.is_empty() {
        return Err(malformed());
    }
    Ok((
        scalar32(r).ok_or_else(malformed)?,
        scalar32(s).ok_or_else(malformed)?,
    ))
}

/// A positive, minimally encoded INTEGER's content as 32 big-endian bytes.
fn scalar32(int: &[u8]) -> Option<[u8; 32]> {
    let digits = match int {
        [] => return None,
        [b, ..] if b & 0x80 != 0 => return None, // negative
        [0, next, ..] if next & 0x80 == 0 => return None, // not minimal
        [0, rest @ ..] => rest,
        all => all,
    };
    if digits.len() > 32 {
        return None;
    }
    let mut out = [0u8; 32];
    out[32 - digits.len()..].copy_from_slice(digits);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_scalars() {
        let sig = [0x30, 0x07, 0x02, 0x02, 0x00, 0x81, 0x02, 0x01, 0x05];
        let (r, s) = der_signature_scalars(&sig).unwrap();
        assert_eq!(r[31], 0x81);
        assert_eq!(r[30], 0);
        assert_eq!(s[31], 0x05);
        // Trailing byte, negative integer, truncated.
        assert!(
            der_signature_scalars(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x05, 0x00]).is_err()
        );
        assert!(der_signature_scalars(&[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x05]).is_err());
        assert!(der_signature_scalars(&[0x30, 0x06, 0x02, 0x01]).is_err());
    }

    #[test]
    fn modulus_bit_count() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[0x00]), 0);
    }

    #[test]
    fn names_and_oids() {
        let sm2 = SignatureAlgorithm::Sm2Sm3;
        assert_eq!(sm2.name(), "SM2-with-SM3");
        assert_eq!(sm2.oid(), "1.2.156.10197.1.501");
        assert_eq!(
            PublicKeyAlgorithm::Rsa { bits: 2048 }.to_string(),
            "RSA 2048"
        );
        assert_eq!(PublicKeyAlgorithm::EcP256.to_string(), "EC P-256");
    }
}
