//! X.509 certificates and CRLs for CA mutual recognition (跨区域身份互认 / CA 数字证书互认).
//!
//! This module turns the bytes a member submits (a CA root, a bidder's certificate from a
//! USB key, a CRL) into plain owned values the chaincode can store and compare, and checks
//! signatures between them. It is pure: no clock (callers pass the time to
//! [`Certificate::validity_at`]), no IO, no randomness, and it never panics on any input.
//!
//! ```no_run
//! use caihong_chaincode::x509::{parse_certificate, parse_crl, CertError, Validity};
//! # fn demo(root_pem: &[u8], bidder_der: &[u8], crl_pem: &[u8], now: i64) -> Result<(), CertError> {
//! let root = parse_certificate(root_pem)?; // PEM or DER
//! let bidder = parse_certificate(bidder_der)?;
//! println!("issuer id {}", root.fingerprint_sha256().to_hex());
//! match bidder.verify_signed_by(&root) {
//!     Ok(()) => {}
//!     Err(CertError::UnsupportedAlgorithm { algorithm }) => {
//!         println!("signature not checked: algorithm {algorithm} unsupported")
//!     }
//!     Err(e) => return Err(e),
//! }
//! assert_eq!(bidder.validity_at(now), Validity::Valid);
//! println!("USCC {:?}", bidder.uscc());
//! let crl = parse_crl(crl_pem)?;
//! crl.verify_signed_by(&root)?;
//! let revoked = crl.find(bidder.serial_hex()).is_some();
//! # let _ = revoked; Ok(()) }
//! ```
//!
//! # Layout
//! - this file: [`Certificate`], [`parse_certificate`], [`CertError`], [`Validity`].
//! - [`name`]: distinguished names rendered RFC 4514 style, and finding the USCC in a subject.
//! - [`algorithm`]: signature and public-key algorithms, and signature verification.
//! - [`crl`]: certificate revocation lists.
//! - `input` (private): PEM or DER detection and decoding.
//!
//! # Design
//! - Parsing uses `x509-parser`, which is lenient about real-world encodings and keeps the
//!   exact TBS bytes, so a signature is checked over what the CA signed, not a re-encoding.
//!   Everything is copied into owned values ([`Certificate`] has no lifetime) so the chaincode
//!   can keep them across calls.
//! - Signatures: RSA PKCS#1 v1.5 (SHA-256/384/512), ECDSA P-256 with SHA-256, Ed25519, and
//!   SM2-with-SM3 with the default signer ID `1234567812345678` (GM/T 0009, as Chinese CAs,
//!   GmSSL and OpenSSL 3 use for certificates). Anything else is
//!   [`CertError::UnsupportedAlgorithm`], which callers report as "not checked", not "bad".
//!   SHA-1 and MD5 signatures are deliberately unsupported.
//! - Verification checks one link (signature and issuer name). Chain policy (is the issuer a
//!   recognized CA, `is_ca`, validity, revocation) is the caller's, since it depends on
//!   chain state; for it the certificate exposes the extensions that path building needs:
//!   basicConstraints (`is_ca`, [`Certificate::path_len_constraint`]), keyUsage
//!   ([`Certificate::key_usage`]) and the key identifiers ([`Certificate::subject_key_id`],
//!   [`Certificate::authority_key_id`], [`Crl::authority_key_id`]).

pub mod algorithm;
pub mod crl;
mod input;
pub mod name;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{ParsedExtension, X509Extension};
use x509_parser::prelude::FromDer;

pub use algorithm::{PublicKeyAlgorithm, SM2_DEFAULT_DISTID, SignatureAlgorithm};
pub use crl::{Crl, RevocationReason, RevokedCertificate, parse_crl};
pub use name::{AttributeValue, DistinguishedName, NameAttribute, UsccSource};

use crate::{Hash, Uscc};

