//! The committed-event feed (`GET /v1/events`): what happened on the chain, block by block, in
//! chain order, each event with a cursor a client resumes from.
//!
//! This module owns the derivation of a block's events, the cursor grammar and the kind
//! filter; [`crate::api`] serves the pages and the long-poll. Events are not stored: they are
//! derived, deterministically, from the stored block, its receipts and state reads of records
//! that never change once written (credit records, subject versions, revocations, proposals
//! that took effect, experts' home members, operators' members). So every node derives the
//! same events for a block, and a cursor means the same event on every node and after restarts.
//!
//! # Order
//! The events of block `H` come in the order the block executed:
//! 1. block-start events: governance proposals that took effect at `H`
//!    (`governance.applied`, or `governance.failed` when the change no longer applied), by
//!    proposal id;
//! 2. for each transaction whose receipt is a success, in index order, its one event. Failed
//!    transactions (and a transaction included again, whose first receipt counts) give none.
//!
//! Event `N` of block `H` (0-based among all of `H`'s events, whatever filter a client asks
//! for) has the cursor `H:N`; the cursor `H` stands for "after every event of block `H`".

use std::collections::{BTreeMap, HashMap};

use caihong_chaincode::ca::{self, CaAction};
use caihong_chaincode::credit;
use caihong_chaincode::experts::{self, ExpertAction};
use caihong_chaincode::governance::{self, GovernanceAction, Proposal, ProposalStatus};
use caihong_chaincode::members::{MemberId, Operator, OperatorAction};
use caihong_chaincode::subjects::{self, Subject, SubjectAction};
use caihong_chaincode::{
    Action, Hash, PublicKey, SignedTransaction, StateReader, TxOutput, TxStatus, Uscc, keys,
};
use serde_json::{Value, json};

use crate::contract::Event;
use crate::storage::{CF_BLOCKS, CF_RECEIPTS, CF_STATE, StorageError, Store};

/// Every event kind; the part before the dot is its family.
pub const KINDS: [&str; 23] = [
    "credit.recorded",
    "subject.registered",
    "subject.updated",
    "subject.handed_over",
    "ca.issuer_registered",
    "ca.recognition_set",
    "ca.certificate_registered",
    "ca.certificate_revoked",
    "ca.crl_imported",
    "expert.registered",
    "expert.updated",
    "expert.status_set",
    "expert.conduct_recorded",
    "extraction.requested",
    "extraction.sealed",
    "extraction.responded",
    "extraction.published",
    "extraction.disclosed",
    "governance.proposed",
    "governance.voted",
    "governance.applied",
    "governance.failed",
    "operator.changed",
];

/// The families of [`KINDS`], in the same order.
pub const FAMILIES: [&str; 7] = [
    "credit",
    "subject",
    "ca",
    "expert",
    "extraction",
    "governance",
    "operator",
];

/// Most events in one answer, and the default.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;

/// Most blocks one request scans: an idle chain has long runs of empty blocks, and a client
/// that asks from far behind gets `next` at the last height scanned and asks again.
pub const MAX_SCANNED_BLOCKS: u64 = 5000;

/// Most transactions one request looks at (whole blocks: the scan stops after the block that
/// reaches it), so a rarely matching filter on a busy chain answers in bounded time too.
pub const MAX_SCANNED_TXS: usize = 50_000;

/// Where a client is in the feed: after a whole block, or after one event of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cursor {
    /// `H`: after every event of block `H`.
    Block(u64),
    /// `H:N`: after event `N` of block `H`.
    Event(u64, u32),
}

/// The cursor grammar, for error messages and docs/API.md.
pub const CURSOR_GRAMMAR: &str = "a cursor is H (after every event of block H) or H:N (after \
     event N of block H, counted from 0), H and N decimal; pass the `next` of the previous \
     answer, or 0 to start from genesis";

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, String> {
        let wrong = || format!("after={text:?} is not a cursor: {CURSOR_GRAMMAR}");
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match text.split_once(':') {
            None if digits(text) => text.parse().map(Cursor::Block).map_err(|_| wrong()),
            Some((h, n)) if digits(h) && digits(n) => Ok(Cursor::Event(
                h.parse().map_err(|_| wrong())?,
                n.parse().map_err(|_| wrong())?,
            )),
            _ => Err(wrong()),
        }
    }

    /// The height to scan from and the first event ordinal of that height to answer.
    fn resume(self) -> (u64, u64) {
        match self {
            Cursor::Block(h) => (h.saturating_add(1), 0),
            Cursor::Event(h, n) => (h, u64::from(n) + 1),
        }
    }

    /// The position in the feed, for comparing cursors: `H:N` comes before `H:N+1`, which
    /// comes before `H`.
    pub fn position(self) -> (u64, u64) {
        match self {
            Cursor::Block(h) => (h, u64::MAX),
            Cursor::Event(h, n) => (h, u64::from(n)),
        }
    }

    pub fn height(self) -> u64 {
        match self {
            Cursor::Block(h) | Cursor::Event(h, _) => h,
        }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cursor::Block(h) => write!(f, "{h}"),
            Cursor::Event(h, n) => write!(f, "{h}:{n}"),
        }
    }
}

