//! Identity mutual recognition (跨区域身份互认 / CA 数字证书互认).
//!
//! Members register CA issuers by their root certificate (identified by the
//! SHA-256 fingerprint of its DER) and declare which issuers they recognize.
//! An issuer is alliance-recognized when the share of current members that
//! recognize it reaches `ca_recognition_threshold_bp` (all, by default).
//! Subject certificates (a bidder's CA锁) are registered with the USCC found
//! in their subject and their signature checked against the issuer where the
//! algorithm is supported; revocation comes by serial or from a signed CRL.
//! [`verify`] answers, for one member or the whole alliance, whether a
//! certificate is recognized, with every reason when it is not.

use serde::{Deserialize, Serialize};

use crate::credit;
use crate::ctx::{Ctx, TxOutput, params, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{MemberId, Role, members};
use crate::state::StateReader;
use crate::types::{Hash, TimestampMs};
use crate::uscc::Uscc;
use crate::x509::{self, CertError, Certificate, Validity};

/// A registered CA issuer (电子认证服务机构).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaIssuer {
    pub fingerprint: Hash,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub signature_algorithm: String,
    pub public_key_algorithm: String,
    /// The root certificate's DER, so anyone can check signatures against it.
    pub der: Vec<u8>,
    pub registered_by: MemberId,
    pub height: u64,
}

/// Whether a signature was checked when a certificate was registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureCheck {
    Verified,
    /// The algorithm is not one this chain verifies; the certificate was kept unverified.
    NotChecked {
        algorithm: String,
    },
}

/// A registered subject certificate (e.g. a bidder's CA锁).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectCertificate {
    pub fingerprint: Hash,
    pub serial_hex: String,
    pub issuer: Hash,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub uscc: Option<Uscc>,
    pub signature: SignatureCheck,
    pub registered_by: MemberId,
    pub height: u64,
}

/// A revoked serial of an issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub issuer: Hash,
    pub serial_hex: String,
    pub reason: String,
    /// Unix seconds: the CRL's revocation time, or the block time for manual revocation.
    pub revoked_at: i64,
    /// The CRL it came from (its fingerprint), if any.
    pub crl: Option<Hash>,
    pub recorded_by: MemberId,
    pub height: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaAction {
    /// Register a CA issuer by its root certificate (PEM or DER). Admin; the
    /// registering member recognizes it.
    RegisterIssuer { certificate: Vec<u8> },
    /// Declare whether the signer's member recognizes an issuer (互认). Admin.
    SetRecognition { issuer: Hash, recognized: bool },
    /// Register a subject certificate (PEM or DER). Registrar.
    RegisterCertificate { certificate: Vec<u8> },
    /// Revoke a serial of an issuer (吊销). Registrar.
    RevokeCertificate {
        issuer: Hash,
        serial_hex: String,
        reason: String,
    },
    /// Import a CRL signed by a registered issuer. Registrar.
    ImportCrl { crl: Vec<u8> },
}

fn cert_error(what: &str, e: CertError) -> TxError {
    TxError::new(ErrorCode::InvalidCertificate, format!("{what}: {e}"))
}

pub(crate) fn execute(ctx: &mut Ctx<'_>, action: &CaAction) -> Result<TxOutput, TxError> {
    match action {
        CaAction::RegisterIssuer { certificate } => register_issuer(ctx, certificate),
        CaAction::SetRecognition { issuer, recognized } => {
            set_recognition(ctx, issuer, *recognized)
        }
        CaAction::RegisterCertificate { certificate } => register_certificate(ctx, certificate),
        CaAction::RevokeCertificate {
            issuer,
            serial_hex,
            reason,
        } => revoke_certificate(ctx, issuer, serial_hex, reason),
        CaAction::ImportCrl { crl } => import_crl(ctx, crl),
    }
}

