//! Credit records: append-only, restriction (一处失信、处处受限), repair and
//! revocation, score.

use caihong_chaincode::credit::{
    self, CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, Severity,
};
use caihong_chaincode::members::Role;
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::types::start_of_day_ms;
use caihong_chaincode::{Action, Date, ErrorCode, TxOutput, TxStatus, Uscc};
use ed25519_dalek::SigningKey;

const SUBJECT: &str = "91150100MA0N12340B";
const AUTHORITY: &str = "116100000000000195";

fn day(s: &str) -> Date {
    caihong_chaincode::types::parse_date(s).unwrap()
}

fn input(kind: CreditKind, doc: &str, decided: &str, published_until: &str) -> CreditRecordInput {
    CreditRecordInput {
        kind,
        subject_uscc: SUBJECT.into(),
        subject_name: "呼和浩特建工集团".into(),
        document_no: doc.into(),
        violation_type: "串通投标".into(),
        legal_basis: "《招标投标法》第五十三条".into(),
        penalty_categories: vec![PenaltyCategory::Fine],
        content: "罚款".into(),
        fine_fen: 5_000_000,
        decision_date: day(decided),
        penalty_end_date: None,
        publication_end_date: day(published_until),
        authority_name: "内蒙古自治区发展和改革委员会".into(),
        authority_uscc: AUTHORITY.into(),
        severity: Severity::General,
        rating: None,
    }
}

fn record(sb: &mut Sandbox, key: &SigningKey, input: CreditRecordInput) -> u64 {
    match sb
        .run(key, Action::Credit(CreditAction::Record(Box::new(input))))
        .status
    {
        TxStatus::Success(TxOutput::CreditRecord(id)) => id,
        s => panic!("record failed: {s:?}"),
    }
}

fn setup() -> (Sandbox, SigningKey) {
    let mut sb = Sandbox::new(4);
    let k = sb.operator("hohhot", "credit", &[Role::Credit]);
    (sb, k)
}

fn at(date: &str) -> u64 {
    start_of_day_ms(day(date)) + 3_600_000
}

fn uscc() -> Uscc {
    Uscc::parse(SUBJECT).unwrap()
}

#[test]
fn blacklist_bars_bidding_everywhere_during_its_period() {
    let (mut sb, k) = setup();
    // Sandbox "today" is 2024-06-01.
    let id = record(
        &mut sb,
        &k,
        input(
            CreditKind::Blacklist,
            "呼发改罚〔2024〕1号",
            "2024-05-01",
            "2025-04-30",
        ),
    );
    let r = credit::restriction(&sb.state, &uscc(), at("2024-06-01"));
    assert!(r.barred);
    assert_eq!(r.records.iter().map(|x| x.id).collect::<Vec<_>>(), vec![id]);
    assert!(
        !credit::restriction(&sb.state, &uscc(), at("2024-04-30")).barred,
        "before the decision"
    );
    assert!(
        credit::restriction(&sb.state, &uscc(), at("2025-04-30")).barred,
        "last day"
    );
    assert!(
        !credit::restriction(&sb.state, &uscc(), at("2025-05-01")).barred,
        "after the end"
    );
}

#[test]
fn a_fine_alone_does_not_bar_but_a_bidding_suspension_does() {
    let (mut sb, k) = setup();
    record(
        &mut sb,
        &k,
        input(CreditKind::Violation, "doc-1", "2024-05-01", "2024-11-01"),
    );
    assert!(!credit::restriction(&sb.state, &uscc(), at("2024-06-01")).barred);
    let mut suspension = input(CreditKind::Violation, "doc-2", "2024-05-01", "2025-05-01");
    suspension.penalty_categories = vec![PenaltyCategory::BiddingSuspension];
    suspension.penalty_end_date = Some(day("2024-08-01"));
    record(&mut sb, &k, suspension);
    assert!(credit::restriction(&sb.state, &uscc(), at("2024-06-01")).barred);
    // The suspension ends with the penalty's own end date, not its publication.
    assert!(!credit::restriction(&sb.state, &uscc(), at("2024-08-02")).barred);
}

