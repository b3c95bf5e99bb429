//! CA mutual recognition on chain: issuers, recognition, certificates,
//! revocation (manual and CRL) and verify with every reason.
//! Fixtures: tests/fixtures/certs (made by make.sh there).

use caihong_chaincode::ca::{self, CaAction, Reason, Scope, SignatureCheck};
use caihong_chaincode::credit::{CreditAction, CreditKind, CreditRecordInput, Severity};
use caihong_chaincode::members::{MemberId, Role};
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::types::{parse_date, start_of_day_ms};
use caihong_chaincode::{Action, ErrorCode, Hash, TxOutput, TxStatus};
use ed25519_dalek::SigningKey;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/certs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

struct World {
    sb: Sandbox,
    registrar: SigningKey,
}

fn world() -> World {
    let mut sb = Sandbox::new(4);
    sb.time_ms = start_of_day_ms(parse_date("2026-06-01").unwrap());
    let registrar = sb.operator("hohhot", "reg", &[Role::Registrar, Role::Credit]);
    World { sb, registrar }
}

fn register_issuer(w: &mut World, member: &str, file: &str) -> Hash {
    let r = w.sb.run(
        &Sandbox::admin_key(member),
        Action::Ca(CaAction::RegisterIssuer {
            certificate: fixture(file),
        }),
    );
    match r.status {
        TxStatus::Success(TxOutput::Certificate(fp)) => fp,
        s => panic!("register issuer {file}: {s:?}"),
    }
}

fn recognize(w: &mut World, member: &str, issuer: Hash, recognized: bool) {
    let r = w.sb.run(
        &Sandbox::admin_key(member),
        Action::Ca(CaAction::SetRecognition { issuer, recognized }),
    );
    assert!(r.is_success(), "{r:?}");
}

fn verify(w: &World, file: &str, scope: Scope) -> ca::Verification {
    ca::verify(&w.sb.state, &fixture(file), scope, w.sb.time_ms).unwrap()
}

fn alliance_recognized_sm2(w: &mut World) -> Hash {
    let root = register_issuer(w, "hohhot", "sm2-root.pem");
    for m in ["baotou", "ordos", "yinchuan"] {
        recognize(w, m, root, true);
    }
    root
}

#[test]
fn sm2_bidder_certificate_recognized_across_the_alliance() {
    let mut w = world();
    let root = alliance_recognized_sm2(&mut w);
    let r = w.sb.run(
        &w.registrar.clone(),
        Action::Ca(CaAction::RegisterCertificate {
            certificate: fixture("sm2-bidder.pem"),
        }),
    );
    let TxStatus::Success(TxOutput::Certificate(fp)) = r.status else {
        panic!("{r:?}")
    };
    let stored = ca::certificate(&w.sb.state, &fp).unwrap();
    assert_eq!(stored.issuer, root);
    assert_eq!(stored.signature, SignatureCheck::Verified);
    assert_eq!(stored.uscc.as_ref().unwrap().as_str(), "91150100MA0N12340B");
    assert_eq!(
        ca::certificates_for(&w.sb.state, stored.uscc.as_ref().unwrap()).len(),
        1
    );

    let v = verify(&w, "sm2-bidder.pem", Scope::Alliance);
    assert!(v.recognized, "{:?}", v.reasons);
    let v = verify(
        &w,
        "sm2-bidder.der",
        Scope::Member(MemberId::parse("baotou").unwrap()),
    );
    assert!(v.recognized, "{:?}", v.reasons);
}

#[test]
fn one_member_withholding_recognition_blocks_the_alliance_but_not_others() {
    let mut w = world();
    let root = alliance_recognized_sm2(&mut w);
    recognize(&mut w, "ordos", root, false);
    let v = verify(&w, "sm2-bidder.pem", Scope::Alliance);
    assert!(!v.recognized);
    match &v.reasons[..] {
        [
            Reason::IssuerNotAllianceRecognized {
                not_recognized_by, ..
            },
        ] => {
            assert_eq!(not_recognized_by, &vec![MemberId::parse("ordos").unwrap()]);
        }
        other => panic!("{other:?}"),
    }
    let v = verify(
        &w,
        "sm2-bidder.pem",
        Scope::Member(MemberId::parse("ordos").unwrap()),
    );
    assert!(matches!(
        v.reasons[..],
        [Reason::IssuerNotRecognized { .. }]
    ));
    assert!(
        verify(
            &w,
            "sm2-bidder.pem",
            Scope::Member(MemberId::parse("hohhot").unwrap())
        )
        .recognized
    );
}