/// Which kinds a client asked for (`kinds=`): families and exact kinds; none means all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindFilter {
    wanted: Vec<String>,
}

impl KindFilter {
    /// Comma-separated families (`credit`) or kinds (`credit.recorded`); empty means all.
    pub fn parse(text: Option<&str>) -> Result<KindFilter, String> {
        let mut wanted = Vec::new();
        for item in text.unwrap_or("").split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let family = item.split('.').next().unwrap_or(item);
            if !FAMILIES.contains(&family) {
                return Err(format!(
                    "kinds: unknown family {family:?}; the families are {}",
                    FAMILIES.join(", ")
                ));
            }
            if item.contains('.') && !KINDS.contains(&item) {
                let of_family: Vec<&str> = KINDS
                    .iter()
                    .copied()
                    .filter(|k| k.split('.').next() == Some(family))
                    .collect();
                return Err(format!(
                    "kinds: unknown kind {item:?}; the {family} kinds are {}",
                    of_family.join(", ")
                ));
            }
            wanted.push(item.to_string());
        }
        Ok(KindFilter { wanted })
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.wanted.is_empty()
            || self
                .wanted
                .iter()
                .any(|w| w == kind || kind.split('.').next() == Some(w.as_str()))
    }
}

/// One answer's worth of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub events: Vec<Event>,
    /// What to pass as `after` next: the last event answered when the page is full, else
    /// the last height scanned whole (or the cursor asked with, when nothing was scanned).
    pub next: Cursor,
    /// The latest committed height when the page was read.
    pub tip: u64,
    /// The scan reached the tip without filling the page: there is nothing more to read yet.
    pub caught_up: bool,
}

/// The events after `after` that `filter` wants, at most `limit`, scanning at most
/// [`MAX_SCANNED_BLOCKS`] blocks (and stopping after the block that reaches
/// [`MAX_SCANNED_TXS`] transactions). Reads the store: run it on a blocking thread.
pub fn scan(
    store: &Store,
    after: Cursor,
    filter: &KindFilter,
    limit: usize,
) -> Result<Page, StorageError> {
    scan_within(store, after, filter, limit, MAX_SCANNED_BLOCKS)
}

fn scan_within(
    store: &Store,
    after: Cursor,
    filter: &KindFilter,
    limit: usize,
    max_blocks: u64,
) -> Result<Page, StorageError> {
    let view = store.state_view()?;
    let tip = view.height().unwrap_or(0);
    let limit = limit.clamp(1, MAX_LIMIT);
    let (first, skip) = after.resume();
    let mut page = Page {
        events: Vec::new(),
        next: after,
        tip,
        caught_up: true,
    };
    if first > tip {
        return Ok(page);
    }
    let last = tip.min(first.saturating_add(max_blocks.max(1) - 1));
    let mut derive = Derive::new(store, &view);
    let mut txs_seen = 0;
    for height in first..=last {
        let skip = if height == first { skip } else { 0 };
        let (events, txs) = derive.block(height, |n, kind| n >= skip && filter.matches(kind))?;
        txs_seen += txs;
        for (n, event) in events {
            page.events.push(event);
            if page.events.len() == limit {
                page.next = Cursor::Event(height, n);
                page.caught_up = false;
                return Ok(page);
            }
        }
        page.next = Cursor::Block(height);
        if txs_seen >= MAX_SCANNED_TXS && height < last {
            page.caught_up = false;
            return Ok(page);
        }
    }
    page.caught_up = last == tip;
    Ok(page)
}

/// An event before its cursor and block fields are filled in; `data` is built only for the
/// events a client wants.
struct Found {
    tx: Option<(u32, Hash)>,
    kind: &'static str,
    data: Option<Value>,
}

/// Derives blocks' events over one state view, remembering what the next block needs.
struct Derive<'a> {
    store: &'a Store,
    state: &'a dyn StateReader,
    /// Proposals that took effect (or failed to), by the height they did, loaded once.
    decided: Option<BTreeMap<u64, Vec<Proposal>>>,
    /// Signers' members, looked up once each (an operator key never changes member).
    members: HashMap<PublicKey, MemberId>,
}

