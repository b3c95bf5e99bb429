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
use caihong_chaincode::types::EncryptionKey;
use caihong_chaincode::types::parse_date;
use caihong_chaincode::{Action, Hash, PublicKey, Uscc, x509};
use caihong_node::config::{EncryptionKeyFile, Home, KeyFile};
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
    /// Expert extraction (专家抽取): request, seal, confirm or decline, publish.
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
    /// Propose registering or replacing a member's encryption key (登记加密公钥), to which
    /// sealed extraction notices are encrypted. The key comes from --key or the member's home.
    ProposeEncryptionKey {
        #[arg(long)]
        member: String,
        /// The X25519 public key (hex).
        #[arg(
            long,
            required_unless_present = "member_home",
            conflicts_with = "member_home"
        )]
        key: Option<String>,
        /// The member's home (reads the public half of its encryption_key.json).
        #[arg(long)]
        member_home: Option<PathBuf>,
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
    RevokeBlacklist(Revocation),
    /// Credit repair (信用修复): end the publication of a record early. It never shortens a
    /// penalty's term (处罚有效期), and by default is refused while that term runs.
    Repair {
        #[arg(long)]
        record: u64,
        #[arg(long)]
        reason: String,
    },
    /// Revoke a decision (撤销处罚决定, by the authority or a court): ends the record's
    /// publication and its penalty's term from the effective date.
    Revoke(Revocation),
}

/// A revocation's fields: which record, by which decision, from when, why.
#[derive(Debug, Args)]
pub struct Revocation {
    #[arg(long)]
    record: u64,
    /// The revoking decision or judgment, e.g. （2027）内01行终12号.
    #[arg(long)]
    document_no: String,
    /// Date the revocation takes effect, e.g. 2027-03-01.
    #[arg(long)]
    effective_date: String,
    #[arg(long)]
    reason: String,
}

impl Revocation {
    fn date(&self) -> anyhow::Result<caihong_chaincode::Date> {
        parse_date(&self.effective_date).map_err(|e| anyhow::anyhow!("--effective-date: {e}"))
    }
}

#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Register a CA issuer (CA 机构) from its certificate (PEM or DER): a self-signed root
    /// (your member then recognizes it), or an intermediate CA, whose issuer must be
    /// registered first (root, then each intermediate down): it is accepted only when its
    /// signature verifies with a registered CA of its issuer's name and key and that CA may
    /// issue CAs (CA:TRUE, keyCertSign, pathLenConstraint).
    RegisterIssuer {
        #[arg(long)]
        cert: PathBuf,
    },
    /// Recognize (互认) a root CA, and all that chains to it, for the signer's member, or
    /// withdraw recognition.
    Recognize {
        /// The root: its fingerprint (SHA-256 of its certificate, hex, as register-issuer
        /// prints it) or its certificate file.
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
    /// Revoke one certificate serial of an issuer (吊销), from the block time on. To revoke an
    /// intermediate CA, name the CA that issued it.
    Revoke {
        /// The issuer: its fingerprint (hex) or its certificate file.
        #[arg(long)]
        issuer: String,
        /// The serial number in hex.
        #[arg(long)]
        serial: String,
        #[arg(long)]
        reason: String,
    },
    /// Import a certificate revocation list (CRL, PEM or DER) signed by a registered issuer
    /// (the one whose key verifies it; it must allow cRLSign). Each entry holds from its
    /// revocation date.
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
    /// Request an extraction (申请抽取) from a JSON file (an `ExtractionRequest`), committed to
    /// a secret that keeps the committee sealed until the award. Seal it next.
    Request {
        #[arg(long)]
        file: PathBuf,
        /// The evaluation window's start (评标开始) in Beijing time, `YYYY-MM-DD HH:MM`,
        /// instead of the file's `window_start`.
        #[arg(long, value_name = "TIME", requires = "window_end")]
        window_start: Option<String>,
        /// The evaluation window's end, `YYYY-MM-DD HH:MM` Beijing time, instead of the file's.
        #[arg(long, value_name = "TIME", requires = "window_start")]
        window_end: Option<String>,
        /// The secret (hex) whose SHA-256 is committed now and revealed after the award.
        #[arg(
            long,
            required_unless_present = "secret_file",
            conflicts_with = "secret_file"
        )]
        secret: Option<String>,
        /// A file holding the secret (hex). When it does not exist, 32 random bytes are written
        /// to it (mode 0600) before the request is sent; keep it for seal and publish.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// Seal the draw (密封): run it with the secret and send each seat's notice encrypted to
    /// its expert's home member. Waits (up to --timeout) for the request's anchor block.
    Seal {
        #[arg(long)]
        extraction: u64,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// An expert's answer (确认/拒绝), sent by the expert's home member for the seat its node
    /// shows it (the home view).
    Respond {
        #[arg(long)]
        extraction: u64,
        #[arg(long, required_unless_present = "national_id")]
        expert: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        /// The expert declines (the default is confirm); the next backup takes the seat.
        #[arg(long)]
        decline: bool,
    },
    /// Publish the result (中标结果确定) and reveal the secret: the chain re-derives the draw,
    /// checks every notice and answer, and makes the committee public with its verdict.
    Publish {
        #[arg(long)]
        extraction: u64,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// After a missed reveal, disclose this member's slots (its experts and openings) so the
    /// committee can be checked without the requester.
    Disclose {
        #[arg(long)]
        extraction: u64,
    },
}

/// The requester's secret, given or read from the file `request --secret-file` wrote.
#[derive(Debug, Args)]
pub struct SecretArgs {
    #[arg(
        long,
        required_unless_present = "secret_file",
        conflicts_with = "secret_file"
    )]
    secret: Option<String>,
    /// The file the request's --secret-file wrote.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
}

