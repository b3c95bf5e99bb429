//! CA certification paths on chain (RFC 5280): root → intermediate → leaf, broken paths,
//! recognition at the root, CRLs matched by key, and answers as of a time.
//! Fixtures: tests/fixtures/certs/sm2-path-* and rsa-path-* (made by make.sh there).

use caihong_chaincode::ca::{self, CaAction, Reason, Scope, SignatureCheck};
use caihong_chaincode::members::MemberId;
use caihong_chaincode::members::Role;
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::types::{TimestampMs, parse_date, start_of_day_ms};
use caihong_chaincode::x509::{self, Validity};
use caihong_chaincode::{Action, ErrorCode, Hash, TxError, TxOutput, TxStatus};
use ed25519_dalek::SigningKey;

const MEMBERS: [&str; 4] = ["hohhot", "baotou", "ordos", "yinchuan"];
/// The revocationDate make.sh writes into the intermediates' CRLs: 2026-03-01 00:00:00 UTC.
const CRL_REVOKED_AT: i64 = 1_772_323_200;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/certs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Start of a Beijing calendar day.
fn day(date: &str) -> TimestampMs {
    start_of_day_ms(parse_date(date).unwrap())
}

struct World {
    sb: Sandbox,
    registrar: SigningKey,
}

fn world() -> World {
    let mut sb = Sandbox::new(4);
    sb.time_ms = day("2026-06-01");
    let registrar = sb.operator("hohhot", "reg", &[Role::Registrar]);
    World { sb, registrar }
}

fn try_register_issuer(w: &mut World, member: &str, file: &str) -> Result<Hash, TxError> {
    let action = Action::Ca(CaAction::RegisterIssuer {
        certificate: fixture(file),
    });
    let r = w.sb.run(&Sandbox::admin_key(member), action.clone());
    match r.status {
        TxStatus::Success(TxOutput::Certificate(fp)) => Ok(fp),
        _ => Err(w.sb.run_err(&Sandbox::admin_key(member), action)),
    }
}

fn register_issuer(w: &mut World, member: &str, file: &str) -> Hash {
    try_register_issuer(w, member, file).unwrap_or_else(|e| panic!("register {file}: {e:?}"))
}

fn refused_issuer(w: &mut World, member: &str, file: &str) -> TxError {
    match try_register_issuer(w, member, file) {
        Ok(fp) => panic!("{file} was registered as {fp}"),
        Err(e) => e,
    }
}

fn recognize(w: &mut World, member: &str, issuer: Hash, recognized: bool) -> Result<(), TxError> {
    let action = Action::Ca(CaAction::SetRecognition { issuer, recognized });
    if w.sb
        .run(&Sandbox::admin_key(member), action.clone())
        .is_success()
    {
        Ok(())
    } else {
        Err(w.sb.run_err(&Sandbox::admin_key(member), action))
    }
}

/// Registers `{prefix}-root.pem` (by hohhot) and has every member recognize it.
fn recognized_root(w: &mut World, prefix: &str) -> Hash {
    let root = register_issuer(w, "hohhot", &format!("{prefix}-root.pem"));
    for m in &MEMBERS[1..] {
        recognize(w, m, root, true).unwrap();
    }
    root
}

fn register_certificate(w: &mut World, file: &str) -> Result<Hash, TxError> {
    let action = Action::Ca(CaAction::RegisterCertificate {
        certificate: fixture(file),
    });
    let key = w.registrar.clone();
    match w.sb.run(&key, action.clone()).status {
        TxStatus::Success(TxOutput::Certificate(fp)) => Ok(fp),
        _ => Err(w.sb.run_err(&key, action)),
    }
}

fn import_crl(w: &mut World, file: &str) -> Result<u32, TxError> {
    let action = Action::Ca(CaAction::ImportCrl { crl: fixture(file) });
    let key = w.registrar.clone();
    match w.sb.run(&key, action.clone()).status {
        TxStatus::Success(TxOutput::Revoked { count }) => Ok(count),
        _ => Err(w.sb.run_err(&key, action)),
    }
}

fn verify_at(w: &World, file: &str, scope: Scope, at: TimestampMs) -> ca::Verification {
    ca::verify(&w.sb.state, &fixture(file), scope, at).unwrap()
}

fn verify(w: &World, file: &str) -> ca::Verification {
    verify_at(w, file, Scope::Alliance, w.sb.time_ms)
}

fn fingerprint(file: &str) -> Hash {
    x509::parse_certificate(&fixture(file))
        .unwrap()
        .fingerprint_sha256()
}