fn missing(what: impl Into<String>, detail: impl ToString) -> StorageError {
    StorageError::corrupt(CF_STATE, what, detail)
}

impl<'a> Derive<'a> {
    fn new(store: &'a Store, state: &'a dyn StateReader) -> Self {
        Derive {
            store,
            state,
            decided: None,
            members: HashMap::new(),
        }
    }

    /// Block `height`'s events that `want(ordinal, kind)` accepts, with their ordinals and
    /// data, and how many transactions the block has.
    fn block(
        &mut self,
        height: u64,
        want: impl Fn(u64, &str) -> bool,
    ) -> Result<(Vec<(u32, Event)>, usize), StorageError> {
        let block = self.store.block(height)?.ok_or_else(|| {
            StorageError::corrupt(
                CF_BLOCKS,
                format!("block {height}"),
                "missing below the tip",
            )
        })?;
        let mut found = Vec::new();
        self.block_start(height, &mut found)?;
        for (index, tx) in block.txs.iter().enumerate() {
            let Some(output) = self.success(height, index, tx)? else {
                continue;
            };
            let kind = kind_of(&tx.tx.action);
            found.push(Found {
                tx: Some((index as u32, tx.hash())),
                kind,
                data: None,
            });
            let n = found.len() as u64 - 1;
            if want(n, kind) {
                let data = self.tx_data(tx, &output)?;
                found.last_mut().expect("pushed").data = Some(data);
            }
        }
        let events = found
            .into_iter()
            .enumerate()
            .filter(|(n, f)| want(*n as u64, f.kind))
            .map(|(n, f)| {
                let event = Event {
                    cursor: Cursor::Event(height, n as u32).to_string(),
                    height,
                    tx_index: f.tx.map(|(i, _)| i),
                    tx_hash: f.tx.map(|(_, h)| h.to_hex()),
                    time_ms: block.header.time_ms,
                    kind: f.kind.to_string(),
                    data: f.data.expect("data is built for every wanted event"),
                };
                (n as u32, event)
            })
            .collect();
        Ok((events, block.txs.len()))
    }

    /// The output of transaction `index` of block `height` if it succeeded there (its stored
    /// receipt is of that place: an inclusion again of a committed transaction is refused by
    /// its nonce, and only the first inclusion's receipt is kept).
    fn success(
        &self,
        height: u64,
        index: usize,
        tx: &SignedTransaction,
    ) -> Result<Option<TxOutput>, StorageError> {
        let hash = tx.hash();
        let stored = self.store.receipt(&hash)?.ok_or_else(|| {
            StorageError::corrupt(
                CF_RECEIPTS,
                format!("receipt {hash}"),
                format!("transaction {index} of block {height} has none"),
            )
        })?;
        if stored.location.height != height || stored.location.index as usize != index {
            return Ok(None);
        }
        Ok(match stored.receipt.status {
            TxStatus::Success(output) => Some(output),
            TxStatus::Failed(_) => None,
        })
    }

    /// Governance changes that took effect at `height`.
    fn block_start(&mut self, height: u64, found: &mut Vec<Found>) -> Result<(), StorageError> {
        let state = self.state;
        let decided = self.decided.get_or_insert_with(|| {
            let mut by_height: BTreeMap<u64, Vec<Proposal>> = BTreeMap::new();
            for p in governance::proposals(state) {
                if let ProposalStatus::Applied { height: at }
                | ProposalStatus::Failed { height: at, .. } = p.status
                {
                    by_height.entry(at).or_default().push(p);
                }
            }
            by_height
        });
        for p in decided.get(&height).into_iter().flatten() {
            let (kind, data) = match &p.status {
                ProposalStatus::Failed { reason, .. } => (
                    "governance.failed",
                    json!({"proposal": p.id, "kind": p.kind, "reason": reason}),
                ),
                _ => (
                    "governance.applied",
                    json!({"proposal": p.id, "kind": p.kind}),
                ),
            };
            found.push(Found {
                tx: None,
                kind,
                data: Some(data),
            });
        }
        Ok(())
    }

    /// The member an operator key acts for.
    fn member_of(&mut self, key: &PublicKey) -> Result<MemberId, StorageError> {
        if let Some(m) = self.members.get(key) {
            return Ok(m.clone());
        }
        let op: Operator = caihong_chaincode::exec::read(self.state, &keys::operator(key))
            .ok_or_else(|| missing(format!("operator {key}"), "signed a committed transaction"))?;
        self.members.insert(*key, op.member.clone());
        Ok(op.member)
    }

