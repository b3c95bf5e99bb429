//! An operator inspects a bidder's SM2 certificate, and mistakes a key or junk for one.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../chaincode/tests/fixtures/certs")
        .join(name)
}

fn caihong(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caihong"))
        .args(args)
        .output()
        .expect("run caihong")
}

#[test]
fn json_for_the_sm2_bidder_certificate() {
    let path = fixture("sm2-bidder.pem");
    let out = caihong(&["cert", "inspect", path.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(
        v["subject"],
        "CN=张三,organizationIdentifier=NTRCN-91150100MA0N12340B,O=内蒙古彩虹建设有限公司,L=呼和浩特市,ST=内蒙古自治区,C=CN"
    );
    assert_eq!(v["issuer"], "CN=彩虹测试SM2根CA,O=彩虹联盟测试,C=CN");
    assert_eq!(v["serial"], "5a1001");
    assert_eq!(v["not_before"], "2025-01-01T00:00:00Z");
    assert_eq!(v["not_after"], "2035-01-01T00:00:00Z");
    assert_eq!(v["signature_algorithm"], "SM2-with-SM3");
    assert_eq!(v["signature_algorithm_oid"], "1.2.156.10197.1.501");
    assert_eq!(v["public_key_algorithm"], "SM2");
    assert_eq!(v["is_ca"], false);
    assert_eq!(v["uscc"], "91150100MA0N12340B");
    assert_eq!(v["uscc_source"], "organizationIdentifier");
    assert_eq!(v["self_signature"], serde_json::Value::Null);

    // The fingerprint is SHA-256 of the DER form, which is committed beside the PEM.
    let der = std::fs::read(fixture("sm2-bidder.der")).unwrap();
    let expected = caihong_chaincode::Hash::of(&der).to_hex();
    assert_eq!(v["fingerprint_sha256"], expected.as_str());
    assert_eq!(expected.len(), 64);
}

#[test]
fn json_uscc_is_null_when_the_subject_has_none() {
    let path = fixture("p256-no-uscc.pem");
    let out = caihong(&["cert", "inspect", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["uscc"].is_null(), "{v}");
    assert_eq!(v["public_key_algorithm"], "EC P-256");
}

#[test]
fn text_for_a_root_shows_its_self_signature_checked() {
    let path = fixture("sm2-root.pem");
    let out = caihong(&["cert", "inspect", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "Subject:     CN=彩虹测试SM2根CA,O=彩虹联盟测试,C=CN",
        "Serial:      5a01",
        "Validity:    2025-01-01T00:00:00Z to 2045-01-01T00:00:00Z",
        "Public key:  SM2",
        "Signature:   SM2-with-SM3 (1.2.156.10197.1.501)",
        "CA:          yes",
        "USCC:        none found in the subject",
        "Self-signed: valid",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn junk_and_keys_are_refused_with_exit_code_2() {
    for (name, says) in [
        ("junk.bin", "not PEM or DER"),
        ("p256-pubkey.pem", "PUBLIC KEY"),
        ("p256-pubkey.der", "not an X.509 certificate"),
    ] {
        let path = fixture(name);
        let out = caihong(&["cert", "inspect", path.to_str().unwrap(), "--json"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(says),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_missing_file_is_exit_code_2() {
    let out = caihong(&["cert", "inspect", "/nonexistent/caihong-cert.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
