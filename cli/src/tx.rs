//! `caihong tx <domain> <action>`: one subcommand per chaincode action. Records with many fields
//! (a credit record, an extraction request) are read from a JSON file whose shape is the
//! chaincode's input type, documented in docs/FORMATS.md; everything else is flags.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use caihong_chaincode::ca::CaAction;
use caihong_chaincode::credit::{CreditAction, CreditRecordInput};
use caihong_chaincode::experts::{
    ConductKind, ExpertAction, ExpertInfo, ExpertStatus, expert_id,
    extraction::{ExtractionRequest, commitment},
};
use caihong_chaincode::governance::{GovernanceAction, ProposalKind};
use caihong_chaincode::members::{OperatorAction, Role};
use caihong_chaincode::subjects::{
    Qualification, SubjectAction, SubjectInfo, SubjectRole, SubjectStatus,
};
use caihong_chaincode::types::parse_date;
use caihong_chaincode::{Action, Hash, PublicKey, Uscc, x509};
use caihong_node::config::{Home, KeyFile};
use clap::{Args, Subcommand};

use crate::client::{TxArgs, run_action};

#[derive(Debug, Args)]
pub struct TxCommand {
    #[command(flatten)]
    pub args: TxArgs,
    #[command(subcommand)]
    pub domain: Domain,
}

#[derive(Debug, Subcommand)]
pub enum Domain {
    /// Governance (治理): proposals to change membership or parameters, and votes.
    #[command(subcommand)]
    Governance(GovernanceCmd),
    /// Operators (操作员) of the signer's member and their roles.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Market subjects (市场主体).
    #[command(subcommand)]
    Subject(SubjectCmd),
    /// Credit records (信用记录): violations, blacklists, revocations, repairs.
    #[command(subcommand)]
    Credit(CreditCmd),
    /// CA issuers (CA 机构), recognition (互认) and subject certificates (数字证书).
    #[command(subcommand)]
    Ca(CaCmd),
    /// Evaluation experts (评标专家) and their conduct (履职记录).
    #[command(subcommand)]
    Expert(ExpertCmd),
    /// Expert extraction (专家抽取): request, reveal, finalize, confirm or decline.
    #[command(subcommand)]
    Extraction(ExtractionCmd),
}