    /// The data of a successful transaction's event.
    fn tx_data(
        &mut self,
        tx: &SignedTransaction,
        output: &TxOutput,
    ) -> Result<Value, StorageError> {
        let state = self.state;
        let odd = || {
            missing(
                format!("receipt of {}", tx.hash()),
                format!("output {output:?} does not fit its action"),
            )
        };
        Ok(match (&tx.tx.action, output) {
            (Action::Credit(_), TxOutput::CreditRecord(id)) => {
                let record = credit::record(state, *id)
                    .ok_or_else(|| missing(format!("credit record {id}"), "not stored"))?;
                to_value(&record)
            }
            (Action::Subject(_), TxOutput::SubjectVersion { uscc, version }) => {
                to_value(&subject_version(state, uscc, *version)?)
            }
            (Action::Ca(a), out) => match (a, out) {
                (CaAction::RegisterIssuer { .. }, TxOutput::Certificate(fp))
                | (CaAction::RegisterCertificate { .. }, TxOutput::Certificate(fp)) => {
                    json!({"fingerprint": fp})
                }
                (CaAction::SetRecognition { issuer, recognized }, TxOutput::Certificate(_)) => {
                    let member = self.member_of(&tx.tx.signer)?;
                    json!({"issuer": issuer, "member": member, "recognized": recognized})
                }
                (
                    CaAction::RevokeCertificate {
                        issuer, serial_hex, ..
                    },
                    TxOutput::Revoked { .. },
                ) => {
                    let serial = ca::normalize_serial(serial_hex).map_err(|_| odd())?;
                    let r = ca::revocation(state, issuer, &serial).ok_or_else(|| {
                        missing(format!("revocation {issuer}/{serial}"), "not stored")
                    })?;
                    json!({"issuer": r.issuer, "serial_hex": r.serial_hex, "reason": r.reason})
                }
                (CaAction::ImportCrl { .. }, TxOutput::Revoked { count }) => {
                    json!({"revoked": count})
                }
                _ => return Err(odd()),
            },
            (Action::Expert(a), out) => match (a, out) {
                (
                    ExpertAction::Register(_)
                    | ExpertAction::Update(_)
                    | ExpertAction::SetStatus { .. }
                    | ExpertAction::RecordConduct { .. },
                    TxOutput::Expert(id),
                ) => {
                    let expert = experts::expert(state, id)
                        .ok_or_else(|| missing(format!("expert {id}"), "not stored"))?;
                    json!({"expert": id, "home": expert.home})
                }
                (
                    ExpertAction::RequestExtraction(_)
                    | ExpertAction::SealExtraction { .. }
                    | ExpertAction::PublishResult { .. },
                    TxOutput::Extraction(id),
                ) => json!({"extraction": id}),
                // Slots and answers only: who sits stays sealed until the reveal.
                (
                    ExpertAction::Respond {
                        extraction,
                        requirement,
                        slot,
                        accept,
                        ..
                    },
                    _,
                ) => {
                    let member = self.member_of(&tx.tx.signer)?;
                    json!({"extraction": extraction, "requirement": requirement + 1,
                           "slot": slot + 1, "home": member, "accept": accept})
                }
                (
                    ExpertAction::DiscloseSeats {
                        extraction,
                        openings,
                    },
                    _,
                ) => {
                    let member = self.member_of(&tx.tx.signer)?;
                    json!({"extraction": extraction, "home": member, "slots": openings.len()})
                }
                _ => return Err(odd()),
            },
            (Action::Governance(a), TxOutput::Proposal(id)) => match a {
                GovernanceAction::Propose { kind } => json!({"proposal": id, "kind": kind}),
                GovernanceAction::Vote { approve, .. } => {
                    let member = self.member_of(&tx.tx.signer)?;
                    json!({"proposal": id, "member": member, "approve": approve})
                }
            },
            (Action::Operator(a), _) => {
                let member = self.member_of(&tx.tx.signer)?;
                let (change, key, roles) = match a {
                    OperatorAction::Register { key, roles, .. } => ("registered", key, Some(roles)),
                    OperatorAction::SetRoles { key, roles } => ("roles_set", key, Some(roles)),
                    OperatorAction::Deactivate { key } => ("deactivated", key, None),
                };
                let roles = roles.map(|r| r.iter().map(|r| r.as_str()).collect::<Vec<_>>());
                json!({"member": member, "operator": key, "change": change, "roles": roles})
            }
            _ => return Err(odd()),
        })
    }
}