/// A member's admin registers a CA certificate as an issuer, recognized by its member.
fn register_issuer(ctx: &mut Ctx<'_>, certificate: &[u8]) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Admin)?;
    let cert =
        x509::parse_certificate(certificate).map_err(|e| cert_error("issuer certificate", e))?;
    let fp = cert.fingerprint_sha256();
    ensure(
        !ctx.exists(&keys::issuer(&fp)),
        ErrorCode::AlreadyExists,
        || format!("issuer {fp} is already registered"),
    )?;
    ensure(cert.is_ca(), ErrorCode::InvalidCertificate, || {
        format!(
            "{} is not a CA certificate (basicConstraints CA is not set)",
            cert.subject()
        )
    })?;
    if cert.is_self_issued() {
        match cert.verify_signed_by(&cert) {
            Ok(()) | Err(CertError::UnsupportedAlgorithm { .. }) => {}
            Err(e) => return Err(cert_error("root self-signature", e)),
        }
    }
    ctx.put(
        keys::issuer(&fp),
        &CaIssuer {
            fingerprint: fp,
            subject: cert.subject().to_string(),
            not_before: cert.not_before(),
            not_after: cert.not_after(),
            signature_algorithm: cert.signature_algorithm().to_string(),
            public_key_algorithm: cert.public_key_algorithm().to_string(),
            der: cert.der().to_vec(),
            registered_by: member.clone(),
            height: ctx.block.height,
        },
    );
    ctx.put(keys::recognition(&fp, member.as_str()), &());
    Ok(TxOutput::Certificate(fp))
}

/// A member's admin recognizes a registered issuer for its member, or stops recognizing it.
fn set_recognition(
    ctx: &mut Ctx<'_>,
    issuer: &Hash,
    recognized: bool,
) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Admin)?;
    registered_issuer(ctx.reader(), issuer)?;
    let key = keys::recognition(issuer, member.as_str());
    if recognized {
        ctx.put(key, &());
    } else {
        ctx.delete(key);
    }
    Ok(TxOutput::Certificate(*issuer))
}

/// A registrar records a subject certificate issued by a registered CA.
fn register_certificate(ctx: &mut Ctx<'_>, certificate: &[u8]) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Registrar)?;
    let cert = x509::parse_certificate(certificate).map_err(|e| cert_error("certificate", e))?;
    let fp = cert.fingerprint_sha256();
    ensure(
        !ctx.exists(&keys::certificate(&fp)),
        ErrorCode::AlreadyExists,
        || format!("certificate {fp} is already registered"),
    )?;
    ensure(!cert.is_ca(), ErrorCode::InvalidInput, || {
        "this is a CA certificate; register it as an issuer".into()
    })?;
    let (issuer, _) = find_issuer(ctx.reader(), &cert).ok_or_else(|| {
        TxError::new(
            ErrorCode::NotFound,
            format!(
                "issuer {} is not registered; register its root certificate first",
                cert.issuer()
            ),
        )
    })?;
    let signature =
        check_signature(&cert, &issuer).map_err(|e| cert_error("certificate signature", e))?;
    let record = SubjectCertificate {
        fingerprint: fp,
        serial_hex: cert.serial_hex().to_string(),
        issuer: issuer.fingerprint,
        subject: cert.subject().to_string(),
        not_before: cert.not_before(),
        not_after: cert.not_after(),
        uscc: cert.uscc().cloned(),
        signature,
        registered_by: member,
        height: ctx.block.height,
    };
    ctx.put(keys::certificate(&fp), &record);
    ctx.put(
        keys::certificate_by_serial(&issuer.fingerprint, &record.serial_hex),
        &fp,
    );
    if let Some(u) = &record.uscc {
        ctx.put(keys::certificate_by_uscc(u, &fp), &());
    }
    Ok(TxOutput::Certificate(fp))
}

