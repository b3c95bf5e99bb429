//! Identity mutual recognition (跨区域身份互认 / CA 数字证书互认): CA issuers, their
//! certification paths, recognition, subject certificates, revocation and verification.
//!
//! - **Issuers.** A member's admin registers CA certificates (identified by the SHA-256
//!   fingerprint of the DER). A *root* is self-signed (its signature checked where the
//!   algorithm is supported). A *subordinate* (intermediate) CA is registered only when it
//!   chains to a registered CA: its issuer is found by name and key (authorityKeyIdentifier
//!   against subjectKeyIdentifier where both are present, and in any case the signature must
//!   verify with the candidate's key; every same-name candidate is tried), and the whole path
//!   above it must allow it (basicConstraints CA:TRUE, keyUsage keyCertSign, pathLenConstraint).
//!   Each [`CaIssuer`] records its `parent` and its `root`.
//! - **Recognition** is of a root and covers every CA and certificate that chains to it;
//!   withdrawing it withdraws them. An issuer is alliance-recognized when the share of current
//!   members that recognize its root reaches `ca_recognition_threshold_bp` (all, by default).
//! - **Subject certificates** (a bidder's CA锁) are registered with the USCC found in their
//!   subject; their issuer is found by name and key as above and their signature checked.
//! - **Revocation** comes by serial (effective from the block time) or from a CRL signed by
//!   the CA whose key verifies it (effective from each entry's revocationDate). Revocations are
//!   kept per issuing CA, so two CAs with the same name never share them.
//! - [`verify`] answers, for one member or the whole alliance and as of a time T, whether a
//!   certificate is recognized: it builds the path from the certificate to a registered root
//!   and checks every link (signature, names and key identifiers, validity at T, CA:TRUE,
//!   pathLen, keyUsage, revocation at or before T), then recognition at the root, then the
//!   subject's credit. The answer lists every reason and the path, leaf first.
//!
//! Everything here is deterministic: the time comes from the block or the query, never a clock.

use serde::{Deserialize, Serialize};

use crate::credit;
use crate::ctx::{Ctx, TxOutput, params, read, scan};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{MemberId, Role, members};
use crate::state::StateReader;
use crate::types::{Hash, TimestampMs};
use crate::uscc::Uscc;
use crate::x509::{self, CertError, Certificate, DistinguishedName, Validity};

/// The most CA certificates a path may hold (root included). Paths are built from stored
/// parent links, so this only bounds work on a corrupt store; real paths have 2 or 3.
const MAX_PATH_CAS: usize = 8;

/// A registered CA issuer (电子认证服务机构): a root or a subordinate CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaIssuer {
    pub fingerprint: Hash,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub signature_algorithm: String,
    pub public_key_algorithm: String,
    /// The CA certificate's DER, so anyone can check signatures against it.
    pub der: Vec<u8>,
    /// The registered CA whose key signed this certificate; `None` for a root.
    pub parent: Option<Hash>,
    /// The root this CA chains to (its own fingerprint for a root): recognition is looked up there.
    pub root: Hash,
    pub registered_by: MemberId,
    pub height: u64,
}