#[test]
fn unknown_issuer_and_expired_certificate_give_every_reason() {
    let w = world();
    let v = verify(&w, "rsa-expired.pem", Scope::Alliance);
    assert!(!v.recognized);
    assert!(
        v.reasons
            .iter()
            .any(|r| matches!(r, Reason::UnknownIssuer { .. }))
    );
    assert!(
        v.reasons
            .iter()
            .any(|r| matches!(r, Reason::Expired { .. }))
    );
    assert_eq!(v.reasons.len(), 2, "{:?}", v.reasons);
}

#[test]
fn tampered_certificate_is_refused_on_registration_and_fails_verify() {
    let mut w = world();
    alliance_recognized_sm2(&mut w);
    let e = w.sb.run_err(
        &w.registrar.clone(),
        Action::Ca(CaAction::RegisterCertificate {
            certificate: fixture("sm2-bidder-tampered.der"),
        }),
    );
    assert_eq!(e.code, ErrorCode::InvalidCertificate);
    assert!(e.message.contains("signature"), "{}", e.message);
    let v = verify(&w, "sm2-bidder-tampered.der", Scope::Alliance);
    assert!(
        v.reasons
            .iter()
            .any(|r| matches!(r, Reason::BadSignature { .. })),
        "{:?}",
        v.reasons
    );
}

#[test]
fn crl_import_revokes_and_verify_reports_it() {
    let mut w = world();
    alliance_recognized_sm2(&mut w);
    assert!(verify(&w, "sm2-revoked.pem", Scope::Alliance).recognized);
    let r = w.sb.run(
        &w.registrar.clone(),
        Action::Ca(CaAction::ImportCrl {
            crl: fixture("sm2-root.crl.pem"),
        }),
    );
    assert_eq!(r.status, TxStatus::Success(TxOutput::Revoked { count: 1 }));
    // The revocation holds from the CRL entry's revocationDate (when make.sh ran), not before.
    let revoked_at = caihong_chaincode::x509::parse_crl(&fixture("sm2-root.crl.pem"))
        .unwrap()
        .revoked()[0]
        .revocation_time;
    let at = |secs: i64| secs as u64 * 1000;
    let v = ca::verify(
        &w.sb.state,
        &fixture("sm2-revoked.pem"),
        Scope::Alliance,
        at(revoked_at),
    )
    .unwrap();
    assert!(
        matches!(&v.reasons[..], [Reason::Revoked { .. }]),
        "{:?}",
        v.reasons
    );
    let v = ca::verify(
        &w.sb.state,
        &fixture("sm2-revoked.pem"),
        Scope::Alliance,
        at(revoked_at - 1),
    )
    .unwrap();
    assert!(v.recognized, "{:?}", v.reasons);
    // Importing again revokes nothing new.
    let r = w.sb.run(
        &w.registrar.clone(),
        Action::Ca(CaAction::ImportCrl {
            crl: fixture("sm2-root.crl.der"),
        }),
    );
    assert_eq!(r.status, TxStatus::Success(TxOutput::Revoked { count: 0 }));
}