/// Why bytes could not be used as a certificate or CRL, or why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The input is empty.
    #[error("input is empty")]
    Empty,
    /// Neither a PEM block nor a DER structure: for example text, or random bytes.
    #[error("not PEM or DER: {reason}")]
    NotPemOrDer { reason: String },
    /// PEM, but no block with the expected label (for example a key file given as a certificate).
    #[error(
        "no {expected} PEM block found (blocks present: {}); is this a key or another kind of file?",
        if found.is_empty() { "none".to_string() } else { found.join(", ") }
    )]
    NoPemBlock {
        expected: &'static str,
        found: Vec<String>,
    },
    /// Well-formed DER, but not an X.509 certificate (for example a public or private key).
    #[error("not an X.509 certificate: {reason}")]
    NotACertificate { reason: String },
    /// Well-formed DER, but not an X.509 CRL.
    #[error("not an X.509 CRL: {reason}")]
    NotACrl { reason: String },
    /// The structure is recognized but a field is broken (truncated, bad PEM base64,
    /// trailing bytes, an unparsable extension, mismatched algorithm identifiers…).
    #[error("malformed {field}: {reason}")]
    Malformed { field: &'static str, reason: String },
    /// The signature uses an algorithm (or key/curve) this module does not verify. The
    /// signature was not checked: it is neither good nor bad.
    #[error("signature not checked: algorithm {algorithm} unsupported")]
    UnsupportedAlgorithm { algorithm: String },
    /// The signature algorithm does not fit the issuer's key (e.g. ECDSA over an RSA key).
    #[error(
        "signature algorithm {signature_algorithm} cannot be made with a {public_key_algorithm} key"
    )]
    KeyAlgorithmMismatch {
        signature_algorithm: String,
        public_key_algorithm: String,
    },
    /// The issuer's public key could not be decoded for its algorithm.
    #[error("issuer public key is invalid: {reason}")]
    InvalidPublicKey { reason: String },
    /// The issuer named in the certificate or CRL is not the subject of the given issuer certificate.
    #[error(
        "issuer mismatch: signed by {expected:?} but the issuer certificate given is {found:?}"
    )]
    IssuerMismatch { expected: String, found: String },
    /// The signature does not verify with the issuer's key (tampered data or wrong key).
    #[error("bad signature: {reason}")]
    BadSignature { reason: String },
}

/// Where a time falls relative to a certificate's validity period (both ends inclusive,
/// RFC 5280 §4.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Validity {
    NotYetValid,
    Valid,
    Expired,
}

/// The keyUsage bits that matter to certification paths (RFC 5280 §4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeyUsage {
    pub digital_signature: bool,
    pub non_repudiation: bool,
    /// May sign certificates (a CA's key).
    pub key_cert_sign: bool,
    /// May sign CRLs.
    pub crl_sign: bool,
}

/// A parsed X.509 certificate: owned, immutable, and cheap to clone into chain records.
///
/// Build one with [`parse_certificate`]; the accessors expose what the chain keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    fingerprint_sha256: Hash,
    version: u32,
    serial_hex: String,
    subject: DistinguishedName,
    issuer: DistinguishedName,
    not_before: i64,
    not_after: i64,
    signature_algorithm: SignatureAlgorithm,
    public_key_algorithm: PublicKeyAlgorithm,
    /// The BIT STRING contents of subjectPublicKey (PKCS#1 key, SEC1 point, or raw Ed25519 key).
    public_key: Vec<u8>,
    is_ca: bool,
    path_len_constraint: Option<u32>,
    key_usage: Option<KeyUsage>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    uscc: Option<(Uscc, UsccSource)>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    signature_unused_bits: u8,
}

/// Parses one certificate from PEM (the first `CERTIFICATE` block; text around it is
/// ignored) or DER.
///
/// Errors: [`CertError::Empty`], [`CertError::NotPemOrDer`], [`CertError::NoPemBlock`] (e.g. a
/// key in PEM), [`CertError::NotACertificate`] (e.g. a key in DER), [`CertError::Malformed`].
pub fn parse_certificate(input: &[u8]) -> Result<Certificate, CertError> {
    let der = input::der_from(input, input::Kind::Certificate)?;
    Certificate::from_der(der)
}