#[test]
fn the_same_decision_is_not_recorded_twice() {
    let (mut sb, k) = setup();
    let id = record(
        &mut sb,
        &k,
        input(CreditKind::Violation, "doc-1", "2024-05-01", "2024-11-01"),
    );
    let e = sb.run_err(
        &k,
        Action::Credit(CreditAction::Record(Box::new(input(
            CreditKind::Violation,
            "doc-1",
            "2024-05-01",
            "2024-11-01",
        )))),
    );
    assert_eq!(e.code, ErrorCode::AlreadyExists);
    assert!(
        e.message.contains(&format!("credit record {id}")),
        "{}",
        e.message
    );
}

#[test]
fn revocation_is_a_new_record_and_ends_the_blacklist() {
    let (mut sb, k) = setup();
    let id = record(
        &mut sb,
        &k,
        input(CreditKind::Blacklist, "bl-1", "2024-05-01", "2025-04-30"),
    );
    let other = sb.operator("baotou", "credit", &[Role::Credit]);
    let revoke = |doc: &str| {
        Action::Credit(CreditAction::RevokeBlacklist {
            record: id,
            document_no: doc.into(),
            effective_date: day("2024-06-01"),
            reason: "整改到位".into(),
        })
    };
    let e = sb.run_err(&other, revoke("rv-1"));
    assert_eq!(e.code, ErrorCode::NotHomeMember);
    let r = sb.run(&k, revoke("rv-1"));
    let TxStatus::Success(TxOutput::CreditRecord(rev)) = r.status else {
        panic!("{r:?}")
    };
    assert!(!credit::restriction(&sb.state, &uscc(), at("2024-06-02")).barred);
    assert!(
        credit::restriction(&sb.state, &uscc(), at("2024-05-31")).barred,
        "history is kept"
    );
    let views = credit::records_for(&sb.state, &uscc());
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].record.kind, CreditKind::Blacklist);
    assert_eq!(views[0].ended.as_ref().unwrap().by_record, rev);
    assert_eq!(views[1].record.kind, CreditKind::BlacklistRevocation);
    assert_eq!(views[1].record.refers_to, Some(id));
    let e = sb.run_err(&k, revoke("rv-2"));
    assert_eq!(e.code, ErrorCode::Conflict);
}

#[test]
fn repair_only_after_the_minimum_period() {
    let (mut sb, k) = setup();
    let mut serious = input(CreditKind::Violation, "doc-s", "2024-05-01", "2026-05-01");
    serious.severity = Severity::Serious;
    serious.penalty_categories = vec![PenaltyCategory::BiddingDisqualification];
    let id = record(&mut sb, &k, serious);
    let repair = Action::Credit(CreditAction::Repair {
        record: id,
        reason: "已履行处罚并完成信用承诺".into(),
    });
    let e = sb.run_err(&k, repair.clone());
    assert_eq!(e.code, ErrorCode::TooEarly);
    assert!(e.message.contains("365 days"), "{}", e.message);
    assert!(e.message.contains("2025-05-01"), "{}", e.message);
    sb.advance_days(365);
    let r = sb.run(&k, repair);
    assert!(r.is_success(), "{r:?}");
    assert!(!credit::restriction(&sb.state, &uscc(), sb.time_ms).barred);
}

#[test]
fn bad_fields_are_named() {
    let (mut sb, k) = setup();
    let run = |sb: &mut Sandbox, i: CreditRecordInput| {
        sb.run_err(&k, Action::Credit(CreditAction::Record(Box::new(i))))
    };
    let mut bad = input(CreditKind::Violation, "d", "2024-05-01", "2024-04-01");
    let e = run(&mut sb, bad.clone());
    assert!(
        e.message.contains("before the decision date"),
        "{}",
        e.message
    );
    bad = input(CreditKind::Violation, "d", "2024-05-01", "2024-11-01");
    bad.subject_uscc = "91150100MA0N12341B".into();
    assert_eq!(run(&mut sb, bad).code, ErrorCode::InvalidUscc);
    bad = input(CreditKind::Violation, "d", "2024-05-01", "2024-11-01");
    bad.authority_uscc = "123".into();
    let e = run(&mut sb, bad);
    assert!(e.message.contains("deciding authority"), "{}", e.message);
    bad = input(CreditKind::Violation, "d", "2024-07-01", "2024-11-01");
    assert!(run(&mut sb, bad).message.contains("in the future"));
    bad = input(CreditKind::Violation, "d", "2024-05-01", "2026-11-01");
    assert!(run(&mut sb, bad).message.contains("national maximum"));
    let registrar = sb.operator("hohhot", "reg", &[Role::Registrar]);
    let e = sb.run_err(
        &registrar,
        Action::Credit(CreditAction::Record(Box::new(input(
            CreditKind::Violation,
            "d",
            "2024-05-01",
            "2024-11-01",
        )))),
    );
    assert_eq!(e.code, ErrorCode::Unauthorized);
}