#[test]
fn crl_from_an_unregistered_issuer_is_refused() {
    let mut w = world();
    let e = w.sb.run_err(
        &w.registrar.clone(),
        Action::Ca(CaAction::ImportCrl {
            crl: fixture("sm2-root.crl.pem"),
        }),
    );
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[test]
fn manual_revocation_by_serial() {
    let mut w = world();
    let root = alliance_recognized_sm2(&mut w);
    let revoke = |serial: &str| {
        Action::Ca(CaAction::RevokeCertificate {
            issuer: root,
            serial_hex: serial.into(),
            reason: "证书私钥泄露".into(),
        })
    };
    let r = w.sb.run(&w.registrar.clone(), revoke("5A:10:01"));
    assert!(r.is_success(), "{r:?}");
    let v = verify(&w, "sm2-bidder.pem", Scope::Alliance);
    assert!(
        matches!(&v.reasons[..], [Reason::Revoked { .. }]),
        "{:?}",
        v.reasons
    );
    let e = w.sb.run_err(&w.registrar.clone(), revoke("5a1001"));
    assert_eq!(e.code, ErrorCode::Conflict);
    let e = w.sb.run_err(&w.registrar.clone(), revoke("zz"));
    assert_eq!(e.code, ErrorCode::InvalidInput);
}

#[test]
fn a_barred_subject_is_not_recognized() {
    let mut w = world();
    alliance_recognized_sm2(&mut w);
    let input = CreditRecordInput {
        kind: CreditKind::Blacklist,
        subject_uscc: "91150100MA0N12340B".into(),
        subject_name: "内蒙古彩虹建设有限公司".into(),
        document_no: "黑〔2026〕1号".into(),
        violation_type: "围标串标".into(),
        legal_basis: "".into(),
        penalty_categories: vec![],
        content: "列入黑名单".into(),
        fine_fen: 0,
        decision_date: parse_date("2026-05-01").unwrap(),
        penalty_end_date: None,
        publication_end_date: parse_date("2027-04-30").unwrap(),
        authority_name: "".into(),
        authority_uscc: "".into(),
        severity: Severity::Serious,
        rating: None,
    };
    let r = w.sb.run(
        &w.registrar.clone(),
        Action::Credit(CreditAction::Record(Box::new(input))),
    );
    assert!(r.is_success(), "{r:?}");
    let v = verify(&w, "sm2-bidder.pem", Scope::Alliance);
    assert!(
        matches!(&v.reasons[..], [Reason::SubjectBarred { .. }]),
        "{:?}",
        v.reasons
    );
    assert!(v.reasons[0].describe().contains("一处失信"));
}

#[test]
fn issuers_must_be_ca_certificates_and_are_registered_once() {
    let mut w = world();
    let e = w.sb.run_err(
        &Sandbox::admin_key("hohhot"),
        Action::Ca(CaAction::RegisterIssuer {
            certificate: fixture("sm2-bidder.pem"),
        }),
    );
    assert_eq!(e.code, ErrorCode::InvalidCertificate);
    assert!(e.message.contains("not a CA certificate"), "{}", e.message);
    register_issuer(&mut w, "hohhot", "rsa-root.pem");
    let e = w.sb.run_err(
        &Sandbox::admin_key("baotou"),
        Action::Ca(CaAction::RegisterIssuer {
            certificate: fixture("rsa-root.pem"),
        }),
    );
    assert_eq!(e.code, ErrorCode::AlreadyExists);
    let e = w.sb.run_err(
        &Sandbox::admin_key("baotou"),
        Action::Ca(CaAction::RegisterIssuer {
            certificate: fixture("junk.bin"),
        }),
    );
    assert_eq!(e.code, ErrorCode::InvalidCertificate);
    // Registrars cannot register issuers.
    let e = w.sb.run_err(
        &w.registrar.clone(),
        Action::Ca(CaAction::RegisterIssuer {
            certificate: fixture("p256-root.pem"),
        }),
    );
    assert_eq!(e.code, ErrorCode::Unauthorized);
}

#[test]
fn every_algorithm_chain_registers_with_a_verified_signature() {
    let mut w = world();
    for (root, leaf) in [
        ("rsa-root.pem", "rsa-leaf-sha256.pem"),
        ("p256-root.pem", "p256-leaf.pem"),
        ("ed25519-root.pem", "ed25519-leaf.pem"),
        ("sm2-root.pem", "sm2-bidder.pem"),
    ] {
        register_issuer(&mut w, "hohhot", root);
        let r = w.sb.run(
            &w.registrar.clone(),
            Action::Ca(CaAction::RegisterCertificate {
                certificate: fixture(leaf),
            }),
        );
        let TxStatus::Success(TxOutput::Certificate(fp)) = r.status else {
            panic!("{leaf}: {r:?}")
        };
        assert_eq!(
            ca::certificate(&w.sb.state, &fp).unwrap().signature,
            SignatureCheck::Verified,
            "{leaf}"
        );
    }
    assert_eq!(ca::issuers(&w.sb.state).len(), 4);
}
