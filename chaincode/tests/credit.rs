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
    let views = credit::records_for(&sb.state, &uscc(), day("2024-06-02"));
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].record.kind, CreditKind::Blacklist);
    assert_eq!(views[0].ended.as_ref().unwrap().by_record, rev);
    assert!(
        !views[0].published,
        "removed from the list: no longer published"
    );
    assert_eq!(views[0].published_until, Some(day("2024-05-31")));
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
    serious.penalty_end_date = Some(day("2024-10-31"));
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

/// A bidding suspension decided 2024-02-01, running to 2024-12-01, published to 2024-12-31.
fn suspension(doc: &str) -> CreditRecordInput {
    let mut s = input(CreditKind::Violation, doc, "2024-02-01", "2024-12-31");
    s.penalty_categories = vec![PenaltyCategory::Fine, PenaltyCategory::BiddingSuspension];
    s.penalty_end_date = Some(day("2024-12-01"));
    s
}

fn repair_of(id: u64) -> Action {
    Action::Credit(CreditAction::Repair {
        record: id,
        reason: "已整改并通过信用修复审核".into(),
    })
}

/// By default repair waits for the penalty's term: the obligations come first. After the
/// term it ends the publication.
#[test]
fn repair_is_refused_while_the_penalty_runs() {
    let (mut sb, k) = setup();
    let id = record(&mut sb, &k, suspension("susp-1"));
    let e = sb.run_err(&k, repair_of(id));
    assert_eq!(e.code, ErrorCode::TooEarly);
    for part in ["runs until 2024-12-01", "from 2024-12-02", "credit revoke"] {
        assert!(e.message.contains(part), "{part}: {}", e.message);
    }
    sb.advance_days(190); // 2024-12-08: the term has ended, publication has not.
    let today = caihong_chaincode::types::date_of(sb.time_ms);
    let before = credit::record_view(&sb.state, id, today).unwrap();
    assert!(before.published && !before.penalty_in_force, "{before:?}");
    assert!(sb.run(&k, repair_of(id)).is_success());
    let after = credit::record_view(&sb.state, id, today).unwrap();
    assert!(!after.published, "{after:?}");
    assert!(after.published_until < Some(today), "{after:?}");
}

/// Where the alliance allows repair during the term, it ends the publication (and the score's
/// weight) but never the suspension: the subject stays barred until the term ends.
#[test]
fn repair_ends_publication_but_not_a_bidding_suspension() {
    let params = caihong_chaincode::params::ChainParams {
        repair_during_penalty_term: 1,
        ..Default::default()
    };
    let mut sb = Sandbox::with_params(4, params);
    let k = sb.operator("hohhot", "credit", &[Role::Credit]);
    let id = record(&mut sb, &k, suspension("susp-2"));
    assert_eq!(credit::score(&sb.state, &uscc(), sb.time_ms).score, 95);
    assert!(sb.run(&k, repair_of(id)).is_success());
    let today = caihong_chaincode::types::date_of(sb.time_ms);
    let view = credit::record_view(&sb.state, id, today).unwrap();
    assert!(!view.published && view.penalty_in_force, "{view:?}");
    assert_eq!(view.penalty_until, Some(day("2024-12-01")));
    let r = credit::restriction(&sb.state, &uscc(), sb.time_ms);
    assert!(r.barred, "repair does not shorten the suspension");
    assert_eq!(r.records[0].id, id);
    assert!(!credit::restriction(&sb.state, &uscc(), at("2024-12-02")).barred);
    assert_eq!(
        credit::score(&sb.state, &uscc(), sb.time_ms).score,
        100,
        "the score counts published records only"
    );
    // A revocation of the decision still ends the term, after the repair.
    let revoke = Action::Credit(CreditAction::Revoke {
        record: id,
        document_no: "鄂尔多斯市中级人民法院（2024）行终12号".into(),
        effective_date: today,
        reason: "法院判决撤销处罚决定".into(),
    });
    assert!(sb.run(&k, revoke).is_success());
    assert!(!credit::restriction(&sb.state, &uscc(), sb.time_ms).barred);
    let view = credit::record_view(&sb.state, id, today).unwrap();
    assert_eq!(
        view.ended.as_ref().map(|e| e.date),
        Some(today),
        "the repair still ended the publication"
    );
    assert!(view.revoked.is_some() && !view.penalty_in_force, "{view:?}");
}

/// Revoking the decision (撤销) ends both periods from its effective date, by the member that
/// recorded it, once; what came before stays as history.
#[test]
fn revoking_the_decision_ends_its_penalty_and_publication() {
    let (mut sb, k) = setup();
    let id = record(&mut sb, &k, suspension("susp-3"));
    let revoke = |doc: &str, date: &str| {
        Action::Credit(CreditAction::Revoke {
            record: id,
            document_no: doc.into(),
            effective_date: day(date),
            reason: "复议决定撤销原处罚决定".into(),
        })
    };
    let other = sb.operator("baotou", "credit", &[Role::Credit]);
    assert_eq!(
        sb.run_err(&other, revoke("复-1", "2024-05-20")).code,
        ErrorCode::NotHomeMember
    );
    assert!(
        sb.run_err(&k, revoke("复-1", "2024-06-30"))
            .message
            .contains("in the future")
    );
    assert!(sb.run(&k, revoke("复-1", "2024-05-20")).is_success());
    assert!(credit::restriction(&sb.state, &uscc(), at("2024-05-19")).barred);
    assert!(!credit::restriction(&sb.state, &uscc(), at("2024-05-20")).barred);
    let view = credit::record_view(&sb.state, id, day("2024-06-01")).unwrap();
    assert!(!view.published && !view.penalty_in_force, "{view:?}");
    assert_eq!(view.penalty_until, Some(day("2024-05-19")));
    assert_eq!(view.published_until, Some(day("2024-05-19")));
    assert_eq!(
        sb.run_err(&k, revoke("复-2", "2024-05-21")).code,
        ErrorCode::Conflict
    );
    assert_eq!(sb.run_err(&k, repair_of(id)).code, ErrorCode::Conflict);
}

/// After 公示截止期 a record is kept but no longer published; queries say until when it was.
#[test]
fn a_record_is_published_until_its_publication_end() {
    let (mut sb, k) = setup();
    let id = record(
        &mut sb,
        &k,
        input(CreditKind::Violation, "pub-1", "2024-05-01", "2024-11-01"),
    );
    let on = |date: &str| credit::record_view(&sb.state, id, day(date)).unwrap();
    assert!(on("2024-11-01").published);
    let after = on("2024-11-02");
    assert!(!after.published, "{after:?}");
    assert_eq!(after.published_until, Some(day("2024-11-01")));
    assert_eq!(after.penalty_until, None, "a fine has no term");
    assert_eq!(
        credit::records_for(&sb.state, &uscc(), day("2024-11-02")).len(),
        1,
        "kept for audit"
    );
}