#[test]
fn sm2_and_rsa_leaves_verify_through_a_registered_intermediate_and_directly() {
    for prefix in ["sm2-path", "rsa-path"] {
        let mut w = world();
        let root = recognized_root(&mut w, prefix);
        // Another member's admin registers the intermediate: it gains no recognition of its
        // own, it inherits the root's.
        let inter = register_issuer(&mut w, "baotou", &format!("{prefix}-intermediate.pem"));
        let stored = ca::issuer(&w.sb.state, &inter).unwrap();
        assert_eq!(stored.parent, Some(root), "{prefix}");
        assert_eq!(stored.root, root, "{prefix}");
        assert_eq!(ca::issuer(&w.sb.state, &root).unwrap().root, root);
        assert_eq!(ca::recognized_by(&w.sb.state, &inter).len(), 4);

        let leaf = format!("{prefix}-leaf.pem");
        let fp = register_certificate(&mut w, &leaf).unwrap();
        let cert = ca::certificate(&w.sb.state, &fp).unwrap();
        assert_eq!((cert.issuer, cert.root), (inter, root), "{prefix}");
        assert_eq!(cert.signature, SignatureCheck::Verified);

        let v = verify(&w, &leaf);
        assert!(v.recognized, "{prefix}: {:?}", v.reasons);
        assert_eq!((v.issuer, v.root), (Some(inter), Some(root)));
        let path: Vec<Hash> = v.path.iter().map(|p| p.fingerprint).collect();
        assert_eq!(path, vec![fingerprint(&leaf), inter, root], "{prefix}");

        let direct = format!("{prefix}-direct-leaf.pem");
        let v = verify(&w, &direct);
        assert!(v.recognized, "{prefix}: {:?}", v.reasons);
        assert_eq!(v.path.len(), 2);
        assert_eq!(v.issuer, Some(root));
    }
}

#[test]
fn a_leaf_under_an_unregistered_intermediate_is_unknown_until_the_intermediate_is_registered() {
    let mut w = world();
    recognized_root(&mut w, "sm2-path");
    let e = register_certificate(&mut w, "sm2-path-leaf.pem").unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound, "{e:?}");
    let v = verify(&w, "sm2-path-leaf.pem");
    assert!(!v.recognized);
    assert!(
        matches!(&v.reasons[..], [Reason::UnknownIssuer { issuer }] if issuer.contains("中级CA")),
        "{:?}",
        v.reasons
    );
    assert_eq!(v.path.len(), 1);

    register_issuer(&mut w, "hohhot", "sm2-path-intermediate.pem");
    assert!(register_certificate(&mut w, "sm2-path-leaf.pem").is_ok());
    let v = verify(&w, "sm2-path-leaf.pem");
    assert!(v.recognized, "{:?}", v.reasons);
}

#[test]
fn an_intermediate_needs_its_issuer_registered_first() {
    let mut w = world();
    let e = refused_issuer(&mut w, "hohhot", "sm2-path-intermediate.pem");
    assert_eq!(e.code, ErrorCode::NotFound);
    assert!(e.message.contains("register its root"), "{}", e.message);
    // Once the root is there, the same certificate registers.
    register_issuer(&mut w, "hohhot", "sm2-path-root.pem");
    register_issuer(&mut w, "hohhot", "sm2-path-intermediate.pem");
}

#[test]
fn a_forged_intermediate_naming_a_registered_root_is_refused() {
    let mut w = world();
    recognized_root(&mut w, "sm2-path");
    let e = refused_issuer(&mut w, "baotou", "sm2-path-forged-intermediate.pem");
    assert_eq!(e.code, ErrorCode::InvalidCertificate, "{e:?}");
    // It carries no authorityKeyIdentifier: the signature is what gives it away.
    assert!(e.message.contains("does not verify"), "{}", e.message);
    assert!(
        !e.message.contains("authorityKeyIdentifier"),
        "{}",
        e.message
    );
    assert_eq!(ca::issuers(&w.sb.state).len(), 1);
}

#[test]
fn path_len_constraint_zero_refuses_a_second_intermediate() {
    let mut w = world();
    recognized_root(&mut w, "sm2-path");
    let limited = register_issuer(&mut w, "hohhot", "sm2-path-pathlen0-intermediate.pem");
    let e = refused_issuer(&mut w, "hohhot", "sm2-path-pathlen-sub-intermediate.pem");
    assert_eq!(e.code, ErrorCode::InvalidCertificate, "{e:?}");
    assert!(e.message.contains("pathLenConstraint"), "{}", e.message);
    assert!(e.message.contains(&limited.to_string()), "{}", e.message);
    let v = verify(&w, "sm2-path-pathlen-leaf.pem");
    assert!(
        matches!(&v.reasons[..], [Reason::UnknownIssuer { .. }]),
        "{:?}",
        v.reasons
    );
    // The pathLen-0 intermediate itself may issue leaves.
    assert_eq!(
        ca::issuer(&w.sb.state, &limited).unwrap().parent,
        Some(fingerprint("sm2-path-root.pem"))
    );
}