/// A registrar records one revoked serial of a registered issuer, with the reason.
fn revoke_certificate(
    ctx: &mut Ctx<'_>,
    issuer: &Hash,
    serial_hex: &str,
    reason: &str,
) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Registrar)?;
    registered_issuer(ctx.reader(), issuer)?;
    let serial = normalize_serial(serial_hex)?;
    ensure(!reason.trim().is_empty(), ErrorCode::InvalidInput, || {
        "revocation needs a reason".into()
    })?;
    if let Some(r) = ctx.get::<Revocation>(&keys::revocation(issuer, &serial)) {
        return fail(
            ErrorCode::Conflict,
            format!(
                "serial {serial} of issuer {issuer} was already revoked at height {}",
                r.height
            ),
        );
    }
    let revocation = Revocation {
        issuer: *issuer,
        serial_hex: serial.clone(),
        reason: reason.trim().to_string(),
        revoked_at: (ctx.block.time_ms / 1000) as i64,
        crl: None,
        recorded_by: member,
        height: ctx.block.height,
    };
    ctx.put(keys::revocation(issuer, &serial), &revocation);
    Ok(TxOutput::Revoked { count: 1 })
}

/// A registrar imports an issuer-signed CRL: every serial on it not yet revoked is recorded.
fn import_crl(ctx: &mut Ctx<'_>, crl: &[u8]) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Registrar)?;
    let crl = x509::parse_crl(crl).map_err(|e| cert_error("CRL", e))?;
    let issuer = scan::<CaIssuer>(ctx.reader(), keys::ISSUER_PREFIX)
        .into_iter()
        .map(|(_, i)| i)
        .find(|i| i.subject == crl.issuer().to_string())
        .ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound,
                format!("CRL issuer {} is not registered", crl.issuer()),
            )
        })?;
    let issuer_cert =
        x509::parse_certificate(&issuer.der).map_err(|e| cert_error("stored issuer", e))?;
    crl.verify_signed_by(&issuer_cert)
        .map_err(|e| cert_error("CRL signature", e))?;
    let crl_fp = crl.fingerprint_sha256();
    let mut count = 0u32;
    for entry in crl.revoked() {
        let key = keys::revocation(&issuer.fingerprint, &entry.serial_hex);
        if ctx.exists(&key) {
            continue;
        }
        count += 1;
        ctx.put(
            key,
            &Revocation {
                issuer: issuer.fingerprint,
                serial_hex: entry.serial_hex.clone(),
                reason: entry
                    .reason
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "unspecified".into()),
                revoked_at: entry.revocation_time,
                crl: Some(crl_fp),
                recorded_by: member.clone(),
                height: ctx.block.height,
            },
        );
    }
    Ok(TxOutput::Revoked { count })
}

fn registered_issuer(state: &dyn StateReader, fp: &Hash) -> Result<CaIssuer, TxError> {
    read(state, &keys::issuer(fp))
        .ok_or_else(|| TxError::new(ErrorCode::NotFound, format!("no registered issuer {fp}")))
}

/// Serials are lowercase hex without colons or leading zero bytes.
fn normalize_serial(s: &str) -> Result<String, TxError> {
    let cleaned: String = s
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let bytes = hex::decode(if cleaned.len() % 2 == 1 {
        format!("0{cleaned}")
    } else {
        cleaned.clone()
    })
    .map_err(|_| TxError::new(ErrorCode::InvalidInput, format!("serial {s:?} is not hex")))?;
    ensure(!bytes.is_empty(), ErrorCode::InvalidInput, || {
        "serial is empty".into()
    })?;
    let start = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    Ok(hex::encode(&bytes[start..]))
}

/// The registered issuer whose subject is this certificate's issuer and, when
/// several share a name, the one whose key verifies it.
fn find_issuer(state: &dyn StateReader, cert: &Certificate) -> Option<(CaIssuer, Certificate)> {
    let issuer_dn = cert.issuer().to_string();
    let candidates: Vec<(CaIssuer, Certificate)> = scan::<CaIssuer>(state, keys::ISSUER_PREFIX)
        .into_iter()
        .map(|(_, i)| i)
        .filter(|i| i.subject == issuer_dn)
        .filter_map(|i| x509::parse_certificate(&i.der).ok().map(|c| (i, c)))
        .collect();
    let verifying = candidates
        .iter()
        .position(|(_, c)| cert.verify_signed_by(c).is_ok())
        .unwrap_or(0);
    candidates.into_iter().nth(verifying)
}

