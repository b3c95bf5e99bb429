//! Signed transactions: encoding, signatures, nonces and the envelope checks
//! every action goes through.

use caihong_chaincode::codec::DecodeError;
use caihong_chaincode::members::{OperatorAction, Role};
use caihong_chaincode::sandbox::{Sandbox, key, public};
use caihong_chaincode::tx::TxCheckError;
use caihong_chaincode::{Action, ErrorCode, SignedTransaction, Transaction, TxStatus, exec};

fn register(label: &str, roles: &[Role]) -> Action {
    Action::Operator(OperatorAction::Register {
        key: public(&key(label)),
        name: label.into(),
        roles: roles.iter().copied().collect(),
    })
}

fn signed(chain: &str, nonce: u64, action: Action) -> SignedTransaction {
    let admin = Sandbox::admin_key("hohhot");
    Transaction {
        chain_id: chain.into(),
        signer: public(&admin),
        nonce,
        action,
    }
    .sign(&admin)
}

#[test]
fn encoding_round_trips_and_rejects_trailing_bytes() {
    let tx = signed("c", 0, register("op", &[Role::Registrar]));
    let bytes = tx.encode();
    assert_eq!(SignedTransaction::decode(&bytes).unwrap(), tx);
    let mut longer = bytes.clone();
    longer.push(7);
    assert_eq!(
        SignedTransaction::decode(&longer),
        Err(DecodeError::TrailingBytes(1))
    );
    assert!(SignedTransaction::decode(&bytes[..bytes.len() - 3]).is_err());
}

#[test]
fn unknown_action_variant_is_rejected() {
    let tx = signed("c", 0, register("op", &[Role::Registrar]));
    let mut bytes = tx.encode();
    // Layout: chain id (8-byte length + bytes), signer (32), nonce (8), action tag (4).
    let tag_at = 8 + 1 + 32 + 8;
    bytes[tag_at] = 200;
    assert!(matches!(
        SignedTransaction::decode(&bytes),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn oversize_input_is_rejected_before_parsing() {
    let bytes = vec![0u8; 5 * 1024 * 1024];
    assert!(matches!(
        SignedTransaction::decode(&bytes),
        Err(DecodeError::TooLarge(_))
    ));
}

#[test]
fn signature_covers_every_field_and_the_chain() {
    let tx = signed("c", 0, register("op", &[Role::Registrar]));
    assert!(tx.clone().verify("c").is_ok());
    assert!(matches!(
        tx.clone().verify("other"),
        Err(TxCheckError::WrongChain { .. })
    ));
    let mut tampered = tx.clone();
    tampered.tx.nonce = 1;
    assert!(matches!(
        tampered.verify("c"),
        Err(TxCheckError::BadSignature(_))
    ));
    let mut other_signer = tx;
    other_signer.tx.signer = public(&key("someone"));
    assert!(matches!(
        other_signer.verify("c"),
        Err(TxCheckError::BadSignature(_))
    ));
}

#[test]
fn hash_is_deterministic_and_distinguishes_transactions() {
    let a = signed("c", 0, register("op", &[Role::Registrar]));
    let b = signed("c", 1, register("op", &[Role::Registrar]));
    assert_eq!(a.hash(), a.clone().hash());
    assert_ne!(a.hash(), b.hash());
}

#[test]
fn nonces_must_be_sequential_and_a_failure_consumes_one() {
    let mut sb = Sandbox::new(4);
    let admin = Sandbox::admin_key("hohhot");
    let signer = public(&admin);
    assert_eq!(exec::next_nonce(&sb.state, &signer), 0);
    // A failing action (admin role cannot be granted) still uses nonce 0.
    let e = sb.run_err(&admin, register("x", &[Role::Admin]));
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert_eq!(exec::next_nonce(&sb.state, &signer), 1);
    // Replaying nonce 0 fails and does not move the nonce.
    let replay = Transaction {
        chain_id: sb.chain_id.clone(),
        signer,
        nonce: 0,
        action: register("y", &[Role::Registrar]),
    }
    .sign(&admin)
    .verify(&sb.chain_id)
    .unwrap();
    let r = sb.block(&[replay]).remove(0);
    match r.status {
        TxStatus::Failed(e) => {
            assert_eq!(e.code, ErrorCode::BadNonce);
            assert!(e.message.contains("next nonce 1"), "{}", e.message);
        }
        s => panic!("replay accepted: {s:?}"),
    }
    assert_eq!(exec::next_nonce(&sb.state, &signer), 1);
}

#[test]
fn unknown_signers_are_refused_without_touching_state() {
    let mut sb = Sandbox::new(4);
    let stranger = key("stranger");
    let before = sb.state.clone();
    let e = sb.run_err(&stranger, register("z", &[Role::Registrar]));
    assert_eq!(e.code, ErrorCode::UnknownSigner);
    assert_eq!(sb.state, before);
}

#[test]
fn operators_act_only_within_their_roles() {
    let mut sb = Sandbox::new(4);
    let registrar = sb.operator("hohhot", "reg", &[Role::Registrar]);
    // A registrar cannot register operators.
    let e = sb.run_err(&registrar, register("other", &[Role::Credit]));
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert!(e.message.contains("admin (管理员)"), "{}", e.message);
    // An admin of another member cannot change hohhot's operator.
    let e = sb.run_err(
        &Sandbox::admin_key("baotou"),
        Action::Operator(OperatorAction::Deactivate {
            key: public(&registrar),
        }),
    );
    assert_eq!(e.code, ErrorCode::Unauthorized);
    // Its own admin can, after which the key can no longer sign.
    let r = sb.run(
        &Sandbox::admin_key("hohhot"),
        Action::Operator(OperatorAction::Deactivate {
            key: public(&registrar),
        }),
    );
    assert!(r.is_success());
    let e = sb.run_err(&registrar, register("again", &[Role::Credit]));
    assert_eq!(e.code, ErrorCode::UnknownSigner);
}

#[test]
fn same_block_same_results_on_every_run() {
    let make = || {
        let mut sb = Sandbox::new(4);
        let admin = Sandbox::admin_key("hohhot");
        let txs = sb.sign(&[
            (&admin, register("a", &[Role::Registrar])),
            (&admin, register("b", &[Role::Credit])),
            (&admin, register("a", &[Role::Expert])),
        ]);
        let receipts = sb.block(&txs);
        (sb.state, receipts)
    };
    let (s1, r1) = make();
    let (s2, r2) = make();
    assert_eq!(s1, s2);
    assert_eq!(r1, r2);
    assert!(r1[0].is_success() && r1[1].is_success());
    assert!(!r1[2].is_success(), "duplicate key must fail");
}