/// The event kind of a successful transaction's action.
fn kind_of(action: &Action) -> &'static str {
    match action {
        Action::Credit(_) => "credit.recorded",
        Action::Subject(SubjectAction::Register(_)) => "subject.registered",
        Action::Subject(SubjectAction::Update(_)) => "subject.updated",
        Action::Subject(SubjectAction::HandOver { .. }) => "subject.handed_over",
        Action::Ca(CaAction::RegisterIssuer { .. }) => "ca.issuer_registered",
        Action::Ca(CaAction::SetRecognition { .. }) => "ca.recognition_set",
        Action::Ca(CaAction::RegisterCertificate { .. }) => "ca.certificate_registered",
        Action::Ca(CaAction::RevokeCertificate { .. }) => "ca.certificate_revoked",
        Action::Ca(CaAction::ImportCrl { .. }) => "ca.crl_imported",
        Action::Expert(ExpertAction::Register(_)) => "expert.registered",
        Action::Expert(ExpertAction::Update(_)) => "expert.updated",
        Action::Expert(ExpertAction::SetStatus { .. }) => "expert.status_set",
        Action::Expert(ExpertAction::RecordConduct { .. }) => "expert.conduct_recorded",
        Action::Expert(ExpertAction::RequestExtraction(_)) => "extraction.requested",
        Action::Expert(ExpertAction::SealExtraction { .. }) => "extraction.sealed",
        Action::Expert(ExpertAction::Respond { .. }) => "extraction.responded",
        Action::Expert(ExpertAction::PublishResult { .. }) => "extraction.published",
        Action::Expert(ExpertAction::DiscloseSeats { .. }) => "extraction.disclosed",
        Action::Governance(GovernanceAction::Propose { .. }) => "governance.proposed",
        Action::Governance(GovernanceAction::Vote { .. }) => "governance.voted",
        Action::Operator(_) => "operator.changed",
    }
}

/// Version `version` of a subject: kept under its own key once superseded, or the current one.
fn subject_version(
    state: &dyn StateReader,
    uscc: &str,
    version: u32,
) -> Result<Subject, StorageError> {
    let gone = || missing(format!("subject {uscc} version {version}"), "not stored");
    let uscc = Uscc::parse(uscc).map_err(|_| gone())?;
    caihong_chaincode::exec::read::<Subject>(state, &keys::subject_version(&uscc, version))
        .or_else(|| subjects::subject(state, &uscc).filter(|s| s.version == version))
        .ok_or_else(gone)
}