impl CaIssuer {
    pub fn is_root(&self) -> bool {
        self.parent.is_none()
    }
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
    /// The registered CA that issued it (found by name and key).
    pub issuer: Hash,
    /// The root its issuer chains to.
    pub root: Hash,
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
    /// Unix seconds from which the revocation holds: the CRL entry's revocationDate, or the
    /// block time for revocation by serial.
    pub revoked_at: i64,
    /// The CRL it came from (its fingerprint), if any.
    pub crl: Option<Hash>,
    pub recorded_by: MemberId,
    pub height: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaAction {
    /// Register a CA certificate (PEM or DER): a self-signed root, or a subordinate CA whose
    /// issuer is registered already. Admin; the registering member recognizes a root.
    RegisterIssuer { certificate: Vec<u8> },
    /// Declare whether the signer's member recognizes a root CA and all that chains to it
    /// (互认). Admin.
    SetRecognition { issuer: Hash, recognized: bool },
    /// Register a subject certificate (PEM or DER). Registrar.
    RegisterCertificate { certificate: Vec<u8> },
    /// Revoke a serial of an issuer (吊销), from the block time on. Registrar.
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

/// A registered CA with its certificate parsed.
#[derive(Debug, Clone)]
struct Ca {
    record: CaIssuer,
    cert: Certificate,
}

/// A member's admin registers a CA certificate: a root (recognized by its member) or a
/// subordinate CA that chains to a registered one.
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
    ensure(
        cert.may_sign_certificates(),
        ErrorCode::InvalidCertificate,
        || {
            format!(
                "{} cannot issue certificates: its keyUsage lacks keyCertSign",
                cert.subject()
            )
        },
    )?;
    let self_signature = cert.is_self_issued().then(|| cert.verify_signed_by(&cert));
    let (parent, root) = match self_signature {
        Some(Ok(()) | Err(CertError::UnsupportedAlgorithm { .. })) => (None, fp),
        other => {
            let parent = subordinate_parent(ctx.reader(), &cert).map_err(|e| match other {
                Some(Err(bad)) => TxError::new(
                    e.code,
                    format!("{}; as a root, its self-signature: {bad}", e.message),
                ),
                _ => e,
            })?;
            (Some(parent.fingerprint), parent.root)
        }
    };
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
            parent,
            root,
            registered_by: member.clone(),
            height: ctx.block.height,
        },
    );
    if parent.is_none() {
        ctx.put(keys::recognition(&fp, member.as_str()), &());
    }
    Ok(TxOutput::Certificate(fp))
}

/// The registered CA that issued the subordinate CA certificate `cert`, such that the whole
/// path from `cert` to a root is sound; every same-name candidate is tried.
fn subordinate_parent(state: &dyn StateReader, cert: &Certificate) -> Result<CaIssuer, TxError> {
    let candidates = issuer_candidates(state, cert.issuer());
    if candidates.is_empty() {
        return fail(
            ErrorCode::NotFound,
            format!(
                "issuer {} of this CA certificate is not registered: register its root (a \
                 self-signed certificate) and any intermediate CA above it first",
                cert.issuer()
            ),
        );
    }
    let mut refusals = Vec::new();
    for parent in &candidates {
        let mut path = vec![cert.clone()];
        match ancestors(state, parent) {
            Ok(cas) => path.extend(cas.into_iter().map(|c| c.cert)),
            Err(e) => {
                refusals.push(format!("{}: {e}", parent.record.fingerprint));
                continue;
            }
        }
        let check = check_path_structure(&path, true);
        let mut problems: Vec<String> = check.reasons.iter().map(Reason::describe).collect();
        if let SignatureCheck::NotChecked { algorithm } = &check.subject_signature {
            problems.push(format!(
                "its signature cannot be checked (algorithm {algorithm} unsupported), and every \
                 signature on a CA path must be"
            ));
        }
        if problems.is_empty() {
            return Ok(parent.record.clone());
        }
        refusals.push(format!(
            "{} ({}): {}",
            parent.record.fingerprint,
            parent.record.subject,
            problems.join("; ")
        ));
    }
    fail(
        ErrorCode::InvalidCertificate,
        format!(
            "no registered CA named {} can have issued this CA certificate: {}",
            cert.issuer(),
            refusals.join(" | ")
        ),
    )
}

/// A member's admin recognizes a registered root for its member, or stops recognizing it.
fn set_recognition(
    ctx: &mut Ctx<'_>,
    issuer: &Hash,
    recognized: bool,
) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Admin)?;
    let ca = registered_issuer(ctx.reader(), issuer)?;
    ensure(ca.is_root(), ErrorCode::InvalidInput, || {
        format!(
            "recognition is of a root CA: {issuer} ({}) chains to root {}; recognize that root",
            ca.subject, ca.root
        )
    })?;
    let key = keys::recognition(issuer, member.as_str());
    if recognized {
        ctx.put(key, &());
    } else {
        ctx.delete(key);
    }
    Ok(TxOutput::Certificate(*issuer))
}