#[test]
fn a_certificate_without_ca_true_cannot_be_an_issuer() {
    let mut w = world();
    recognized_root(&mut w, "sm2-path");
    let e = refused_issuer(&mut w, "hohhot", "sm2-path-not-ca-intermediate.pem");
    assert_eq!(e.code, ErrorCode::InvalidCertificate);
    assert!(e.message.contains("not a CA certificate"), "{}", e.message);
    let e = register_certificate(&mut w, "sm2-path-not-ca-leaf.pem").unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound, "{e:?}");
    let v = verify(&w, "sm2-path-not-ca-leaf.pem");
    assert!(
        matches!(&v.reasons[..], [Reason::UnknownIssuer { .. }]),
        "{:?}",
        v.reasons
    );
}

#[test]
fn an_expired_intermediate_fails_its_still_valid_leaf_after_its_expiry_only() {
    let mut w = world();
    recognized_root(&mut w, "sm2-path");
    let short = register_issuer(&mut w, "hohhot", "sm2-path-short-intermediate.pem");
    let v = verify_at(
        &w,
        "sm2-path-short-leaf.pem",
        Scope::Alliance,
        day("2025-06-01"),
    );
    assert!(v.recognized, "{:?}", v.reasons);
    let v = verify_at(
        &w,
        "sm2-path-short-leaf.pem",
        Scope::Alliance,
        day("2026-06-01"),
    );
    match &v.reasons[..] {
        [
            Reason::CaNotValid {
                fingerprint,
                validity: Validity::Expired,
                not_after,
                ..
            },
        ] => {
            assert_eq!(*fingerprint, short);
            assert_eq!(*not_after, 1_767_225_600); // 2026-01-01 00:00:00 UTC
        }
        other => panic!("{other:?}"),
    }
    // Before the intermediate's validity began (and the leaf's), both are reported.
    let v = verify_at(
        &w,
        "sm2-path-short-leaf.pem",
        Scope::Alliance,
        day("2024-06-01"),
    );
    assert!(
        v.reasons.iter().any(|r| matches!(
            r,
            Reason::CaNotValid {
                validity: Validity::NotYetValid,
                ..
            }
        )) && v
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::NotYetValid { .. })),
        "{:?}",
        v.reasons
    );
}

#[test]
fn withdrawing_recognition_of_the_root_withdraws_leaves_under_its_intermediates() {
    let mut w = world();
    let root = recognized_root(&mut w, "rsa-path");
    let inter = register_issuer(&mut w, "hohhot", "rsa-path-intermediate.pem");
    assert!(verify(&w, "rsa-path-leaf.pem").recognized);
    // Recognition is of a root.
    let e = recognize(&mut w, "ordos", inter, false).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains(&root.to_string()), "{}", e.message);

    recognize(&mut w, "ordos", root, false).unwrap();
    let ordos = MemberId::parse("ordos").unwrap();
    let v = verify(&w, "rsa-path-leaf.pem");
    match &v.reasons[..] {
        [
            Reason::IssuerNotAllianceRecognized {
                not_recognized_by, ..
            },
        ] => assert_eq!(not_recognized_by, &vec![ordos.clone()]),
        other => panic!("{other:?}"),
    }
    let v = verify_at(&w, "rsa-path-leaf.pem", Scope::Member(ordos), w.sb.time_ms);
    assert!(matches!(
        &v.reasons[..],
        [Reason::IssuerNotRecognized { .. }]
    ));
    let v = verify_at(
        &w,
        "rsa-path-leaf.pem",
        Scope::Member(MemberId::parse("baotou").unwrap()),
        w.sb.time_ms,
    );
    assert!(v.recognized, "{:?}", v.reasons);
}