fn to_value(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("chaincode records serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, Header, receipts_root, txs_root};
    use caihong_chaincode::credit::{
        CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, Severity,
    };
    use caihong_chaincode::experts::{ExpertInfo, ExtractionRequest, Requirement};
    use caihong_chaincode::governance::ProposalKind;
    use caihong_chaincode::sandbox::{SANDBOX_GENESIS_TIME_MS, Sandbox, public};
    use caihong_chaincode::subjects::{SubjectInfo, SubjectRole, SubjectStatus};
    use caihong_chaincode::types::parse_date;
    use caihong_chaincode::{BlockContext, Transaction, exec};
    use caihong_consensus::{ChainId, CommitCertificate, Ed25519Signer, Signer, Vote, VoteKind};
    use ed25519_dalek::SigningKey;

    #[test]
    fn cursors_parse_print_and_order() {
        for (text, cursor) in [
            ("0", Cursor::Block(0)),
            ("12", Cursor::Block(12)),
            ("12:0", Cursor::Event(12, 0)),
            ("7:3", Cursor::Event(7, 3)),
        ] {
            assert_eq!(Cursor::parse(text), Ok(cursor), "{text}");
            assert_eq!(cursor.to_string(), text);
        }
        for bad in [
            "",
            " ",
            "a",
            "1:",
            ":1",
            "1:2:3",
            "-1",
            "+1",
            "1.5",
            "1:-1",
            "1:+2",
            "1 :2",
            "0x10",
            "99999999999999999999999",
            "1:99999999999",
        ] {
            let e = Cursor::parse(bad).unwrap_err();
            assert!(e.contains("H:N (after event N of block H"), "{bad:?}: {e}");
        }
        // In feed order: the events of a block by ordinal, then "after the whole block".
        let order = [
            Cursor::Block(4),
            Cursor::Event(5, 0),
            Cursor::Event(5, 1),
            Cursor::Event(5, 10),
            Cursor::Block(5),
            Cursor::Event(6, 0),
        ];
        for pair in order.windows(2) {
            assert!(pair[0].position() < pair[1].position(), "{pair:?}");
        }
        assert_eq!(Cursor::Event(5, 1).resume(), (5, 2));
        assert_eq!(Cursor::Block(5).resume(), (6, 0));
    }

    #[test]
    fn kinds_filter_by_family_or_exact_kind() {
        let all = KindFilter::parse(None).unwrap();
        assert_eq!(KindFilter::parse(Some(" , ")).unwrap(), all);
        assert!(KINDS.iter().all(|k| all.matches(k)));
        let some = KindFilter::parse(Some("credit, governance.applied")).unwrap();
        assert!(some.matches("credit.recorded"));
        assert!(some.matches("governance.applied"));
        assert!(!some.matches("governance.voted"));
        assert!(!some.matches("subject.registered"));
        let e = KindFilter::parse(Some("credit,bids")).unwrap_err();
        assert!(
            e.contains("\"bids\"") && e.contains(&FAMILIES.join(", ")),
            "{e}"
        );
        let e = KindFilter::parse(Some("credit.revoked")).unwrap_err();
        assert!(e.contains("the credit kinds are credit.recorded"), "{e}");
        // Every kind's family is listed, and every family has kinds.
        for k in KINDS {
            assert!(FAMILIES.contains(&k.split('.').next().unwrap()), "{k}");
        }
        for f in FAMILIES {
            assert!(KINDS.iter().any(|k| k.starts_with(&format!("{f}."))), "{f}");
        }
    }

    /// A store holding the four-city sandbox genesis, committing blocks of signed actions.
    struct Chain {
        _dir: tempfile::TempDir,
        store: Store,
        chain_id: String,
    }

    impl Chain {
        fn new() -> Chain {
            let sb = Sandbox::new(4);
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path().join("db")).unwrap();
            let writes = sb.state_writes();
            let genesis = crate::chain::initial_header(
                &sb.chain_id,
                SANDBOX_GENESIS_TIME_MS,
                Hash::ZERO,
                &writes,
            );
            store.init_genesis(&writes, &genesis).unwrap();
            Chain {
                _dir: dir,
                store,
                chain_id: sb.chain_id,
            }
        }

        /// Executes and commits the next block (one second after its parent), each action
        /// signed with its key's next nonce; returns whether each succeeded.
        fn commit(&self, actions: Vec<(&SigningKey, Action)>) -> Vec<bool> {
            let view = self.store.state_view().unwrap();
            let parent = self.store.latest_header().unwrap().unwrap();
            let ctx = BlockContext {
                chain_id: self.chain_id.clone(),
                height: parent.height + 1,
                time_ms: parent.time_ms + 1000,
                parent_hash: parent.hash(),
            };
            let mut nonces: HashMap<PublicKey, u64> = HashMap::new();
            let txs: Vec<_> = actions
                .into_iter()
                .map(|(key, action)| {
                    let signer = public(key);
                    let nonce = nonces
                        .entry(signer)
                        .or_insert_with(|| exec::next_nonce(&view, &signer));
                    let tx = Transaction {
                        chain_id: self.chain_id.clone(),
                        signer,
                        nonce: *nonce,
                        action,
                    }
                    .sign(key);
                    *nonce += 1;
                    tx.assume_verified()
                })
                .collect();
            let (writes, receipts) = exec::execute_block(&view, &ctx, &txs);
            let signed: Vec<SignedTransaction> = txs.iter().map(|t| t.signed().clone()).collect();
            let block = Block {
                header: Header {
                    chain_id: self.chain_id.clone(),
                    height: ctx.height,
                    time_ms: ctx.time_ms,
                    parent_hash: ctx.parent_hash,
                    proposer: public(&Sandbox::node_key("hohhot")),
                    txs_root: txs_root(&signed),
                    receipts_root: receipts_root(&receipts),
                    state_root: view.state_root_after(&writes).unwrap(),
                    next_validators_hash: Hash::ZERO,
                },
                txs: signed,
            };
            drop(view);
            self.store
                .commit_block(&block, &certificate(&block), &writes, &receipts)
                .unwrap();
            receipts.iter().map(|r| r.is_success()).collect()
        }
    }

    /// A commit certificate the store takes (it checks height and value, not signatures).
    fn certificate(block: &Block) -> CommitCertificate {
        let signer = Ed25519Signer::new(Sandbox::node_key("hohhot"));
        let value = caihong_consensus::Hash(block.hash().0);
        let vote = Vote {
            kind: VoteKind::Precommit,
            height: block.header.height,
            round: 0,
            value: Some(value),
            validator: signer.public_key(),
        }
        .sign(&ChainId::new(block.header.chain_id.clone()), &signer);
        CommitCertificate::from_precommits(block.header.height, 0, value, [&vote])
    }

    fn org(n: u32) -> String {
        caihong_chaincode::uscc::build("91150100", &format!("MA{n:06}"))
            .unwrap()
            .as_str()
            .to_string()
    }

    fn subject(version_name: &str) -> SubjectInfo {
        SubjectInfo {
            uscc: org(1),
            name: version_name.into(),
            roles: [SubjectRole::Bidder].into(),
            legal_representative: "法人".into(),
            qualifications: vec![],
            status: SubjectStatus::Active,
        }
    }

    fn credit_record() -> Action {
        Action::Credit(CreditAction::Record(Box::new(CreditRecordInput {
            kind: CreditKind::Violation,
            subject_uscc: org(1),
            subject_name: "测试投标人有限公司".into(),
            document_no: "测罚〔2024〕1号".into(),
            violation_type: "未按规定提交投标保证金".into(),
            legal_basis: "《中华人民共和国招标投标法》第五十三条".into(),
            penalty_categories: vec![PenaltyCategory::Fine],
            content: "罚款".into(),
            fine_fen: 50_000,
            decision_date: parse_date("2024-05-01").unwrap(),
            penalty_end_date: None,
            publication_end_date: parse_date("2024-05-31").unwrap(),
            authority_name: "测试发展和改革委员会".into(),
            authority_uscc: String::new(),
            severity: Severity::General,
            rating: None,
        })))
    }

    fn expert(n: u32) -> Action {
        Action::Expert(ExpertAction::Register(Box::new(ExpertInfo {
            id: experts::expert_id(&format!("ID-{n}")),
            name: format!("专家{n}"),
            specialties: vec!["A01".into()],
            title: "高级工程师".into(),
            employer_uscc: org(100 + n),
        })))
    }

    fn extraction_request() -> Action {
        let start = SANDBOX_GENESIS_TIME_MS + 2 * 86_400_000;
        Action::Expert(ExpertAction::RequestExtraction(Box::new(
            ExtractionRequest {
                project_code: "HHHT-2024-001".into(),
                window_start: start,
                window_end: start + 8 * 3_600_000,
                requirements: vec![Requirement {
                    specialty: "A01".into(),
                    count: 5,
                    backups: 0,
                }],
                tenderee_uscc: org(900),
                bidder_usccs: vec![],
                remote: None,
                commitment: Some(experts::commitment(&[7u8; 32])),
            },
        )))
    }

    /// Five blocks with every source of events: transactions of several kinds, a failed one,
    /// a governance change taking effect at a block's start, and an extraction request (its
    /// anchor in the next block is no event: the committee is sealed by a transaction).
    fn story() -> Chain {
        let chain = Chain::new();
        let [hohhot, baotou, ordos] = ["hohhot", "baotou", "ordos"].map(Sandbox::admin_key);
        let mut block1 = vec![
            (
                &hohhot,
                Action::Governance(GovernanceAction::Propose {
                    kind: ProposalKind::SetParameter {
                        name: "proposal_ttl_blocks".into(),
                        value: 500,
                    },
                }),
            ),
            (
                &hohhot,
                Action::Subject(SubjectAction::Register(subject("测试投标人有限公司"))),
            ),
        ];
        block1.extend((1..=5).map(|n| (&hohhot, expert(n))));
        assert!(chain.commit(block1).iter().all(|ok| *ok));
        let vote = |approve| {
            Action::Governance(GovernanceAction::Vote {
                proposal: 1,
                approve,
            })
        };
        let block2 = chain.commit(vec![
            (&baotou, vote(true)),
            // Registered already: fails, and gives no event.
            (
                &hohhot,
                Action::Subject(SubjectAction::Register(subject("again"))),
            ),
            (&ordos, vote(true)),
            (&hohhot, credit_record()),
            (&hohhot, extraction_request()),
        ]);
        assert_eq!(block2, [true, false, true, true, true]);
        // The request's anchor is recorded at this block's start: no event.
        assert!(chain.commit(vec![]).is_empty());
        // The change passed at 2 takes effect at 2 + activation_delay_blocks (2).
        let update = Action::Subject(SubjectAction::Update(subject("测试投标人（新）有限公司")));
        assert_eq!(chain.commit(vec![(&hohhot, update)]), [true]);
        assert!(chain.commit(vec![]).is_empty());
        chain
    }

    fn cursors(events: &[Event]) -> Vec<String> {
        events.iter().map(|e| e.cursor.clone()).collect()
    }

    fn read_all(store: &Store, filter: &KindFilter, limit: usize) -> Vec<Event> {
        let mut after = Cursor::Block(0);
        let mut all = Vec::new();
        loop {
            let page = scan(store, after, filter, limit).unwrap();
            assert!(page.events.len() <= limit);
            assert!(page.next.position() >= after.position(), "{page:?}");
            all.extend(page.events.iter().cloned());
            after = page.next;
            if page.caught_up {
                return all;
            }
        }
    }

    #[test]
    fn a_blocks_events_come_in_execution_order_with_stable_cursors() {
        let chain = story();
        let all = KindFilter::default();
        let page = scan(&chain.store, Cursor::Block(0), &all, MAX_LIMIT).unwrap();
        let listed: Vec<(String, &str)> = page
            .events
            .iter()
            .map(|e| (e.cursor.clone(), e.kind.as_str()))
            .collect();
        let mut expected = vec![
            ("1:0".to_string(), "governance.proposed"),
            ("1:1".into(), "subject.registered"),
        ];
        expected.extend((2..7).map(|n| (format!("1:{n}"), "expert.registered")));
        expected.extend([
            ("2:0".into(), "governance.voted"),
            ("2:1".into(), "governance.voted"),
            ("2:2".into(), "credit.recorded"),
            ("2:3".into(), "extraction.requested"),
            ("4:0".into(), "governance.applied"),
            ("4:1".into(), "subject.updated"),
        ]);
        assert_eq!(listed, expected);
        assert_eq!(
            (page.next, page.tip, page.caught_up),
            (Cursor::Block(5), 5, true)
        );

        let at = |cursor: &str| page.events.iter().find(|e| e.cursor == cursor).unwrap();
        // Block-start events have no transaction; a transaction's index counts failed ones.
        assert_eq!(
            (at("4:0").tx_index, at("4:0").tx_hash.as_deref()),
            (None, None)
        );
        assert_eq!(at("2:2").tx_index, Some(3));
        assert_eq!(at("4:1").tx_index, Some(0));
        assert_eq!(at("2:2").time_ms, SANDBOX_GENESIS_TIME_MS + 2000);
        assert_eq!(at("2:2").data["id"], 1);
        assert_eq!(at("2:2").data["document_no"], "测罚〔2024〕1号");
        assert_eq!(at("1:1").data["version"], 1);
        assert_eq!(at("4:1").data["version"], 2);
        assert_eq!(at("4:1").data["name"], "测试投标人（新）有限公司");
        assert_eq!(
            at("1:1").data["name"],
            "测试投标人有限公司",
            "the first version"
        );
        assert_eq!(
            at("4:0").data,
            json!({"proposal": 1, "kind": {"SetParameter": {"name": "proposal_ttl_blocks", "value": 500}}})
        );
        assert_eq!(
            at("2:1").data,
            json!({"proposal": 1, "member": "ordos", "approve": true})
        );
        assert_eq!(at("2:3").data, json!({"extraction": 1}));
        let expert_event = &at("1:2").data;
        assert_eq!(expert_event["home"], "hohhot");
        assert_eq!(
            expert_event.as_object().unwrap().len(),
            2,
            "id and home only"
        );

        // Page by page, any page size, the same feed.
        for limit in [1, 2, 5] {
            assert_eq!(
                read_all(&chain.store, &all, limit),
                page.events,
                "limit {limit}"
            );
        }
    }

    #[test]
    fn filters_and_cursors_pick_from_the_same_numbering() {
        let chain = story();
        let store = &chain.store;
        let credit = KindFilter::parse(Some("credit")).unwrap();
        assert_eq!(cursors(&read_all(store, &credit, 100)), ["2:2"]);
        let mixed = KindFilter::parse(Some("subject,governance.applied")).unwrap();
        assert_eq!(cursors(&read_all(store, &mixed, 1)), ["1:1", "4:0", "4:1"]);
        // A full page ends at its last event; a page that is not full at the last block read.
        let page = scan(store, Cursor::Block(0), &mixed, 2).unwrap();
        assert_eq!((page.next, page.caught_up), (Cursor::Event(4, 0), false));
        let page = scan(store, page.next, &mixed, 2).unwrap();
        assert_eq!(cursors(&page.events), ["4:1"]);
        assert_eq!((page.next, page.caught_up), (Cursor::Block(5), true));

        let all = KindFilter::default();
        let after = |c: &str| scan(store, Cursor::parse(c).unwrap(), &all, 100).unwrap();
        assert_eq!(after("2:1").events[0].cursor, "2:2");
        assert_eq!(cursors(&after("2").events), ["4:0", "4:1"]);
        assert_eq!(cursors(&after("4:1").events), Vec::<String>::new());
        assert_eq!(after("4:1").next, Cursor::Block(5));
        // Beyond the tip: nothing yet, and the cursor comes back as it was.
        let ahead = after("9");
        assert_eq!(
            (ahead.events.len(), ahead.next, ahead.caught_up),
            (0, Cursor::Block(9), true)
        );

        // A scan that may read one block stops there, not caught up, at that height.
        let one = scan_within(store, Cursor::Block(3), &all, 100, 1).unwrap();
        assert_eq!(cursors(&one.events), ["4:0", "4:1"]);
        assert_eq!((one.next, one.caught_up), (Cursor::Block(4), false));
        let last = scan_within(store, Cursor::Block(4), &all, 100, 1).unwrap();
        assert_eq!((last.next, last.caught_up), (Cursor::Block(5), true));
    }
}