/// A registrar records a subject certificate issued by a registered CA (found by name and key).
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
    let paths = candidate_paths(ctx.reader(), &cert);
    if paths.is_empty() {
        return fail(
            ErrorCode::NotFound,
            format!(
                "issuer {} is not registered (or no registered CA of that name has the key \
                 this certificate names); register its CA certificate, root first",
                cert.issuer()
            ),
        );
    }
    let mut refusals = Vec::new();
    let mut chosen = None;
    for path in &paths {
        let certs: Vec<Certificate> = std::iter::once(cert.clone())
            .chain(path.iter().map(|c| c.cert.clone()))
            .collect();
        let check = check_path_structure(&certs, false);
        if check.reasons.is_empty() {
            chosen = Some((path, check.subject_signature));
            break;
        }
        refusals.push(
            check
                .reasons
                .iter()
                .map(Reason::describe)
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    let Some((path, signature)) = chosen else {
        return fail(
            ErrorCode::InvalidCertificate,
            format!("certificate signature or path: {}", refusals.join(" | ")),
        );
    };
    let issuer = &path[0].record;
    let record = SubjectCertificate {
        fingerprint: fp,
        serial_hex: cert.serial_hex().to_string(),
        issuer: issuer.fingerprint,
        root: issuer.root,
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

/// A registrar records one revoked serial of a registered issuer, with the reason; it holds
/// from the block time on.
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

/// A registrar imports a CRL: it is matched to the registered CA whose key verifies it (every
/// CA with the CRL's issuer name is tried), which must be allowed to sign CRLs; every serial on
/// it not yet revoked is recorded, effective from its revocationDate.
fn import_crl(ctx: &mut Ctx<'_>, crl: &[u8]) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Registrar)?;
    let crl = x509::parse_crl(crl).map_err(|e| cert_error("CRL", e))?;
    let candidates = issuer_candidates(ctx.reader(), crl.issuer());
    ensure(!candidates.is_empty(), ErrorCode::NotFound, || {
        format!(
            "CRL issuer {} is not registered; register its CA certificate (root first)",
            crl.issuer()
        )
    })?;
    let mut refusals = Vec::new();
    let mut signer = None;
    for ca in candidates {
        let problem = if !crl.key_id_matches(&ca.cert) {
            "the CRL's authorityKeyIdentifier names another key".to_string()
        } else if let Err(e) = crl.verify_signed_by(&ca.cert) {
            e.to_string()
        } else if !ca.cert.may_sign_crls() {
            "its keyUsage lacks cRLSign".to_string()
        } else {
            signer = Some(ca.record);
            break;
        };
        refusals.push(format!("{}: {problem}", ca.record.fingerprint));
    }
    let issuer = signer.ok_or_else(|| {
        TxError::new(
            ErrorCode::InvalidCertificate,
            format!(
                "CRL signature: no registered CA named {} signed this CRL: {}",
                crl.issuer(),
                refusals.join(" | ")
            ),
        )
    })?;
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

/// Serials are lowercase hex without colons or leading zero bytes: the form [`revocation`] and
/// the chain's revocation keys take.
pub fn normalize_serial(s: &str) -> Result<String, TxError> {
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

/// Registered CAs whose subject is `name`, in state order (by fingerprint).
fn issuer_candidates(state: &dyn StateReader, name: &DistinguishedName) -> Vec<Ca> {
    let name = name.to_string();
    scan::<CaIssuer>(state, keys::ISSUER_PREFIX)
        .into_iter()
        .map(|(_, i)| i)
        .filter(|i| i.subject == name)
        .filter_map(|record| {
            x509::parse_certificate(&record.der)
                .ok()
                .map(|cert| Ca { record, cert })
        })
        .collect()
}

/// `ca` and the CAs above it, up to its root, by the parent links recorded at registration.
fn ancestors(state: &dyn StateReader, ca: &Ca) -> Result<Vec<Ca>, String> {
    let mut path = vec![ca.clone()];
    while let Some(parent) = path.last().and_then(|c| c.record.parent) {
        if path.len() >= MAX_PATH_CAS {
            return Err(format!("more than {MAX_PATH_CAS} CAs above it"));
        }
        let record: CaIssuer = read(state, &keys::issuer(&parent))
            .ok_or_else(|| format!("its issuer {parent} is not registered"))?;
        let cert = x509::parse_certificate(&record.der).map_err(|e| e.to_string())?;
        path.push(Ca { record, cert });
    }
    Ok(path)
}

/// Every path of registered CAs (issuer first, root last) that may have issued `cert`:
/// same issuer name, key identifiers not contradicting. Paths whose first link's signature
/// verifies come first, then unchecked ones, then the rest; ties keep state order.
fn candidate_paths(state: &dyn StateReader, cert: &Certificate) -> Vec<Vec<Ca>> {
    let mut paths: Vec<(u8, Vec<Ca>)> = issuer_candidates(state, cert.issuer())
        .into_iter()
        .filter(|ca| cert.key_id_matches(&ca.cert))
        .filter_map(|ca| {
            let rank = match cert.verify_signed_by(&ca.cert) {
                Ok(()) => 0,
                Err(CertError::UnsupportedAlgorithm { .. }) => 1,
                Err(_) => 2,
            };
            ancestors(state, &ca).ok().map(|path| (rank, path))
        })
        .collect();
    paths.sort_by_key(|(rank, _)| *rank);
    paths.into_iter().map(|(_, path)| path).collect()
}

/// What the time-independent checks of a path found.
struct StructureCheck {
    reasons: Vec<Reason>,
    /// The first link's signature (the subject certificate by its issuer).
    subject_signature: SignatureCheck,
    notes: Vec<String>,
}

/// Checks the links of `path` (the subject first, then its issuer, …, the root): signatures
/// and key identifiers, and for every CA basicConstraints CA:TRUE, keyUsage keyCertSign and
/// pathLenConstraint. `subject_is_ca` counts the subject as an intermediate for pathLen (it is
/// being registered as a CA that will issue certificates).
fn check_path_structure(path: &[Certificate], subject_is_ca: bool) -> StructureCheck {
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let mut subject_signature = SignatureCheck::Verified;
    for (i, pair) in path.windows(2).enumerate() {
        let (child, ca) = (&pair[0], &pair[1]);
        if !child.key_id_matches(ca) {
            reasons.push(Reason::BadSignature {
                detail: format!(
                    "{}: its authorityKeyIdentifier does not name the key of {}",
                    child.subject(),
                    ca.fingerprint_sha256()
                ),
            });
        }
        match child.verify_signed_by(ca) {
            Ok(()) => {}
            Err(CertError::UnsupportedAlgorithm { algorithm }) => {
                notes.push(format!(
                    "signature of {} not checked: algorithm {algorithm} unsupported",
                    child.subject()
                ));
                if i == 0 {
                    subject_signature = SignatureCheck::NotChecked { algorithm };
                }
            }
            Err(e) => reasons.push(Reason::BadSignature {
                detail: if i == 0 {
                    e.to_string()
                } else {
                    format!("{} (CA on the path): {e}", child.subject())
                },
            }),
        }
        let ca_position = i + 1;
        if !ca.is_ca() {
            reasons.push(Reason::NotACa {
                fingerprint: ca.fingerprint_sha256(),
                subject: ca.subject().to_string(),
            });
        }
        if !ca.may_sign_certificates() {
            reasons.push(Reason::KeyUsageForbids {
                fingerprint: ca.fingerprint_sha256(),
                subject: ca.subject().to_string(),
                usage: "keyCertSign".into(),
            });
        }
        if let Some(limit) = ca.path_len_constraint() {
            // RFC 5280 §4.2.1.9: non-self-issued intermediate CAs below this one, leaf excluded.
            let below = path[1..ca_position]
                .iter()
                .chain(path.first().filter(|_| subject_is_ca))
                .filter(|c| !c.is_self_issued())
                .count() as u32;
            if below > limit {
                reasons.push(Reason::PathTooLong {
                    fingerprint: ca.fingerprint_sha256(),
                    subject: ca.subject().to_string(),
                    path_len_constraint: limit,
                    intermediates_below: below,
                });
            }
        }
    }
    StructureCheck {
        reasons,
        subject_signature,
        notes,
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
    /// 签发机构未登记: no registered CA has this name and the key the certificate names (an
    /// intermediate CA must be registered, after its root, before its certificates verify).
    UnknownIssuer {
        issuer: String,
    },
    /// The member in scope does not recognize the path's root.
    IssuerNotRecognized {
        member: MemberId,
    },
    /// Too few members recognize the path's root for alliance recognition.
    IssuerNotAllianceRecognized {
        recognized_by: Vec<MemberId>,
        not_recognized_by: Vec<MemberId>,
    },
    /// A signature on the path does not verify (or a key identifier contradicts it).
    BadSignature {
        detail: String,
    },
    NotYetValid {
        not_before: i64,
    },
    Expired {
        not_after: i64,
    },
    /// A CA on the path (issuer, intermediate or root) is not valid at the time asked.
    CaNotValid {
        fingerprint: Hash,
        subject: String,
        validity: Validity,
        not_before: i64,
        not_after: i64,
    },
    /// A certificate on the path that issues others lacks basicConstraints CA:TRUE.
    NotACa {
        fingerprint: Hash,
        subject: String,
    },
    /// A CA's pathLenConstraint allows fewer intermediate CAs below it than the path has.
    PathTooLong {
        fingerprint: Hash,
        subject: String,
        path_len_constraint: u32,
        intermediates_below: u32,
    },
    /// A CA's keyUsage does not allow what the path needs of it (keyCertSign).
    KeyUsageForbids {
        fingerprint: Hash,
        subject: String,
        usage: String,
    },
    /// The certificate itself was revoked at or before the time asked.
    Revoked {
        reason: String,
        revoked_at: i64,
    },
    /// A CA on the path (an intermediate) was revoked at or before the time asked.
    CaRevoked {
        fingerprint: Hash,
        subject: String,
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
            Reason::UnknownIssuer { issuer } => format!(
                "unknown issuer (签发机构未登记): {issuer}; if it is an intermediate CA, register \
                 it (after its root)"
            ),
            Reason::IssuerNotRecognized { member } => {
                format!("root CA not recognized by {member} (未互认)")
            }
            Reason::IssuerNotAllianceRecognized {
                not_recognized_by, ..
            } => format!(
                "root CA not recognized by the alliance (联盟未互认); missing: {}",
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
            Reason::CaNotValid {
                subject,
                validity,
                not_before,
                not_after,
                ..
            } => match validity {
                Validity::NotYetValid => {
                    format!("CA {subject} not yet valid (未生效) until {not_before}")
                }
                _ => format!("CA {subject} expired (已过期) at {not_after}"),
            },
            Reason::NotACa { subject, .. } => {
                format!(
                    "{subject} issues certificates but is not a CA (basicConstraints CA:FALSE or absent)"
                )
            }
            Reason::PathTooLong {
                subject,
                path_len_constraint,
                intermediates_below,
                ..
            } => format!(
                "path too long: CA {subject} allows {path_len_constraint} intermediate CA(s) \
                 below it (pathLenConstraint), the path has {intermediates_below}"
            ),
            Reason::KeyUsageForbids { subject, usage, .. } => {
                format!("CA {subject} may not sign certificates: its keyUsage lacks {usage}")
            }
            Reason::Revoked { reason, revoked_at } => {
                format!("revoked (已吊销) at {revoked_at}: {reason}")
            }
            Reason::CaRevoked {
                subject,
                reason,
                revoked_at,
                ..
            } => format!("intermediate CA {subject} revoked (已吊销) at {revoked_at}: {reason}"),
            Reason::SubjectBarred { uscc, records } => format!(
                "subject {uscc} is barred by credit records {records:?} (一处失信、处处受限)"
            ),
        }
    }
}

/// One certificate of a certification path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathEntry {
    pub fingerprint: Hash,
    pub subject: String,
    pub serial_hex: String,
    pub not_before: i64,
    pub not_after: i64,
}

impl PathEntry {
    fn of(cert: &Certificate) -> PathEntry {
        PathEntry {
            fingerprint: cert.fingerprint_sha256(),
            subject: cert.subject().to_string(),
            serial_hex: cert.serial_hex().to_string(),
            not_before: cert.not_before(),
            not_after: cert.not_after(),
        }
    }
}

/// The answer to "is this certificate recognized?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub fingerprint: Hash,
    pub subject: String,
    pub serial_hex: String,
    /// The registered CA that issued it (found by name and key), if any.
    pub issuer: Option<Hash>,
    /// The root the path ends at, where recognition is looked up.
    pub root: Option<Hash>,
    /// The certification path checked: the certificate first, then each CA up to the root
    /// (just the certificate when no issuer was found).
    pub path: Vec<PathEntry>,
    pub uscc: Option<Uscc>,
    pub scope: Scope,
    /// Unix seconds the answer is for.
    pub at: i64,
    pub recognized: bool,
    /// Every reason it is not recognized (empty when recognized).
    pub reasons: Vec<Reason>,
    /// Facts that do not block recognition (e.g. signature algorithm not checked).
    pub notes: Vec<String>,
}

/// Members that recognize an issuer (that is, the root it chains to), among current members.
pub fn recognized_by(state: &dyn StateReader, issuer: &Hash) -> Vec<MemberId> {
    let root = read::<CaIssuer>(state, &keys::issuer(issuer)).map_or(*issuer, |i| i.root);
    let current: Vec<MemberId> = members(state).into_iter().map(|m| m.id).collect();
    let prefix = keys::recognition_prefix(&root);
    scan::<()>(state, &prefix)
        .into_iter()
        .filter_map(|(k, ())| {
            let id = String::from_utf8(k[prefix.len()..].to_vec()).ok()?;
            current.iter().find(|m| m.as_str() == id).cloned()
        })
        .collect()
}

/// Reasons the root of a path is not recognized in `scope`.
fn recognition_reasons(state: &dyn StateReader, root: &Hash, scope: &Scope) -> Vec<Reason> {
    let recognizers = recognized_by(state, root);
    match scope {
        Scope::Member(m) if !recognizers.contains(m) => {
            vec![Reason::IssuerNotRecognized { member: m.clone() }]
        }
        Scope::Member(_) => vec![],
        Scope::Alliance => {
            let all: Vec<MemberId> = members(state).into_iter().map(|m| m.id).collect();
            let threshold = params(state).ca_recognition_threshold_bp;
            if (recognizers.len() as u64) * 10_000 < threshold * all.len() as u64 {
                vec![Reason::IssuerNotAllianceRecognized {
                    not_recognized_by: all
                        .into_iter()
                        .filter(|m| !recognizers.contains(m))
                        .collect(),
                    recognized_by: recognizers,
                }]
            } else {
                vec![]
            }
        }
    }
}

/// Reasons a path of registered CAs (issuer first) fails for `cert` at `now`: structure,
/// validity of every CA, revocation of every certificate at or before `now`, recognition.
fn path_reasons(
    state: &dyn StateReader,
    cert: &Certificate,
    cas: &[Ca],
    scope: &Scope,
    now: i64,
    notes: &mut Vec<String>,
) -> Vec<Reason> {
    let certs: Vec<Certificate> = std::iter::once(cert.clone())
        .chain(cas.iter().map(|c| c.cert.clone()))
        .collect();
    let structure = check_path_structure(&certs, false);
    let mut reasons = structure.reasons;
    notes.extend(structure.notes);
    for ca in cas {
        let validity = ca.cert.validity_at(now);
        if validity != Validity::Valid {
            reasons.push(Reason::CaNotValid {
                fingerprint: ca.record.fingerprint,
                subject: ca.record.subject.clone(),
                validity,
                not_before: ca.record.not_before,
                not_after: ca.record.not_after,
            });
        }
    }
    for (i, issuer) in cas.iter().enumerate() {
        let child = &certs[i];
        let Some(r) = read::<Revocation>(
            state,
            &keys::revocation(&issuer.record.fingerprint, child.serial_hex()),
        ) else {
            continue;
        };
        if r.revoked_at > now {
            notes.push(format!(
                "{} is revoked from {} ({}), after the time asked",
                child.subject(),
                r.revoked_at,
                r.reason
            ));
        } else if i == 0 {
            reasons.push(Reason::Revoked {
                reason: r.reason,
                revoked_at: r.revoked_at,
            });
        } else {
            reasons.push(Reason::CaRevoked {
                fingerprint: child.fingerprint_sha256(),
                subject: child.subject().to_string(),
                reason: r.reason,
                revoked_at: r.revoked_at,
            });
        }
    }
    if let Some(root) = cas.last() {
        reasons.extend(recognition_reasons(state, &root.record.fingerprint, scope));
    }
    reasons
}

/// Checks a certificate (PEM or DER) for a member or the alliance as of `time_ms`.
///
/// Every path through registered CAs that may have issued it is checked, and the one with the
/// fewest reasons is answered (the first, when several tie), so a same-name CA with another key
/// never hides the genuine one. The certificate's own validity and its subject's credit are
/// checked whatever the path.
pub fn verify(
    state: &dyn StateReader,
    certificate: &[u8],
    scope: Scope,
    time_ms: TimestampMs,
) -> Result<Verification, CertError> {
    let cert = x509::parse_certificate(certificate)?;
    let now = (time_ms / 1000) as i64;
    let mut best: Option<(Vec<Ca>, Vec<Reason>, Vec<String>)> = None;
    for cas in candidate_paths(state, &cert) {
        let mut notes = Vec::new();
        let reasons = path_reasons(state, &cert, &cas, &scope, now, &mut notes);
        if best
            .as_ref()
            .is_none_or(|(_, r, _)| reasons.len() < r.len())
        {
            best = Some((cas, reasons, notes));
        }
    }
    let (cas, mut reasons, mut notes) = best.unwrap_or_else(|| {
        let unknown = Reason::UnknownIssuer {
            issuer: cert.issuer().to_string(),
        };
        (Vec::new(), vec![unknown], Vec::new())
    });
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
        issuer: cas.first().map(|c| c.record.fingerprint),
        root: cas.last().map(|c| c.record.fingerprint),
        path: std::iter::once(PathEntry::of(&cert))
            .chain(cas.iter().map(|c| PathEntry::of(&c.cert)))
            .collect(),
        uscc: cert.uscc().cloned(),
        scope,
        at: now,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str) -> Certificate {
        let path = format!("{}/tests/fixtures/certs/{name}", env!("CARGO_MANIFEST_DIR"));
        x509::parse_certificate(&std::fs::read(&path).unwrap()).unwrap()
    }

    fn path(names: &[&str]) -> Vec<Certificate> {
        names.iter().map(|n| cert(n)).collect()
    }

    /// Registration refuses such paths before they reach state, so the structure checks are
    /// exercised here on the certificates themselves.
    #[test]
    fn structure_check_finds_path_len_not_a_ca_and_bad_signatures() {
        let sound = path(&[
            "sm2-path-leaf.pem",
            "sm2-path-intermediate.pem",
            "sm2-path-root.pem",
        ]);
        let check = check_path_structure(&sound, false);
        assert_eq!(check.reasons, vec![]);
        assert_eq!(check.subject_signature, SignatureCheck::Verified);

        let too_long = path(&[
            "sm2-path-pathlen-leaf.pem",
            "sm2-path-pathlen-sub-intermediate.pem",
            "sm2-path-pathlen0-intermediate.pem",
            "sm2-path-root.pem",
        ]);
        match &check_path_structure(&too_long, false).reasons[..] {
            [
                Reason::PathTooLong {
                    path_len_constraint: 0,
                    intermediates_below: 1,
                    subject,
                    ..
                },
            ] => assert!(subject.contains("限长"), "{subject}"),
            other => panic!("{other:?}"),
        }
        // Registering the sub-intermediate itself counts it as an intermediate below.
        let registering = &too_long[1..];
        assert!(matches!(
            &check_path_structure(registering, true).reasons[..],
            [Reason::PathTooLong { .. }]
        ));
        assert_eq!(check_path_structure(registering, false).reasons, vec![]);

        let not_ca = path(&[
            "sm2-path-not-ca-leaf.pem",
            "sm2-path-not-ca-intermediate.pem",
            "sm2-path-root.pem",
        ]);
        assert!(matches!(
            &check_path_structure(&not_ca, false).reasons[..],
            [Reason::NotACa { .. }]
        ));

        let forged = path(&["sm2-path-forged-intermediate.pem", "sm2-path-root.pem"]);
        assert!(matches!(
            &check_path_structure(&forged, true).reasons[..],
            [Reason::BadSignature { .. }]
        ));
        // Another key of the same name: the key identifier and the signature both say no.
        let impostor = path(&["sm2-path-leaf.pem", "sm2-path-impostor-ca.pem"]);
        assert_eq!(check_path_structure(&impostor, false).reasons.len(), 2);
    }
}