#[derive(Debug, Subcommand)]
pub enum GovernanceCmd {
    /// Propose admitting a new city (新增成员). Keys come from flags or from the new city's home.
    ProposeAddMember {
        /// Member id, e.g. `yinchuan`.
        #[arg(long)]
        id: String,
        /// Display name, e.g. 银川市公共资源交易中心.
        #[arg(long)]
        name: String,
        /// Six-digit administrative region code (行政区划代码), e.g. 640100.
        #[arg(long)]
        region: String,
        /// The new node's public key (hex).
        #[arg(long, required_unless_present = "new_home")]
        node_key: Option<String>,
        /// An admin public key of the new member (hex); repeat for several.
        #[arg(long, required_unless_present = "new_home")]
        admin_key: Vec<String>,
        /// The new member's home made by `caihong init` (reads its node and admin keys).
        #[arg(long)]
        new_home: Option<PathBuf>,
        /// Where the new node listens for peers, e.g. /ip4/10.0.0.5/tcp/26656.
        #[arg(long)]
        p2p: String,
    },
    /// Propose removing a member (移除成员); its records stay, its keys stop working.
    ProposeRemoveMember {
        #[arg(long)]
        id: String,
    },
    /// Propose replacing a member's node key (轮换节点密钥).
    ProposeRotateNodeKey {
        #[arg(long)]
        member: String,
        /// The new node public key (hex).
        #[arg(long)]
        new_key: String,
    },
    /// Propose replacing one of a member's admin keys (轮换管理员密钥).
    ProposeRotateAdminKey {
        #[arg(long)]
        member: String,
        #[arg(long)]
        old_key: String,
        #[arg(long)]
        new_key: String,
    },
    /// Propose changing a chain parameter (链上参数).
    ProposeParameter {
        #[arg(long)]
        name: String,
        #[arg(long, allow_hyphen_values = true)]
        value: i64,
    },
    /// Vote on a proposal (投票) for the signer's member.
    Vote {
        #[arg(long)]
        proposal: u64,
        /// Vote no (the default is yes).
        #[arg(long)]
        reject: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Register an operator (操作员) of the signer's member.
    Register {
        /// The operator's public key (hex).
        #[arg(long)]
        operator: String,
        #[arg(long)]
        name: String,
        /// registrar (登记), credit (信用), expert (专家), auditor (审计); repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Replace an operator's roles.
    SetRoles {
        #[arg(long)]
        operator: String,
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Deactivate an operator; its key can no longer sign.
    Deactivate {
        #[arg(long)]
        operator: String,
    },
}

#[derive(Debug, Args)]
pub struct SubjectFields {
    /// Unified social credit code (统一社会信用代码).
    #[arg(long)]
    uscc: String,
    /// Registered name (名称).
    #[arg(long)]
    name: String,
    /// tenderee (招标人), tendering-agency, bidder (投标人), purchaser, supplier, transferor,
    /// transferee; repeat for several.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// Legal representative (法定代表人).
    #[arg(long)]
    legal_rep: String,
    /// A qualification (资质) as `NAME:LEVEL:CERTIFICATE_NO:VALID_UNTIL`, e.g.
    /// `建筑工程施工总承包:一级:D115012345:2029-12-31`; repeat for several.
    #[arg(long = "qualification")]
    qualifications: Vec<String>,
    /// active (存续), suspended, deregistered.
    #[arg(long, default_value = "active")]
    status: String,
}

#[derive(Debug, Subcommand)]
pub enum SubjectCmd {
    /// Register a market subject (登记市场主体) kept by the signer's member.
    Register(SubjectFields),
    /// Record a new version of a subject the signer's member keeps.
    Update(SubjectFields),
    /// Hand a subject over to another member (移交), e.g. after it moves.
    HandOver {
        #[arg(long)]
        uscc: String,
        /// The member that keeps it from now on.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CreditCmd {
    /// Record a credit decision (信用记录) from a JSON file (a `CreditRecordInput`).
    Record {
        #[arg(long)]
        file: PathBuf,
    },
    /// Revoke a blacklist entry (移出黑名单) with the decision that revokes it.
    RevokeBlacklist {
        #[arg(long)]
        record: u64,
        #[arg(long)]
        document_no: String,
        /// Date the revocation takes effect, e.g. 2027-03-01.
        #[arg(long)]
        effective_date: String,
        #[arg(long)]
        reason: String,
    },
    /// Credit repair (信用修复): end the publication of a record early.
    Repair {
        #[arg(long)]
        record: u64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Register a CA issuer (CA 机构) from its certificate (PEM or DER).
    RegisterIssuer {
        #[arg(long)]
        cert: PathBuf,
    },
    /// Recognize (互认) an issuer for the signer's member, or withdraw recognition.
    Recognize {
        /// Issuer fingerprint (SHA-256 of its certificate, hex).
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        withdraw: bool,
    },
    /// Register a subject certificate (数字证书) of a bidder or agency.
    RegisterCertificate {
        #[arg(long)]
        cert: PathBuf,
    },
    /// Revoke one certificate serial of an issuer (吊销).
    Revoke {
        #[arg(long)]
        issuer: String,
        /// The serial number in hex.
        #[arg(long)]
        serial: String,
        #[arg(long)]
        reason: String,
    },
    /// Import a certificate revocation list (CRL, PEM or DER) signed by a registered issuer.
    ImportCrl {
        #[arg(long)]
        crl: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ExpertFields {
    /// National ID number (身份证号); only its salted hash goes on chain.
    #[arg(long)]
    national_id: String,
    #[arg(long)]
    name: String,
    /// Specialty code (专业代码), e.g. A010101; repeat for several.
    #[arg(long = "specialty", required = true)]
    specialties: Vec<String>,
    /// Title (职称), e.g. 高级工程师.
    #[arg(long)]
    title: String,
    /// USCC of the employer (工作单位), for recusal (回避).
    #[arg(long)]
    employer: String,
}

#[derive(Debug, Subcommand)]
pub enum ExpertCmd {
    /// Register an expert (评标专家) in the signer's member's pool.
    Register(ExpertFields),
    /// Update an expert the signer's member registered.
    Update(ExpertFields),
    /// Set an expert's status: active (正常), suspended (暂停), retired (退出), blacklisted (清退).
    SetStatus {
        /// Expert id (hex) or --national-id.
        #[arg(long, required_unless_present = "national_id")]
        expert: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        #[arg(long)]
        status: String,
        #[arg(long)]
        reason: String,
    },
    /// Record conduct (履职记录): a commendation or a penalty.
    Conduct {
        #[arg(long, required_unless_present = "national_id")]
        expert: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        /// commendation (表扬) or penalty (处罚).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        description: String,
        #[arg(long)]
        date: String,
        /// The extraction the conduct concerns.
        #[arg(long)]
        extraction: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExtractionCmd {
    /// Request an extraction (申请抽取) from a JSON file (an `ExtractionRequest`).
    Request {
        #[arg(long)]
        file: PathBuf,
        /// A secret (hex) whose SHA-256 is committed now and revealed later (commit-reveal);
        /// without it the draw uses the baseline seed.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Reveal the committed secret (揭示), which fixes the draw's seed.
    Reveal {
        #[arg(long)]
        extraction: u64,
        #[arg(long)]
        secret: String,
    },
    /// Draw with the fallback seed when the secret was not revealed in time.
    Finalize {
        #[arg(long)]
        extraction: u64,
    },
    /// An expert's answer (确认/拒绝) recorded by the expert's member.
    Respond {
        #[arg(long)]
        extraction: u64,
        #[arg(long, required_unless_present = "national_id")]
        expert: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        /// The expert declines (the default is confirm); a backup takes the seat.
        #[arg(long)]
        decline: bool,
    },
}

pub fn run(cmd: TxCommand) -> anyhow::Result<ExitCode> {
    let action = action_of(cmd.domain)?;
    run_action(&cmd.args, action)
}

fn action_of(domain: Domain) -> anyhow::Result<Action> {
    Ok(match domain {
        Domain::Governance(c) => Action::Governance(governance(c)?),
        Domain::Operator(c) => Action::Operator(operator(c)?),
        Domain::Subject(c) => Action::Subject(subject(c)?),
        Domain::Credit(c) => Action::Credit(credit(c)?),
        Domain::Ca(c) => Action::Ca(ca(c)?),
        Domain::Expert(c) => Action::Expert(expert(c)?),
        Domain::Extraction(c) => Action::Expert(extraction(c)?),
    })
}

/// A unified social credit code checked here before anything is signed: a bad code would
/// only come back as a failed transaction that used a nonce. Usage error (exit 2).
fn checked_uscc(text: &str, what: &str) -> anyhow::Result<String> {
    match Uscc::parse(text) {
        Ok(u) => Ok(u.as_str().to_string()),
        Err(e) => bail!(
            "{what} {text:?} is not a valid unified social credit code: {e}; check it with `caihong uscc check`"
        ),
    }
}

fn key(hex: &str, what: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_hex(hex).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn hash(hex: &str, what: &str) -> anyhow::Result<Hash> {
    Hash::from_hex(hex).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn governance(c: GovernanceCmd) -> anyhow::Result<GovernanceAction> {
    let kind = match c {
        GovernanceCmd::Vote { proposal, reject } => {
            return Ok(GovernanceAction::Vote {
                proposal,
                approve: !reject,
            });
        }
        GovernanceCmd::ProposeAddMember {
            id,
            name,
            region,
            node_key,
            admin_key,
            new_home,
            p2p,
        } => {
            let (node_key, admin_keys) = match new_home {
                Some(h) => keys_of_home(&h)?,
                None => (
                    key(node_key.as_deref().unwrap_or_default(), "--node-key")?,
                    admin_key
                        .iter()
                        .map(|k| key(k, "--admin-key"))
                        .collect::<anyhow::Result<_>>()?,
                ),
            };
            if !p2p.starts_with('/') {
                bail!("--p2p {p2p:?} is not a libp2p address; write e.g. /ip4/10.0.0.5/tcp/26656");
            }
            ProposalKind::AddMember {
                id,
                name,
                region_code: region,
                node_key,
                admin_keys,
                p2p_address: p2p,
            }
        }
        GovernanceCmd::ProposeRemoveMember { id } => ProposalKind::RemoveMember { id },
        GovernanceCmd::ProposeRotateNodeKey { member, new_key } => ProposalKind::RotateNodeKey {
            member,
            new_key: key(&new_key, "--new-key")?,
        },
        GovernanceCmd::ProposeRotateAdminKey {
            member,
            old_key,
            new_key,
        } => ProposalKind::RotateAdminKey {
            member,
            old_key: key(&old_key, "--old-key")?,
            new_key: key(&new_key, "--new-key")?,
        },
        GovernanceCmd::ProposeParameter { name, value } => {
            ProposalKind::SetParameter { name, value }
        }
    };
    Ok(GovernanceAction::Propose { kind })
}

/// The node key and admin key of a home made by `caihong init`.
fn keys_of_home(home: &Path) -> anyhow::Result<(PublicKey, Vec<PublicKey>)> {
    let node = KeyFile::read(&Home::node_key_path(home))
        .with_context(|| format!("the node key of {}", home.display()))?;
    let admin = KeyFile::read(&Home::admin_key_path(home))
        .with_context(|| format!("the admin key of {}", home.display()))?;
    Ok((
        PublicKey::from(&node.verifying_key()),
        vec![PublicKey::from(&admin.verifying_key())],
    ))
}

fn roles(list: &[String]) -> anyhow::Result<BTreeSet<Role>> {
    list.iter()
        .map(|r| Role::parse(r).map_err(|e| anyhow::anyhow!("--role: {e}")))
        .collect()
}

fn operator(c: OperatorCmd) -> anyhow::Result<OperatorAction> {
    Ok(match c {
        OperatorCmd::Register {
            operator,
            name,
            roles: r,
        } => OperatorAction::Register {
            key: key(&operator, "--operator")?,
            name,
            roles: roles(&r)?,
        },
        OperatorCmd::SetRoles { operator, roles: r } => OperatorAction::SetRoles {
            key: key(&operator, "--operator")?,
            roles: roles(&r)?,
        },
        OperatorCmd::Deactivate { operator } => OperatorAction::Deactivate {
            key: key(&operator, "--operator")?,
        },
    })
}

fn subject_info(f: SubjectFields) -> anyhow::Result<SubjectInfo> {
    let roles = f
        .roles
        .iter()
        .map(|r| SubjectRole::parse(r).map_err(|e| anyhow::anyhow!("--role: {e}")))
        .collect::<anyhow::Result<_>>()?;
    let status = match f.status.as_str() {
        "active" | "存续" => SubjectStatus::Active,
        "suspended" | "暂停" => SubjectStatus::Suspended,
        "deregistered" | "注销" => SubjectStatus::Deregistered,
        other => bail!("--status {other:?}: use active, suspended or deregistered"),
    };
    let qualifications = f
        .qualifications
        .iter()
        .map(|q| qualification(q))
        .collect::<anyhow::Result<_>>()?;
    Ok(SubjectInfo {
        uscc: checked_uscc(&f.uscc, "--uscc")?,
        name: f.name,
        roles,
        legal_representative: f.legal_rep,
        qualifications,
        status,
    })
}

fn qualification(text: &str) -> anyhow::Result<Qualification> {
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    let [name, level, certificate_no, until] = parts[..] else {
        bail!("--qualification {text:?}: write NAME:LEVEL:CERTIFICATE_NO:VALID_UNTIL");
    };
    Ok(Qualification {
        name: name.to_string(),
        level: level.to_string(),
        certificate_no: certificate_no.to_string(),
        valid_until: parse_date(until)
            .map_err(|e| anyhow::anyhow!("--qualification {text:?}: {e}"))?,
    })
}

fn subject(c: SubjectCmd) -> anyhow::Result<SubjectAction> {
    Ok(match c {
        SubjectCmd::Register(f) => SubjectAction::Register(subject_info(f)?),
        SubjectCmd::Update(f) => SubjectAction::Update(subject_info(f)?),
        SubjectCmd::HandOver { uscc, to } => SubjectAction::HandOver {
            uscc: checked_uscc(&uscc, "--uscc")?,
            to,
        },
    })
}

/// Reads a JSON file into one of the chaincode's input types.
fn json_file<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid {what} (see docs/FORMATS.md)",
            path.display()
        )
    })
}

fn credit(c: CreditCmd) -> anyhow::Result<CreditAction> {
    Ok(match c {
        CreditCmd::Record { file } => {
            let input: CreditRecordInput = json_file(&file, "credit record")?;
            let what = format!("{}: subject_uscc", file.display());
            checked_uscc(&input.subject_uscc, &what)?;
            CreditAction::Record(Box::new(input))
        }
        CreditCmd::RevokeBlacklist {
            record,
            document_no,
            effective_date,
            reason,
        } => CreditAction::RevokeBlacklist {
            record,
            document_no,
            effective_date: parse_date(&effective_date)
                .map_err(|e| anyhow::anyhow!("--effective-date: {e}"))?,
            reason,
        },
        CreditCmd::Repair { record, reason } => CreditAction::Repair { record, reason },
    })
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A certificate file as DER, checked locally so a wrong file is named before anything is sent.
fn certificate_der(path: &Path) -> anyhow::Result<Vec<u8>> {
    let cert = x509::parse_certificate(&read_file(path)?).with_context(|| {
        format!(
            "{} is not an X.509 certificate (PEM or DER)",
            path.display()
        )
    })?;
    Ok(cert.der().to_vec())
}

fn ca(c: CaCmd) -> anyhow::Result<CaAction> {
    Ok(match c {
        CaCmd::RegisterIssuer { cert } => CaAction::RegisterIssuer {
            certificate: certificate_der(&cert)?,
        },
        CaCmd::Recognize { issuer, withdraw } => CaAction::SetRecognition {
            issuer: hash(&issuer, "--issuer")?,
            recognized: !withdraw,
        },
        CaCmd::RegisterCertificate { cert } => CaAction::RegisterCertificate {
            certificate: certificate_der(&cert)?,
        },
        CaCmd::Revoke {
            issuer,
            serial,
            reason,
        } => CaAction::RevokeCertificate {
            issuer: hash(&issuer, "--issuer")?,
            serial_hex: serial,
            reason,
        },
        CaCmd::ImportCrl { crl } => CaAction::ImportCrl {
            crl: read_file(&crl)?,
        },
    })
}

/// An expert named by id (hex) or by national ID number.
fn expert_ref(expert: Option<String>, national_id: Option<String>) -> anyhow::Result<Hash> {
    match (expert, national_id) {
        (Some(e), _) => hash(&e, "--expert"),
        (None, Some(n)) => Ok(expert_id(&n)),
        (None, None) => bail!("say which expert: --expert ID or --national-id"),
    }
}

fn expert_info(f: ExpertFields) -> anyhow::Result<ExpertInfo> {
    Ok(ExpertInfo {
        id: expert_id(&f.national_id),
        name: f.name,
        specialties: f.specialties,
        title: f.title,
        employer_uscc: checked_uscc(&f.employer, "--employer")?,
    })
}

fn expert(c: ExpertCmd) -> anyhow::Result<ExpertAction> {
    Ok(match c {
        ExpertCmd::Register(f) => ExpertAction::Register(Box::new(expert_info(f)?)),
        ExpertCmd::Update(f) => ExpertAction::Update(Box::new(expert_info(f)?)),
        ExpertCmd::SetStatus {
            expert,
            national_id,
            status,
            reason,
        } => ExpertAction::SetStatus {
            expert: expert_ref(expert, national_id)?,
            status: match status.as_str() {
                "active" | "正常" => ExpertStatus::Active,
                "suspended" | "暂停" => ExpertStatus::Suspended,
                "retired" | "退出" => ExpertStatus::Retired,
                "blacklisted" | "清退" => ExpertStatus::Blacklisted,
                other => {
                    bail!("--status {other:?}: use active, suspended, retired or blacklisted")
                }
            },
            reason,
        },
        ExpertCmd::Conduct {
            expert,
            national_id,
            kind,
            description,
            date,
            extraction,
        } => ExpertAction::RecordConduct {
            expert: expert_ref(expert, national_id)?,
            kind: match kind.as_str() {
                "commendation" | "表扬" => ConductKind::Commendation,
                "penalty" | "处罚" => ConductKind::Penalty,
                other => bail!("--kind {other:?}: use commendation or penalty"),
            },
            description,
            date: parse_date(&date).map_err(|e| anyhow::anyhow!("--date: {e}"))?,
            extraction,
        },
    })
}

fn secret_bytes(hex_text: &str) -> anyhow::Result<Vec<u8>> {
    let bytes =
        hex::decode(hex_text.trim()).map_err(|e| anyhow::anyhow!("--secret is not hex: {e}"))?;
    if bytes.len() < 16 {
        bail!("--secret must be at least 16 bytes (32 hex digits) to be unguessable");
    }
    Ok(bytes)
}

fn extraction(c: ExtractionCmd) -> anyhow::Result<ExpertAction> {
    Ok(match c {
        ExtractionCmd::Request { file, secret } => {
            let mut request: ExtractionRequest = json_file(&file, "extraction request")?;
            if let Some(s) = secret {
                request.commitment = Some(commitment(&secret_bytes(&s)?));
            }
            ExpertAction::RequestExtraction(Box::new(request))
        }
        ExtractionCmd::Reveal { extraction, secret } => ExpertAction::RevealExtraction {
            extraction,
            secret: secret_bytes(&secret)?,
        },
        ExtractionCmd::Finalize { extraction } => ExpertAction::FinalizeExtraction { extraction },
        ExtractionCmd::Respond {
            extraction,
            expert,
            national_id,
            decline,
        } => ExpertAction::Respond {
            extraction,
            expert: expert_ref(expert, national_id)?,
            accept: !decline,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_files_parse() {
        let record: CreditRecordInput =
            serde_json::from_str(include_str!("../../docs/examples/credit-record.json")).unwrap();
        caihong_chaincode::Uscc::parse(&record.subject_uscc).unwrap();
        let request: ExtractionRequest =
            serde_json::from_str(include_str!("../../docs/examples/extraction-request.json"))
                .unwrap();
        caihong_chaincode::Uscc::parse(&request.tenderee_uscc).unwrap();
    }

    #[test]
    fn qualifications_and_statuses_parse_or_say_how_to_write_them() {
        let q = qualification("建筑工程施工总承包:一级:D115012345:2029-12-31").unwrap();
        assert_eq!(q.level, "一级");
        let err = qualification("建筑工程施工总承包").unwrap_err().to_string();
        assert!(
            err.contains("NAME:LEVEL:CERTIFICATE_NO:VALID_UNTIL"),
            "{err}"
        );
        assert!(
            secret_bytes("00")
                .unwrap_err()
                .to_string()
                .contains("16 bytes")
        );
    }
}