impl SecretArgs {
    pub(crate) fn read(&self) -> anyhow::Result<Vec<u8>> {
        match (&self.secret, &self.secret_file) {
            (Some(s), _) => secret_bytes(s, "--secret"),
            (None, Some(path)) => secret_file(path, false),
            (None, None) => bail!("say which secret: --secret HEX or --secret-file FILE"),
        }
    }
}

/// Every `tx` command but `extraction`, whose steps read the chain first
/// ([`crate::sealing::run`]).
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
        Domain::Extraction(_) => bail!("extraction commands run through sealing::run"),
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
        GovernanceCmd::ProposeEncryptionKey {
            member,
            key,
            member_home,
        } => ProposalKind::SetEncryptionKey {
            member,
            key: match (key, member_home) {
                (Some(k), _) => {
                    EncryptionKey::from_hex(&k).map_err(|e| anyhow::anyhow!("--key: {e}"))?
                }
                (None, Some(h)) => {
                    let path = Home::encryption_key_path(&h);
                    let secret = EncryptionKeyFile::read(&path)
                        .with_context(|| format!("the encryption key of {}", h.display()))?;
                    caihong_chaincode::experts::seal::encryption_public(&secret)
                }
                (None, None) => bail!("say which key: --key HEX or --member-home DIR"),
            },
        },
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
        CreditCmd::RevokeBlacklist(r) => CreditAction::RevokeBlacklist {
            effective_date: r.date()?,
            record: r.record,
            document_no: r.document_no,
            reason: r.reason,
        },
        CreditCmd::Repair { record, reason } => CreditAction::Repair { record, reason },
        CreditCmd::Revoke(r) => CreditAction::Revoke {
            effective_date: r.date()?,
            record: r.record,
            document_no: r.document_no,
            reason: r.reason,
        },
    })
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A certificate file, parsed locally so a wrong file is named before anything is sent.
fn certificate(path: &Path) -> anyhow::Result<x509::Certificate> {
    x509::parse_certificate(&read_file(path)?).with_context(|| {
        format!(
            "{} is not an X.509 certificate (PEM or DER)",
            path.display()
        )
    })
}

fn certificate_der(path: &Path) -> anyhow::Result<Vec<u8>> {
    Ok(certificate(path)?.der().to_vec())
}

/// An issuer named by its fingerprint, or by its certificate file (fingerprinted here).
fn issuer_ref(text: &str) -> anyhow::Result<Hash> {
    let looks_like_hex = text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit());
    if looks_like_hex || !Path::new(text).exists() {
        return hash(text, "--issuer (a fingerprint, or a certificate file)");
    }
    Ok(certificate(Path::new(text))?.fingerprint_sha256())
}

fn ca(c: CaCmd) -> anyhow::Result<CaAction> {
    Ok(match c {
        CaCmd::RegisterIssuer { cert } => CaAction::RegisterIssuer {
            certificate: certificate_der(&cert)?,
        },
        CaCmd::Recognize { issuer, withdraw } => CaAction::SetRecognition {
            issuer: issuer_ref(&issuer)?,
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
            issuer: issuer_ref(&issuer)?,
            serial_hex: serial,
            reason,
        },
        CaCmd::ImportCrl { crl } => CaAction::ImportCrl {
            crl: read_file(&crl)?,
        },
    })
}