#[test]
fn an_intermediate_crl_revokes_its_leaf_from_the_revocation_date() {
    for prefix in ["sm2-path", "rsa-path"] {
        let mut w = world();
        recognized_root(&mut w, prefix);
        let inter = register_issuer(&mut w, "hohhot", &format!("{prefix}-intermediate.pem"));
        let revoked_leaf = format!("{prefix}-revoked-leaf.pem");
        assert!(verify(&w, &revoked_leaf).recognized);

        let crl = format!("{prefix}-intermediate.crl.pem");
        assert_eq!(import_crl(&mut w, &crl), Ok(1), "{prefix}");
        let serial = x509::parse_certificate(&fixture(&revoked_leaf))
            .unwrap()
            .serial_hex()
            .to_string();
        let stored = ca::revocation(&w.sb.state, &inter, &serial).unwrap();
        assert_eq!(stored.revoked_at, CRL_REVOKED_AT);

        let after = (CRL_REVOKED_AT as u64) * 1000;
        let v = verify_at(&w, &revoked_leaf, Scope::Alliance, after);
        assert_eq!(
            v.reasons,
            vec![Reason::Revoked {
                reason: "keyCompromise".into(),
                revoked_at: CRL_REVOKED_AT
            }],
            "{prefix}"
        );
        // One second before the revocationDate it was still good; the answer says it is
        // revoked later.
        let v = verify_at(&w, &revoked_leaf, Scope::Alliance, after - 1000);
        assert!(v.recognized, "{prefix}: {:?}", v.reasons);
        assert!(
            v.notes.iter().any(|n| n.contains("after the time asked")),
            "{:?}",
            v.notes
        );
        // The CRL revokes only its serial.
        assert!(verify(&w, &format!("{prefix}-leaf.pem")).recognized);
        assert_eq!(import_crl(&mut w, &crl), Ok(0));
    }
}

#[test]
fn revoking_an_intermediate_by_serial_fails_its_leaves_from_the_block_time() {
    let mut w = world();
    let root = recognized_root(&mut w, "sm2-path");
    register_issuer(&mut w, "hohhot", "sm2-path-intermediate.pem");
    let serial = x509::parse_certificate(&fixture("sm2-path-intermediate.pem"))
        .unwrap()
        .serial_hex()
        .to_string();
    let r = w.sb.run(
        &w.registrar.clone(),
        Action::Ca(CaAction::RevokeCertificate {
            issuer: root,
            serial_hex: serial,
            reason: "中级CA密钥泄露".into(),
        }),
    );
    assert!(r.is_success(), "{r:?}");
    let v = verify_at(&w, "sm2-path-leaf.pem", Scope::Alliance, day("2026-07-01"));
    assert!(
        matches!(&v.reasons[..], [Reason::CaRevoked { subject, .. }] if subject.contains("中级CA")),
        "{:?}",
        v.reasons
    );
    let v = verify_at(&w, "sm2-path-leaf.pem", Scope::Alliance, day("2026-05-01"));
    assert!(v.recognized, "{:?}", v.reasons);
    // A leaf issued directly by the root is untouched.
    assert!(
        verify_at(
            &w,
            "sm2-path-direct-leaf.pem",
            Scope::Alliance,
            day("2026-07-01")
        )
        .recognized
    );
}

#[test]
fn a_same_name_impostor_registered_first_stops_neither_the_genuine_path_nor_its_crl() {
    let mut w = world();
    // A self-signed CA carrying exactly the genuine intermediate's name, another key, recognized
    // by everyone.
    let impostor = register_issuer(&mut w, "hohhot", "sm2-path-impostor-ca.pem");
    for m in &MEMBERS[1..] {
        recognize(&mut w, m, impostor, true).unwrap();
    }
    let v = verify(&w, "sm2-path-leaf.pem");
    assert!(
        matches!(&v.reasons[..], [Reason::UnknownIssuer { .. }]),
        "the impostor's key did not sign this leaf: {:?}",
        v.reasons
    );
    let e = import_crl(&mut w, "sm2-path-intermediate.crl.pem").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidCertificate, "{e:?}");
    assert!(e.message.contains(&impostor.to_string()), "{}", e.message);

    recognized_root(&mut w, "sm2-path");
    let genuine = register_issuer(&mut w, "hohhot", "sm2-path-intermediate.pem");
    assert_ne!(genuine, impostor);
    assert_eq!(import_crl(&mut w, "sm2-path-intermediate.crl.pem"), Ok(1));
    let serial = x509::parse_certificate(&fixture("sm2-path-revoked-leaf.pem"))
        .unwrap()
        .serial_hex()
        .to_string();
    assert!(ca::revocation(&w.sb.state, &genuine, &serial).is_some());
    assert!(ca::revocation(&w.sb.state, &impostor, &serial).is_none());

    let v = verify(&w, "sm2-path-leaf.pem");
    assert!(v.recognized, "{:?}", v.reasons);
    assert_eq!(v.issuer, Some(genuine));
    let fp = register_certificate(&mut w, "sm2-path-leaf.pem").unwrap();
    assert_eq!(ca::certificate(&w.sb.state, &fp).unwrap().issuer, genuine);
    assert!(matches!(
        &verify(&w, "sm2-path-revoked-leaf.pem").reasons[..],
        [Reason::Revoked { .. }]
    ));
}
