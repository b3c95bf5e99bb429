//! Certificate revocation lists (RFC 5280 §5): who issued it, when, and which serials it
//! revokes, with the signature checked against the issuing CA's certificate.

use std::fmt;

use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::{CertError, Certificate, DistinguishedName, SignatureAlgorithm, algorithm, input};
use crate::Hash;

/// CRLReason (RFC 5280 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    RemoveFromCrl,
    PrivilegeWithdrawn,
    AaCompromise,
    /// A code outside the RFC's list (7 is unused, >10 undefined).
    Other(u8),
}

impl RevocationReason {
    pub fn from_code(code: u8) -> RevocationReason {
        use RevocationReason::*;
        match code {
            0 => Unspecified,
            1 => KeyCompromise,
            2 => CaCompromise,
            3 => AffiliationChanged,
            4 => Superseded,
            5 => CessationOfOperation,
            6 => CertificateHold,
            8 => RemoveFromCrl,
            9 => PrivilegeWithdrawn,
            10 => AaCompromise,
            c => Other(c),
        }
    }

    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        use RevocationReason::*;
        match self {
            Unspecified => 0,
            KeyCompromise => 1,
            CaCompromise => 2,
            AffiliationChanged => 3,
            Superseded => 4,
            CessationOfOperation => 5,
            CertificateHold => 6,
            RemoveFromCrl => 8,
            PrivilegeWithdrawn => 9,
            AaCompromise => 10,
            Other(c) => c,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RevocationReason::*;
        let name = match self {
            Unspecified => "unspecified",
            KeyCompromise => "keyCompromise",
            CaCompromise => "cACompromise",
            AffiliationChanged => "affiliationChanged",
            Superseded => "superseded",
            CessationOfOperation => "cessationOfOperation",
            CertificateHold => "certificateHold",
            RemoveFromCrl => "removeFromCRL",
            PrivilegeWithdrawn => "privilegeWithdrawn",
            AaCompromise => "aACompromise",
            Other(c) => return write!(f, "reason {c}"),
        };
        f.write_str(name)
    }
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Same form as [`Certificate::serial_hex`]: lowercase hex, no leading zero bytes.
    pub serial_hex: String,
    /// Unix seconds (UTC).
    pub revocation_time: i64,
    /// The reasonCode entry extension, when present.
    pub reason: Option<RevocationReason>,
}

/// A parsed CRL, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    der: Vec<u8>,
    fingerprint_sha256: Hash,
    issuer: DistinguishedName,
    this_update: i64,
    next_update: Option<i64>,
    crl_number_hex: Option<String>,
    authority_key_id: Option<Vec<u8>>,
    revoked: Vec<RevokedCertificate>,
    signature_algorithm: SignatureAlgorithm,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    signature_unused_bits: u8,
}

/// Parses a CRL from PEM (the first `X509 CRL` block) or DER.
pub fn parse_crl(input: &[u8]) -> Result<Crl, CertError> {
    let der = input::der_from(input, input::Kind::Crl)?;
    let (rest, crl) =
        CertificateRevocationList::from_der(&der).map_err(|e| CertError::NotACrl {
            reason: input::nom_reason(e),
        })?;
    if !rest.is_empty() {
        return Err(CertError::Malformed {
            field: "CRL",
            reason: format!("{} trailing bytes after the CRL", rest.len()),
        });
    }
    input::check_unsigned_envelope(&der, input::Kind::Crl)?;
    let tbs = &crl.tbs_cert_list;
    let revoked = tbs
        .revoked_certificates
        .iter()
        .map(|r| RevokedCertificate {
            serial_hex: super::serial_hex(r.raw_serial()),
            revocation_time: r.revocation_date.timestamp(),
            reason: r
                .reason_code()
                .map(|(_, code)| RevocationReason::from_code(code.0)),
        })
        .collect();
    let crl_number_hex = crl
        .crl_number()
        .map(|n| super::serial_hex(&n.to_bytes_be()));
    let parsed = Crl {
        fingerprint_sha256: Hash::of(&der),
        issuer: DistinguishedName::from_x509(&tbs.issuer),
        this_update: tbs.this_update.timestamp(),
        next_update: tbs.next_update.map(|t| t.timestamp()),
        crl_number_hex,
        authority_key_id: super::authority_key_id(tbs.extensions()),
        revoked,
        signature_algorithm: SignatureAlgorithm::from_oid(&crl.signature_algorithm.algorithm),
        tbs: tbs.as_ref().to_vec(),
        signature: crl.signature_value.data.to_vec(),
        signature_unused_bits: crl.signature_value.unused_bits,
        der: Vec::new(),
    };
    Ok(Crl { der, ..parsed })
}

impl Crl {
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn fingerprint_sha256(&self) -> Hash {
        self.fingerprint_sha256
    }

    pub fn issuer(&self) -> &DistinguishedName {
        &self.issuer
    }

    /// thisUpdate, Unix seconds.
    pub fn this_update(&self) -> i64 {
        self.this_update
    }

    /// nextUpdate, Unix seconds, when present.
    pub fn next_update(&self) -> Option<i64> {
        self.next_update
    }

    /// The cRLNumber extension as hex, when present.
    pub fn crl_number_hex(&self) -> Option<&str> {
        self.crl_number_hex.as_deref()
    }

    /// The authorityKeyIdentifier keyIdentifier: which key signed it, when present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.authority_key_id.as_deref()
    }

    /// Whether `issuer` may have signed this CRL as far as key identifiers tell (see
    /// [`Certificate::key_id_matches`]); the signature still has to be checked.
    pub fn key_id_matches(&self, issuer: &Certificate) -> bool {
        super::key_ids_compatible(self.authority_key_id(), issuer)
    }

    /// Entries in the order the CRL lists them.
    pub fn revoked(&self) -> &[RevokedCertificate] {
        &self.revoked
    }

    /// The entry for `serial_hex` (as from [`Certificate::serial_hex`]; case-insensitive).
    pub fn find(&self, serial_hex: &str) -> Option<&RevokedCertificate> {
        self.revoked
            .iter()
            .find(|r| r.serial_hex.eq_ignore_ascii_case(serial_hex))
    }

    pub fn signature_algorithm(&self) -> &SignatureAlgorithm {
        &self.signature_algorithm
    }

    /// Checks that `issuer` signed this CRL: same name, then the signature, as
    /// [`Certificate::verify_signed_by`].
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), CertError> {
        if &self.issuer != issuer.subject() {
            return Err(CertError::IssuerMismatch {
                expected: self.issuer.to_string(),
                found: issuer.subject().to_string(),
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