fn check_signature(cert: &Certificate, issuer: &CaIssuer) -> Result<SignatureCheck, CertError> {
    let issuer_cert = x509::parse_certificate(&issuer.der)?;
    match cert.verify_signed_by(&issuer_cert) {
        Ok(()) => Ok(SignatureCheck::Verified),
        Err(CertError::UnsupportedAlgorithm { algorithm }) => {
            Ok(SignatureCheck::NotChecked { algorithm })
        }
        Err(e) => Err(e),
    }
}

/// A recognition question: for one member, or for the alliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Alliance,
    Member(MemberId),
}

/// Why a certificate is not recognized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// 签发机构未登记
    UnknownIssuer {
        issuer: String,
    },
    /// The member in scope does not recognize the issuer.
    IssuerNotRecognized {
        member: MemberId,
    },
    /// Too few members recognize the issuer for alliance recognition.
    IssuerNotAllianceRecognized {
        recognized_by: Vec<MemberId>,
        not_recognized_by: Vec<MemberId>,
    },
    BadSignature {
        detail: String,
    },
    NotYetValid {
        not_before: i64,
    },
    Expired {
        not_after: i64,
    },
    IssuerExpired {
        not_after: i64,
    },
    Revoked {
        reason: String,
        revoked_at: i64,
    },
    /// The subject is barred by credit (一处失信、处处受限).
    SubjectBarred {
        uscc: Uscc,
        records: Vec<u64>,
    },
}

impl Reason {
    /// A one-line explanation with the Chinese term.
    pub fn describe(&self) -> String {
        match self {
            Reason::UnknownIssuer { issuer } => {
                format!("unknown issuer (签发机构未登记): {issuer}")
            }
            Reason::IssuerNotRecognized { member } => {
                format!("issuer not recognized by {member} (未互认)")
            }
            Reason::IssuerNotAllianceRecognized {
                not_recognized_by, ..
            } => format!(
                "issuer not recognized by the alliance (联盟未互认); missing: {}",
                not_recognized_by
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Reason::BadSignature { detail } => format!("signature invalid (签名无效): {detail}"),
            Reason::NotYetValid { not_before } => {
                format!("not yet valid (未生效) until {not_before}")
            }
            Reason::Expired { not_after } => format!("expired (已过期) at {not_after}"),
            Reason::IssuerExpired { not_after } => {
                format!("issuer certificate expired at {not_after}")
            }
            Reason::Revoked { reason, revoked_at } => {
                format!("revoked (已吊销) at {revoked_at}: {reason}")
            }
            Reason::SubjectBarred { uscc, records } => format!(
                "subject {uscc} is barred by credit records {records:?} (一处失信、处处受限)"
            ),
        }
    }
}

/// The answer to "is this certificate recognized?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub fingerprint: Hash,
    pub subject: String,
    pub serial_hex: String,
    pub issuer: Option<Hash>,
    pub uscc: Option<Uscc>,
    pub scope: Scope,
    pub recognized: bool,
    /// Every reason it is not recognized (empty when recognized).
    pub reasons: Vec<Reason>,
    /// Facts that do not block recognition (e.g. signature algorithm not checked).
    pub notes: Vec<String>,
}

/// Members that recognize an issuer, among current members.
pub fn recognized_by(state: &dyn StateReader, issuer: &Hash) -> Vec<MemberId> {
    let current: Vec<MemberId> = members(state).into_iter().map(|m| m.id).collect();
    scan::<()>(state, &keys::recognition_prefix(issuer))
        .into_iter()
        .filter_map(|(k, ())| {
            let id =
                String::from_utf8(k[keys::recognition_prefix(issuer).len()..].to_vec()).ok()?;
            current.iter().find(|m| m.as_str() == id).cloned()
        })
        .collect()
}