/// An expert named by id (hex) or by national ID number.
pub(crate) fn expert_ref(
    expert: Option<String>,
    national_id: Option<String>,
) -> anyhow::Result<Hash> {
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

fn secret_bytes(hex_text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let bytes =
        hex::decode(hex_text.trim()).map_err(|e| anyhow::anyhow!("{what} is not hex: {e}"))?;
    if bytes.len() < 16 {
        bail!("{what} must be at least 16 bytes (32 hex digits) to be unguessable");
    }
    Ok(bytes)
}

/// The secret in `path`, or, when there is no such file, a new random one written there first
/// (only the owner may read it): a request is never committed to a secret that was not kept.
fn secret_file(path: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
    let what = format!("the secret in {}", path.display());
    match std::fs::read_to_string(path) {
        Ok(text) => secret_bytes(&text, &what),
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            // 32 bytes from the operating system's generator, the source a new key uses.
            let secret = KeyFile::generate().to_bytes().to_vec();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| f.write_all(hex::encode(&secret).as_bytes()).map(|_| f));
            file.as_mut()
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!(
                "a new secret is in {}: keep it for `extraction seal` and `extraction publish`",
                path.display()
            );
            Ok(secret)
        }
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
}

/// `YYYY-MM-DD HH:MM` (or with `T`, or with seconds) in Beijing time, as Unix milliseconds.
fn beijing_ms(text: &str, what: &str) -> anyhow::Result<u64> {
    let text = text.trim().replace('T', " ");
    let time = ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(&text, f).ok())
        .ok_or_else(|| {
            anyhow::anyhow!("{what} {text:?}: write a Beijing time as YYYY-MM-DD HH:MM")
        })?;
    let utc = time - chrono::Duration::hours(8);
    u64::try_from(utc.and_utc().timestamp_millis())
        .map_err(|_| anyhow::anyhow!("{what} {text:?} is before 1970"))
}

/// The request of `extraction request`: the file, the window flags and the commitment.
pub(crate) fn extraction_request(
    file: &Path,
    window_start: Option<String>,
    window_end: Option<String>,
    secret: Option<String>,
    secret_path: Option<PathBuf>,
) -> anyhow::Result<ExpertAction> {
    let mut request: ExtractionRequest = json_file(file, "extraction request")?;
    if let (Some(start), Some(end)) = (window_start, window_end) {
        request.window_start = beijing_ms(&start, "--window-start")?;
        request.window_end = beijing_ms(&end, "--window-end")?;
    }
    let secret = match (secret, secret_path) {
        (Some(s), _) => secret_bytes(&s, "--secret")?,
        (None, Some(path)) => secret_file(&path, true)?,
        (None, None) => bail!("say which secret: --secret HEX or --secret-file FILE"),
    };
    request.commitment = Some(commitment(&secret));
    Ok(ExpertAction::RequestExtraction(Box::new(request)))
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
    fn window_times_are_beijing_time() {
        // 2027-01-08 09:00 in Beijing is 01:00 UTC.
        assert_eq!(
            beijing_ms("2027-01-08 09:00", "--window-start").unwrap(),
            1_799_370_000_000
        );
        assert_eq!(
            beijing_ms("2027-01-08T09:00:30", "--window-start").unwrap(),
            1_799_370_030_000
        );
        let err = beijing_ms("08.01.2027", "--window-end").unwrap_err();
        assert!(err.to_string().contains("YYYY-MM-DD HH:MM"), "{err}");
    }

    /// A secret file is made once, private, and read back the same for the reveal; a file that
    /// is not a secret is named.
    #[test]
    fn a_secret_file_is_written_once_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.hex");
        assert!(
            secret_file(&path, false).is_err(),
            "a reveal needs the file"
        );
        let made = secret_file(&path, true).unwrap();
        assert_eq!(made.len(), 32);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(secret_file(&path, false).unwrap(), made);
        assert_eq!(
            secret_file(&path, true).unwrap(),
            made,
            "kept, not replaced"
        );
        std::fs::write(&path, "not hex").unwrap();
        let err = secret_file(&path, false).unwrap_err().to_string();
        assert!(err.contains("s.hex") && err.contains("not hex"), "{err}");
    }

    /// `--issuer` takes a fingerprint or the issuer's certificate file; both name the same.
    #[test]
    fn an_issuer_is_named_by_fingerprint_or_certificate() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/ca-root.pem");
        let by_file = issuer_ref(file).unwrap();
        assert_eq!(issuer_ref(&by_file.to_string()).unwrap(), by_file);
        let err = issuer_ref("no-such-file.pem").unwrap_err().to_string();
        assert!(
            err.contains("a fingerprint, or a certificate file"),
            "{err}"
        );
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
            secret_bytes("00", "--secret")
                .unwrap_err()
                .to_string()
                .contains("16 bytes")
        );
    }
}