#[test]
fn score_uses_chain_parameters_and_active_records() {
    let (mut sb, k) = setup();
    assert_eq!(credit::score(&sb.state, &uscc(), sb.time_ms).score, 100);
    record(
        &mut sb,
        &k,
        input(CreditKind::Violation, "v", "2024-05-01", "2024-11-01"),
    );
    let mut c = input(CreditKind::Commendation, "c", "2024-05-01", "2025-05-01");
    c.penalty_categories.clear();
    record(&mut sb, &k, c);
    let s = credit::score(&sb.state, &uscc(), sb.time_ms);
    assert_eq!(s.score, 100 - 5 + 5);
    assert_eq!(s.contributions.len(), 2);
    // After the violation's publication ends only the commendation counts.
    let later = credit::score(&sb.state, &uscc(), at("2024-12-01"));
    assert_eq!(later.score, 105);
}

#[test]
fn records_since_a_height_feed_sync_in_commit_order() {
    let (mut sb, k) = setup();
    let a = record(
        &mut sb,
        &k,
        input(CreditKind::Violation, "a", "2024-05-01", "2024-11-01"),
    );
    let h = sb.height;
    let b = record(
        &mut sb,
        &k,
        input(CreditKind::Violation, "b", "2024-05-01", "2024-11-01"),
    );
    let ids = |v: Vec<credit::CreditRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(credit::records_since(&sb.state, 0, 100)), vec![a, b]);
    assert_eq!(ids(credit::records_since(&sb.state, h + 1, 100)), vec![b]);
    assert_eq!(ids(credit::records_since(&sb.state, 0, 1)), vec![a]);
}

#[test]
fn records_since_finds_the_first_record_of_any_height() {
    // Several records in some blocks, none in others: every height must give exactly the
    // records committed at it or later, oldest first, and `limit` cuts from the front.
    let (mut sb, k) = setup();
    let mut committed: Vec<(u64, u64)> = Vec::new(); // (height, id)
    let mut doc = 0;
    for per_block in [3, 0, 1, 0, 0, 4, 2, 0, 1] {
        let actions: Vec<_> = (0..per_block)
            .map(|_| {
                doc += 1;
                let i = input(
                    CreditKind::Violation,
                    &format!("doc-{doc}"),
                    "2024-05-01",
                    "2024-11-01",
                );
                (&k, Action::Credit(CreditAction::Record(Box::new(i))))
            })
            .collect();
        let txs = sb.sign(&actions);
        for r in sb.block(&txs) {
            match r.status {
                TxStatus::Success(TxOutput::CreditRecord(id)) => committed.push((sb.height, id)),
                s => panic!("record failed: {s:?}"),
            }
        }
    }
    assert_eq!(committed.len(), 11);
    for since in 0..=sb.height + 1 {
        let expected: Vec<u64> = committed
            .iter()
            .filter(|(h, _)| *h >= since)
            .map(|(_, id)| *id)
            .collect();
        let got: Vec<u64> = credit::records_since(&sb.state, since, 100)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(got, expected, "since height {since}");
        let first_two: Vec<u64> = credit::records_since(&sb.state, since, 2)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            first_two,
            expected.iter().take(2).copied().collect::<Vec<_>>()
        );
    }
}

#[test]
fn records_for_unregistered_subjects_are_kept() {
    let (mut sb, k) = setup();
    record(
        &mut sb,
        &k,
        input(CreditKind::Blacklist, "x", "2024-05-01", "2024-12-01"),
    );
    assert!(caihong_chaincode::subjects::subject(&sb.state, &uscc()).is_none());
    assert!(credit::restriction(&sb.state, &uscc(), sb.time_ms).barred);
}