/// Checks a certificate (PEM or DER) for a member or the alliance at a time.
///
/// One pass that collects every reason the certificate is not recognized, in the order a
/// reviewer checks them, so the answer lists them all at once; hence its length.
pub fn verify(
    state: &dyn StateReader,
    certificate: &[u8],
    scope: Scope,
    time_ms: TimestampMs,
) -> Result<Verification, CertError> {
    let cert = x509::parse_certificate(certificate)?;
    let now = (time_ms / 1000) as i64;
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let issuer = find_issuer(state, &cert);
    match &issuer {
        None => reasons.push(Reason::UnknownIssuer {
            issuer: cert.issuer().to_string(),
        }),
        Some((issuer, issuer_cert)) => {
            match cert.verify_signed_by(issuer_cert) {
                Ok(()) => {}
                Err(CertError::UnsupportedAlgorithm { algorithm }) => notes.push(format!(
                    "signature not checked: algorithm {algorithm} unsupported"
                )),
                Err(e) => reasons.push(Reason::BadSignature {
                    detail: e.to_string(),
                }),
            }
            if issuer_cert.validity_at(now) == Validity::Expired {
                reasons.push(Reason::IssuerExpired {
                    not_after: issuer.not_after,
                });
            }
            let recognizers = recognized_by(state, &issuer.fingerprint);
            match &scope {
                Scope::Member(m) => {
                    if !recognizers.contains(m) {
                        reasons.push(Reason::IssuerNotRecognized { member: m.clone() });
                    }
                }
                Scope::Alliance => {
                    let all: Vec<MemberId> = members(state).into_iter().map(|m| m.id).collect();
                    let threshold = params(state).ca_recognition_threshold_bp;
                    if (recognizers.len() as u64) * 10_000 < threshold * all.len() as u64 {
                        reasons.push(Reason::IssuerNotAllianceRecognized {
                            not_recognized_by: all
                                .into_iter()
                                .filter(|m| !recognizers.contains(m))
                                .collect(),
                            recognized_by: recognizers,
                        });
                    }
                }
            }
            if let Some(r) = read::<Revocation>(
                state,
                &keys::revocation(&issuer.fingerprint, cert.serial_hex()),
            ) {
                reasons.push(Reason::Revoked {
                    reason: r.reason,
                    revoked_at: r.revoked_at,
                });
            }
        }
    }
    match cert.validity_at(now) {
        Validity::Valid => {}
        Validity::NotYetValid => reasons.push(Reason::NotYetValid {
            not_before: cert.not_before(),
        }),
        Validity::Expired => reasons.push(Reason::Expired {
            not_after: cert.not_after(),
        }),
    }
    match cert.uscc() {
        Some(u) => {
            let r = credit::restriction(state, u, time_ms);
            if r.barred {
                reasons.push(Reason::SubjectBarred {
                    uscc: u.clone(),
                    records: r.records.iter().map(|x| x.id).collect(),
                });
            }
        }
        None => notes.push("no USCC found in the subject; credit not checked".into()),
    }
    Ok(Verification {
        fingerprint: cert.fingerprint_sha256(),
        subject: cert.subject().to_string(),
        serial_hex: cert.serial_hex().to_string(),
        issuer: issuer.map(|(i, _)| i.fingerprint),
        uscc: cert.uscc().cloned(),
        scope,
        recognized: reasons.is_empty(),
        reasons,
        notes,
    })
}

pub fn issuer(state: &dyn StateReader, fp: &Hash) -> Option<CaIssuer> {
    read(state, &keys::issuer(fp))
}

pub fn issuers(state: &dyn StateReader) -> Vec<CaIssuer> {
    scan::<CaIssuer>(state, keys::ISSUER_PREFIX)
        .into_iter()
        .map(|(_, i)| i)
        .collect()
}

pub fn certificate(state: &dyn StateReader, fp: &Hash) -> Option<SubjectCertificate> {
    read(state, &keys::certificate(fp))
}

/// Registered certificates naming a USCC.
pub fn certificates_for(state: &dyn StateReader, uscc: &Uscc) -> Vec<SubjectCertificate> {
    scan::<()>(state, &keys::certificate_by_uscc_prefix(uscc))
        .into_iter()
        .filter_map(|(k, ())| certificate(state, &keys::trailing_hash(&k)))
        .collect()
}

pub fn revocation(state: &dyn StateReader, issuer: &Hash, serial_hex: &str) -> Option<Revocation> {
    read(state, &keys::revocation(issuer, serial_hex))
}