impl Certificate {
    fn from_der(der: Vec<u8>) -> Result<Certificate, CertError> {
        let (rest, cert) =
            X509Certificate::from_der(&der).map_err(|e| CertError::NotACertificate {
                reason: input::nom_reason(e),
            })?;
        if !rest.is_empty() {
            return Err(CertError::Malformed {
                field: "certificate",
                reason: format!("{} trailing bytes after the certificate", rest.len()),
            });
        }
        input::check_unsigned_envelope(&der, input::Kind::Certificate)?;
        let tbs = &cert.tbs_certificate;
        let basic_constraints = tbs.basic_constraints().map_err(|e| CertError::Malformed {
            field: "basicConstraints",
            reason: e.to_string(),
        })?;
        let is_ca = basic_constraints.as_ref().is_some_and(|bc| bc.value.ca);
        let path_len_constraint = basic_constraints
            .filter(|bc| bc.value.ca)
            .and_then(|bc| bc.value.path_len_constraint);
        let key_usage = tbs
            .key_usage()
            .map_err(|e| CertError::Malformed {
                field: "keyUsage",
                reason: e.to_string(),
            })?
            .map(|ku| KeyUsage {
                digital_signature: ku.value.digital_signature(),
                non_repudiation: ku.value.non_repudiation(),
                key_cert_sign: ku.value.key_cert_sign(),
                crl_sign: ku.value.crl_sign(),
            });
        let subject_key_id = tbs
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            });
        let authority_key_id = authority_key_id(tbs.extensions());
        let subject = DistinguishedName::from_x509(&tbs.subject);
        let issuer = DistinguishedName::from_x509(&tbs.issuer);
        let uscc = name::find_uscc(&subject);
        let spki = &tbs.subject_pki;
        Ok(Certificate {
            fingerprint_sha256: Hash::of(&der),
            version: tbs.version.0 + 1,
            serial_hex: serial_hex(tbs.raw_serial()),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            signature_algorithm: SignatureAlgorithm::from_oid(&cert.signature_algorithm.algorithm),
            public_key_algorithm: PublicKeyAlgorithm::from_spki(spki),
            public_key: spki.subject_public_key.data.to_vec(),
            is_ca,
            path_len_constraint,
            key_usage,
            subject_key_id,
            authority_key_id,
            uscc,
            tbs: tbs.as_ref().to_vec(),
            signature: cert.signature_value.data.to_vec(),
            signature_unused_bits: cert.signature_value.unused_bits,
            subject,
            issuer,
            der: Vec::new(),
        }
        .with_der(der))
    }

    fn with_der(mut self, der: Vec<u8>) -> Self {
        self.der = der;
        self
    }

    /// The certificate's DER encoding (what the fingerprint is over).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER: the identifier of a CA issuer on chain.
    pub fn fingerprint_sha256(&self) -> Hash {
        self.fingerprint_sha256
    }

    /// X.509 version, 1 to 3.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Serial number as lowercase hex without colons or leading zero bytes (`"00"` for zero),
    /// the same form as [`RevokedCertificate::serial_hex`].
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    pub fn subject(&self) -> &DistinguishedName {
        &self.subject
    }

    pub fn issuer(&self) -> &DistinguishedName {
        &self.issuer
    }

    /// Start of validity, Unix seconds (UTC).
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of validity, Unix seconds (UTC), inclusive.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    pub fn signature_algorithm(&self) -> &SignatureAlgorithm {
        &self.signature_algorithm
    }

    pub fn public_key_algorithm(&self) -> &PublicKeyAlgorithm {
        &self.public_key_algorithm
    }

    /// The raw subjectPublicKey bits: PKCS#1 RSAPublicKey DER, a SEC1 EC point, or 32 Ed25519 bytes.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Whether basicConstraints says `CA:TRUE` (false when the extension is absent).
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// basicConstraints pathLenConstraint of a CA: how many non-self-issued intermediate CA
    /// certificates may follow it in a path (`None`: no limit, or not a CA).
    pub fn path_len_constraint(&self) -> Option<u32> {
        self.path_len_constraint
    }

    /// The keyUsage extension, when present (absent means no restriction).
    pub fn key_usage(&self) -> Option<KeyUsage> {
        self.key_usage
    }

    /// Whether this certificate's key may sign certificates: keyUsage absent or with keyCertSign.
    pub fn may_sign_certificates(&self) -> bool {
        self.key_usage.is_none_or(|k| k.key_cert_sign)
    }

    /// Whether this certificate's key may sign CRLs: keyUsage absent or with cRLSign.
    pub fn may_sign_crls(&self) -> bool {
        self.key_usage.is_none_or(|k| k.crl_sign)
    }

    /// subjectKeyIdentifier: the identifier of this certificate's key, when present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.subject_key_id.as_deref()
    }

    /// authorityKeyIdentifier keyIdentifier: the identifier of the issuer's key, when present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.authority_key_id.as_deref()
    }

    /// Whether `issuer` may be the CA that signed this certificate as far as key identifiers
    /// tell: false only when both identifiers are present and differ (RFC 5280 §4.2.1.1). The
    /// signature still has to be checked with [`Certificate::verify_signed_by`].
    pub fn key_id_matches(&self, issuer: &Certificate) -> bool {
        key_ids_compatible(self.authority_key_id(), issuer)
    }

    /// The unified social credit code found in the subject, if any (see [`name::find_uscc`]).
    pub fn uscc(&self) -> Option<&Uscc> {
        self.uscc.as_ref().map(|(u, _)| u)
    }

    /// Which subject attribute the USCC came from.
    pub fn uscc_source(&self) -> Option<UsccSource> {
        self.uscc.as_ref().map(|(_, s)| *s)
    }

    /// Whether the issuer and subject names are the same (a root or a self-issued certificate).
    pub fn is_self_issued(&self) -> bool {
        self.issuer == self.subject
    }

    /// Where `unix_secs` falls relative to `not_before..=not_after`.
    pub fn validity_at(&self, unix_secs: i64) -> Validity {
        if unix_secs < self.not_before {
            Validity::NotYetValid
        } else if unix_secs > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }

    /// Checks that `issuer` signed this certificate: the issuer name in this certificate must
    /// equal `issuer`'s subject ([`CertError::IssuerMismatch`]), then the signature over the
    /// TBS bytes must verify with `issuer`'s public key ([`CertError::BadSignature`]).
    ///
    /// [`CertError::UnsupportedAlgorithm`] means the signature was not checked. Whether the
    /// issuer may act as a CA (`is_ca`, validity, recognition) is for the caller to decide.
    /// For a root, pass the certificate itself.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), CertError> {
        if self.issuer != issuer.subject {
            return Err(CertError::IssuerMismatch {
                expected: self.issuer.to_string(),
                found: issuer.subject.to_string(),
            });
        }
        algorithm::verify(
            &self.signature_algorithm,
            issuer,
            &self.tbs,
            &self.signature,
            self.signature_unused_bits,
        )
    }
}

