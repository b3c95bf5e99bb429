//! Certificates and CRLs made by OpenSSL 3 (see tests/fixtures/certs/make.sh): what a member
//! submits when registering an issuer, a bidder's certificate or a CRL.

use caihong_chaincode::Hash;
use caihong_chaincode::uscc::build;
use caihong_chaincode::x509::{
    CertError, Certificate, PublicKeyAlgorithm, RevocationReason, SignatureAlgorithm, UsccSource,
    Validity, parse_certificate, parse_crl,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/certs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cert(name: &str) -> Certificate {
    parse_certificate(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// 2030-01-01T00:00:00Z, inside every fixture's validity except the expired one.
const IN_2030: i64 = 1_893_456_000;
/// 2025-01-01T00:00:00Z and 2035-01-01T00:00:00Z, the leaves' validity.
const START_2025: i64 = 1_735_689_600;
const END_2035: i64 = 2_051_222_400;

const ALL_CERTS: &[&str] = &[
    "sm2-root.pem",
    "sm2-bidder.pem",
    "sm2-bidder.der",
    "sm2-bidder-tampered.der",
    "sm2-revoked.pem",
    "rsa-root.pem",
    "rsa-leaf-sha256.pem",
    "rsa-leaf-sha384.pem",
    "rsa-leaf-sha512.pem",
    "rsa-expired.pem",
    "p256-root.pem",
    "p256-leaf.pem",
    "p256-no-uscc.pem",
    "ed25519-root.pem",
    "ed25519-leaf.pem",
    "p384-root.pem",
    "rsa-impostor-root.pem",
];

#[test]
fn every_certificate_fixture_parses_with_its_fingerprint() {
    for name in ALL_CERTS {
        let c = cert(name);
        assert_eq!(c.version(), 3, "{name}");
        assert_eq!(c.fingerprint_sha256(), Hash::of(c.der()), "{name}");
        assert!(!c.subject().is_empty() && !c.issuer().is_empty(), "{name}");
        assert!(c.not_before() < c.not_after(), "{name}");
    }
}

#[test]
fn sm2_bidder_certificate_reads_like_openssl_shows_it() {
    let c = cert("sm2-bidder.pem");
    assert_eq!(c.serial_hex(), "5a1001");
    assert_eq!(
        c.subject().to_string(),
        "CN=张三,organizationIdentifier=NTRCN-91150100MA0N12340B,O=内蒙古彩虹建设有限公司,L=呼和浩特市,ST=内蒙古自治区,C=CN"
    );
    assert_eq!(
        c.issuer().to_string(),
        "CN=彩虹测试SM2根CA,O=彩虹联盟测试,C=CN"
    );
    assert_eq!(c.subject().common_name(), Some("张三"));
    assert_eq!((c.not_before(), c.not_after()), (START_2025, END_2035));
    assert_eq!(c.signature_algorithm(), &SignatureAlgorithm::Sm2Sm3);
    assert_eq!(c.signature_algorithm().name(), "SM2-with-SM3");
    assert_eq!(c.signature_algorithm().oid(), "1.2.156.10197.1.501");
    assert_eq!(c.public_key_algorithm(), &PublicKeyAlgorithm::Sm2);
    assert!(!c.is_ca());
    assert!(!c.is_self_issued());
    assert_eq!(c.uscc(), Some(&build("91150100", "MA0N1234").unwrap()));
    assert_eq!(c.uscc_source(), Some(UsccSource::OrganizationIdentifier));

    let root = cert("sm2-root.pem");
    assert!(root.is_ca());
    assert!(root.is_self_issued());
    assert_eq!(root.uscc(), None);
}

#[test]
fn pem_and_der_of_one_certificate_are_the_same_certificate() {
    let pem = cert("sm2-bidder.pem");
    let der = cert("sm2-bidder.der");
    assert_eq!(pem, der);
    assert_eq!(pem.der(), fixture("sm2-bidder.der").as_slice());
}

#[test]
fn pem_with_text_around_and_a_key_first_still_finds_the_certificate() {
    let mut input = b"Bag Attributes: friendlyName: bidder\n".to_vec();
    input.extend_from_slice(&fixture("p256-pubkey.pem"));
    input.extend_from_slice(&fixture("rsa-leaf-sha256.pem"));
    input.extend_from_slice(&fixture("rsa-root.pem"));
    let c = parse_certificate(&input).unwrap();
    assert_eq!(
        c,
        cert("rsa-leaf-sha256.pem"),
        "first CERTIFICATE block wins"
    );
}

#[test]
fn uscc_is_found_in_each_subject_location() {
    let cases = [
        (
            "sm2-bidder.pem",
            ("91150100", "MA0N1234"),
            UsccSource::OrganizationIdentifier,
        ),
        (
            "sm2-revoked.pem",
            ("91110105", "MA01AB2C"),
            UsccSource::CommonName,
        ), // CN=USCC:…
        (
            "rsa-leaf-sha256.pem",
            ("91110105", "MA01AB2C"),
            UsccSource::CommonName,
        ), // bare code
        (
            "rsa-leaf-sha384.pem",
            ("91320500", "7324856A"),
            UsccSource::SerialNumber,
        ),
        (
            "rsa-leaf-sha512.pem",
            ("91440300", "MA5F3C7D"),
            UsccSource::OrganizationalUnit,
        ),
        (
            "p256-leaf.pem",
            ("91330100", "MA27XY4K"),
            UsccSource::SerialNumber,
        ), // VATCN-…
        (
            "ed25519-leaf.pem",
            ("12150000", "01145678"),
            UsccSource::Organization,
        ), // 某某（…）
    ];
    for (name, (prefix, body), source) in cases {
        let c = cert(name);
        assert_eq!(c.uscc(), Some(&build(prefix, body).unwrap()), "{name}");
        assert_eq!(c.uscc_source(), Some(source), "{name}");
    }
}

#[test]
fn a_code_shaped_value_that_fails_the_checks_is_not_a_uscc() {
    let c = cert("p256-no-uscc.pem");
    assert_eq!(c.subject().values("OU").next(), Some("911501001234567890"));
    assert_eq!(c.uscc(), None);
    assert_eq!(c.uscc_source(), None);
}

#[test]
fn good_chains_verify_for_all_four_algorithms() {
    let chains = [
        (
            "sm2-root.pem",
            "sm2-bidder.pem",
            SignatureAlgorithm::Sm2Sm3,
            PublicKeyAlgorithm::Sm2,
        ),
        (
            "sm2-root.pem",
            "sm2-revoked.pem",
            SignatureAlgorithm::Sm2Sm3,
            PublicKeyAlgorithm::Sm2,
        ),
        (
            "rsa-root.pem",
            "rsa-leaf-sha256.pem",
            SignatureAlgorithm::RsaPkcs1Sha256,
            PublicKeyAlgorithm::Rsa { bits: 2048 },
        ),
        (
            "rsa-root.pem",
            "rsa-leaf-sha384.pem",
            SignatureAlgorithm::RsaPkcs1Sha384,
            PublicKeyAlgorithm::Rsa { bits: 2048 },
        ),
        (
            "rsa-root.pem",
            "rsa-leaf-sha512.pem",
            SignatureAlgorithm::RsaPkcs1Sha512,
            PublicKeyAlgorithm::Rsa { bits: 2048 },
        ),
        (
            "p256-root.pem",
            "p256-leaf.pem",
            SignatureAlgorithm::EcdsaSha256,
            PublicKeyAlgorithm::EcP256,
        ),
        (
            "ed25519-root.pem",
            "ed25519-leaf.pem",
            SignatureAlgorithm::Ed25519,
            PublicKeyAlgorithm::Ed25519,
        ),
    ];
    for (root_name, leaf_name, sig_alg, key_alg) in chains {
        let root = cert(root_name);
        let leaf = cert(leaf_name);
        assert_eq!(leaf.signature_algorithm(), &sig_alg, "{leaf_name}");
        assert_eq!(root.public_key_algorithm(), &key_alg, "{root_name}");
        assert_eq!(
            root.verify_signed_by(&root),
            Ok(()),
            "{root_name} self-signed"
        );
        assert_eq!(
            leaf.verify_signed_by(&root),
            Ok(()),
            "{leaf_name} by {root_name}"
        );
    }
}

#[test]
fn tampered_certificate_is_rejected_with_bad_signature() {
    let root = cert("sm2-root.pem");
    let good = cert("sm2-bidder.der");
    let tampered = cert("sm2-bidder-tampered.der");
    assert_eq!(tampered.subject().common_name(), Some("张四"));
    assert_ne!(tampered.fingerprint_sha256(), good.fingerprint_sha256());
    let err = tampered.verify_signed_by(&root).unwrap_err();
    assert!(matches!(err, CertError::BadSignature { .. }), "{err:?}");
}

#[test]
fn a_flipped_signature_byte_fails_for_every_algorithm() {
    for (root_name, leaf_name) in [
        ("rsa-root.pem", "rsa-leaf-sha256.pem"),
        ("p256-root.pem", "p256-leaf.pem"),
        ("ed25519-root.pem", "ed25519-leaf.pem"),
        ("sm2-root.pem", "sm2-bidder.pem"),
    ] {
        let root = cert(root_name);
        let mut der = cert(leaf_name).der().to_vec();
        // The signature is at the end of the DER; flip a bit a few bytes before the end
        // (inside s for ECDSA/SM2, inside the value for RSA and Ed25519).
        let i = der.len() - 3;
        der[i] ^= 0x01;
        let bad = parse_certificate(&der).unwrap();
        let err = bad.verify_signed_by(&root).unwrap_err();
        assert!(
            matches!(err, CertError::BadSignature { .. }),
            "{leaf_name}: {err:?}"
        );
    }
}

#[test]
fn wrong_issuer_is_a_mismatch_not_a_bad_signature() {
    let leaf = cert("sm2-bidder.pem");
    let err = leaf.verify_signed_by(&cert("rsa-root.pem")).unwrap_err();
    assert_eq!(
        err,
        CertError::IssuerMismatch {
            expected: "CN=彩虹测试SM2根CA,O=彩虹联盟测试,C=CN".into(),
            found: "CN=彩虹测试RSA根CA,O=彩虹联盟测试,C=CN".into(),
        }
    );
}

#[test]
fn validity_at_given_times() {
    let c = cert("sm2-bidder.pem");
    assert_eq!(c.validity_at(START_2025 - 1), Validity::NotYetValid);
    assert_eq!(c.validity_at(START_2025), Validity::Valid);
    assert_eq!(c.validity_at(IN_2030), Validity::Valid);
    assert_eq!(c.validity_at(END_2035), Validity::Valid);
    assert_eq!(c.validity_at(END_2035 + 1), Validity::Expired);

    let expired = cert("rsa-expired.pem");
    // 2015-01-01 to 2016-01-01.
    assert_eq!(
        (expired.not_before(), expired.not_after()),
        (1_420_070_400, 1_451_606_400)
    );
    assert_eq!(expired.validity_at(IN_2030), Validity::Expired);
    // An expired certificate's signature is still a good signature.
    assert_eq!(expired.verify_signed_by(&cert("rsa-root.pem")), Ok(()));
}

#[test]
fn sm2_crl_lists_the_revoked_serial_and_verifies() {
    let root = cert("sm2-root.pem");
    let revoked_cert = cert("sm2-revoked.pem");
    for name in ["sm2-root.crl.pem", "sm2-root.crl.der"] {
        let crl = parse_crl(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(crl.issuer(), root.subject(), "{name}");
        assert_eq!(crl.signature_algorithm(), &SignatureAlgorithm::Sm2Sm3);
        // 2026-01-01 and 2036-01-01 (openssl ca -crl_lastupdate / -crl_nextupdate).
        assert_eq!(crl.this_update(), 1_767_225_600);
        assert_eq!(crl.next_update(), Some(2_082_758_400));
        assert_eq!(crl.crl_number_hex(), Some("01"));
        assert_eq!(crl.revoked().len(), 1);
        let entry = crl
            .find(revoked_cert.serial_hex())
            .expect("revoked serial listed");
        assert_eq!(entry.serial_hex, "5a1002");
        assert_eq!(entry.reason, Some(RevocationReason::KeyCompromise));
        assert!(entry.revocation_time > START_2025);
        assert!(crl.find(cert("sm2-bidder.pem").serial_hex()).is_none());
        assert_eq!(crl.verify_signed_by(&root), Ok(()));

        let err = crl.verify_signed_by(&cert("rsa-root.pem")).unwrap_err();
        assert!(matches!(err, CertError::IssuerMismatch { .. }), "{err:?}");
    }
}

#[test]
fn tampered_crl_is_rejected() {
    let root = cert("sm2-root.pem");
    let mut der = fixture("sm2-root.crl.der");
    // Revise the revoked serial 5a1002 -> 5a1003 inside the signed part.
    let at = der
        .windows(3)
        .position(|w| w == [0x5a, 0x10, 0x02])
        .expect("serial bytes present");
    der[at + 2] = 0x03;
    let crl = parse_crl(&der).unwrap();
    assert!(crl.find("5a1003").is_some());
    let err = crl.verify_signed_by(&root).unwrap_err();
    assert!(matches!(err, CertError::BadSignature { .. }), "{err:?}");
}

#[test]
fn non_certificates_get_errors_that_say_what_they_are() {
    let e = parse_certificate(&fixture("junk.bin")).unwrap_err();
    assert!(matches!(e, CertError::NotPemOrDer { .. }), "{e:?}");

    let e = parse_certificate(&fixture("p256-pubkey.pem")).unwrap_err();
    assert_eq!(
        e,
        CertError::NoPemBlock {
            expected: "CERTIFICATE",
            found: vec!["PUBLIC KEY".into()]
        }
    );

    let e = parse_certificate(&fixture("p256-pubkey.der")).unwrap_err();
    assert!(matches!(e, CertError::NotACertificate { .. }), "{e:?}");

    // A CRL is not a certificate and a certificate is not a CRL.
    let e = parse_certificate(&fixture("sm2-root.crl.der")).unwrap_err();
    assert!(matches!(e, CertError::NotACertificate { .. }), "{e:?}");
    let e = parse_crl(&fixture("sm2-root.pem")).unwrap_err();
    assert!(
        matches!(
            e,
            CertError::NoPemBlock {
                expected: "X509 CRL",
                ..
            }
        ),
        "{e:?}"
    );
    let e = parse_crl(&fixture("sm2-bidder.der")).unwrap_err();
    assert!(matches!(e, CertError::NotACrl { .. }), "{e:?}");

    // Trailing garbage after a DER certificate.
    let mut der = fixture("sm2-bidder.der");
    der.push(0);
    let e = parse_certificate(&der).unwrap_err();
    assert!(matches!(e, CertError::Malformed { .. }), "{e:?}");
}

#[test]
fn every_truncation_of_real_fixtures_fails_cleanly() {
    for name in ["sm2-bidder.der", "sm2-root.crl.der"] {
        let der = fixture(name);
        for len in 0..der.len() {
            assert!(parse_certificate(&der[..len]).is_err(), "{name}[..{len}]");
            assert!(parse_crl(&der[..len]).is_err(), "{name}[..{len}]");
        }
    }
}

#[test]
fn every_single_byte_corruption_is_an_error_or_fails_verification() {
    // The DER is the signed part, the signature, and an envelope that must be strict DER with
    // the algorithm repeated exactly: no corrupted byte may go unnoticed (which would give the
    // same signed certificate a second fingerprint), and nothing may panic.
    for (root_name, leaf_name) in [
        ("sm2-root.pem", "sm2-bidder.der"),
        ("rsa-root.pem", "rsa-leaf-sha256.pem"),
        ("p256-root.pem", "p256-leaf.pem"),
        ("ed25519-root.pem", "ed25519-leaf.pem"),
    ] {
        let root = cert(root_name);
        let der = cert(leaf_name).der().to_vec();
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0x80;
            if let Ok(c) = parse_certificate(&bad) {
                assert!(
                    c.verify_signed_by(&root).is_err(),
                    "{leaf_name}: byte {i} flipped and still verified"
                );
            }
        }
    }
    let root = cert("sm2-root.pem");
    let der = fixture("sm2-root.crl.der");
    for i in 0..der.len() {
        let mut bad = der.clone();
        bad[i] ^= 0x80;
        if let Ok(crl) = parse_crl(&bad) {
            assert!(
                crl.verify_signed_by(&root).is_err(),
                "CRL byte {i} flipped and still verified"
            );
        }
    }
}

#[test]
fn unsupported_algorithm_is_not_checked_rather_than_bad() {
    let p384 = cert("p384-root.pem");
    assert_eq!(p384.signature_algorithm(), &SignatureAlgorithm::EcdsaSha384);
    assert_eq!(p384.public_key_algorithm(), &PublicKeyAlgorithm::EcP384);
    let err = p384.verify_signed_by(&p384).unwrap_err();
    assert!(
        matches!(err, CertError::UnsupportedAlgorithm { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("signature not checked: algorithm ecdsa-with-SHA384"),
        "{err}"
    );
}

#[test]
fn an_impostor_root_with_the_right_name_but_another_key_type_is_a_key_mismatch() {
    let impostor = cert("rsa-impostor-root.pem");
    let real = cert("rsa-root.pem");
    assert_eq!(impostor.subject(), real.subject());
    assert_ne!(impostor.fingerprint_sha256(), real.fingerprint_sha256());
    let err = cert("rsa-leaf-sha256.pem")
        .verify_signed_by(&impostor)
        .unwrap_err();
    assert_eq!(
        err,
        CertError::KeyAlgorithmMismatch {
            signature_algorithm: "sha256WithRSAEncryption".into(),
            public_key_algorithm: "EC P-256".into(),
        }
    );
}

#[test]
fn path_extensions_basic_constraints_key_usage_and_key_identifiers() {
    let root = cert("sm2-path-root.pem");
    let inter = cert("sm2-path-intermediate.pem");
    let leaf = cert("sm2-path-leaf.pem");
    assert!(inter.is_ca() && inter.path_len_constraint().is_none());
    assert_eq!(
        cert("sm2-path-pathlen0-intermediate.pem").path_len_constraint(),
        Some(0)
    );
    let ku = inter.key_usage().unwrap();
    assert!(ku.key_cert_sign && ku.crl_sign && !ku.digital_signature);
    assert!(inter.may_sign_certificates() && inter.may_sign_crls());
    let leaf_ku = leaf.key_usage().unwrap();
    assert!(leaf_ku.digital_signature && leaf_ku.non_repudiation && !leaf_ku.key_cert_sign);
    assert!(!leaf.is_ca() && !leaf.may_sign_certificates());
    // CA:FALSE with keyCertSign: not a CA whatever its keyUsage says.
    let not_ca = cert("sm2-path-not-ca-intermediate.pem");
    assert!(!not_ca.is_ca() && not_ca.path_len_constraint().is_none());

    // Key identifiers link each certificate to its issuer's key.
    assert_eq!(inter.authority_key_id(), root.subject_key_id());
    assert_eq!(leaf.authority_key_id(), inter.subject_key_id());
    assert!(leaf.key_id_matches(&inter));
    let impostor = cert("sm2-path-impostor-ca.pem");
    assert_eq!(impostor.subject(), inter.subject());
    assert!(!leaf.key_id_matches(&impostor));
    let crl = parse_crl(&fixture("sm2-path-intermediate.crl.pem")).unwrap();
    assert_eq!(crl.authority_key_id(), inter.subject_key_id());
    assert!(crl.key_id_matches(&inter) && !crl.key_id_matches(&impostor));
    // The forged intermediate has no authorityKeyIdentifier: nothing rules a key out by id.
    let forged = cert("sm2-path-forged-intermediate.pem");
    assert!(forged.authority_key_id().is_none() && forged.key_id_matches(&root));
    assert!(matches!(
        forged.verify_signed_by(&root),
        Err(CertError::BadSignature { .. })
    ));
    assert_eq!(inter.verify_signed_by(&root), Ok(()));
    assert_eq!(leaf.verify_signed_by(&inter), Ok(()));
}