/// The keyIdentifier of an authorityKeyIdentifier extension among `extensions`, if any.
pub(crate) fn authority_key_id(extensions: &[X509Extension<'_>]) -> Option<Vec<u8>> {
    extensions.iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => {
            aki.key_identifier.as_ref().map(|id| id.0.to_vec())
        }
        _ => None,
    })
}

/// An authority key identifier rules out `issuer` only when both identifiers are present and differ.
pub(crate) fn key_ids_compatible(authority_key_id: Option<&[u8]>, issuer: &Certificate) -> bool {
    match (authority_key_id, issuer.subject_key_id()) {
        (Some(aki), Some(ski)) => aki == ski,
        _ => true,
    }
}

/// Lowercase hex of a DER INTEGER's content bytes with leading zero bytes removed (keeping one
/// byte for zero), so `00 a1` and `a1` give the same serial.
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    match raw.get(start..) {
        Some(bytes) if !bytes.is_empty() => hex::encode(bytes),
        _ => "00".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_hex_strips_leading_zeros_but_keeps_zero() {
        assert_eq!(serial_hex(&[0x00, 0xa1, 0x02]), "a102");
        assert_eq!(serial_hex(&[0x5a, 0x10, 0x01]), "5a1001");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x00, 0x00]), "00");
        assert_eq!(serial_hex(&[]), "00");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(matches!(parse_certificate(b""), Err(CertError::Empty)));
        let e = parse_certificate(b"hello, I am not a certificate").unwrap_err();
        assert!(matches!(e, CertError::NotPemOrDer { .. }), "{e:?}");
        let key =
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        let e = parse_certificate(key).unwrap_err();
        assert_eq!(
            e,
            CertError::NoPemBlock {
                expected: "CERTIFICATE",
                found: vec!["PRIVATE KEY".into()]
            }
        );
        assert!(e.to_string().contains("PRIVATE KEY"), "{e}");
        // A DER SEQUENCE that is not a certificate: SEQUENCE { INTEGER 1 }.
        let e = parse_certificate(&[0x30, 0x03, 0x02, 0x01, 0x01]).unwrap_err();
        assert!(matches!(e, CertError::NotACertificate { .. }), "{e:?}");
        // A DER header claiming more bytes than there are.
        let e = parse_certificate(&[0x30, 0x82, 0x01, 0x00, 0x02]).unwrap_err();
        assert!(
            matches!(e, CertError::Malformed { field: "DER", .. }),
            "{e:?}"
        );
    }

    #[test]
    fn bad_pem_base64_is_malformed() {
        let pem = b"-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n";
        let e = parse_certificate(pem).unwrap_err();
        assert!(
            matches!(e, CertError::Malformed { field: "PEM", .. }),
            "{e:?}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_certificate(&bytes);
            let _ = parse_crl(&bytes);
            // Also behind a DER SEQUENCE header, so the parser gets past the first check.
            let mut der = vec![0x30, 0x82, (bytes.len() >> 8) as u8, bytes.len() as u8];
            der.extend_from_slice(&bytes);
            let _ = parse_certificate(&der);
            let _ = parse_crl(&der);
        }
    }
}
