//! Execution throughput on a mixed workload, with the signature check
//! excluded (pre-verified, as a node that batch-verifies on admission) and
//! included (verify each, then execute), plus signature verification alone
//! and a certificate verify query.
//!
//! Run: `cargo bench -p caihong-chaincode --bench execution`

use caihong_chaincode::credit::{
    CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, Severity,
};
use caihong_chaincode::members::Role;
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::subjects::{SubjectAction, SubjectInfo, SubjectRole, SubjectStatus};
use caihong_chaincode::types::parse_date;
use caihong_chaincode::{Action, SignedTransaction, VerifiedTx, exec, uscc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;

const BLOCK: usize = 1000;
const SIGNERS: usize = 50;

fn info(i: usize, name: &str) -> SubjectInfo {
    SubjectInfo {
        uscc: uscc::build("91150100", &format!("{i:08}"))
            .unwrap()
            .to_string(),
        name: name.into(),
        roles: [SubjectRole::Bidder, SubjectRole::Supplier].into(),
        legal_representative: "王五".into(),
        qualifications: vec![],
        status: SubjectStatus::Active,
    }
}

fn credit(i: usize) -> Action {
    Action::Credit(CreditAction::Record(Box::new(CreditRecordInput {
        kind: CreditKind::Violation,
        subject_uscc: uscc::build("91150200", &format!("{i:08}"))
            .unwrap()
            .to_string(),
        subject_name: format!("包头某公司{i}"),
        document_no: format!("包发改罚〔2024〕{i}号"),
        violation_type: "弄虚作假".into(),
        legal_basis: "《招标投标法》第五十四条".into(),
        penalty_categories: vec![PenaltyCategory::Fine, PenaltyCategory::BiddingSuspension],
        content: "罚款并暂停投标资格六个月".into(),
        fine_fen: 1_000_000,
        decision_date: parse_date("2024-05-20").unwrap(),
        penalty_end_date: Some(parse_date("2024-11-20").unwrap()),
        publication_end_date: parse_date("2025-05-20").unwrap(),
        authority_name: "包头市发展和改革委员会".into(),
        authority_uscc: "116100000000000195".into(),
        severity: Severity::General,
        rating: None,
    })))
}

/// A sandbox with pre-registered subjects to update and a block of mixed,
/// signed transactions: 40% registrations, 20% updates, 40% credit records.
fn workload() -> (Sandbox, Vec<SignedTransaction>) {
    let mut sb = Sandbox::new(4);
    let keys: Vec<SigningKey> = (0..SIGNERS)
        .map(|i| {
            sb.operator(
                "hohhot",
                &format!("bench{i}"),
                &[Role::Registrar, Role::Credit],
            )
        })
        .collect();
    // Subjects that the updates will change, registered beforehand.
    let existing: Vec<(&SigningKey, Action)> = (0..BLOCK / 5)
        .map(|i| {
            (
                &keys[i % SIGNERS],
                Action::Subject(SubjectAction::Register(info(1_000_000 + i, "原名称"))),
            )
        })
        .collect();
    let setup = sb.sign(&existing);
    sb.block(&setup);
    let mut actions = Vec::with_capacity(BLOCK);
    for i in 0..BLOCK {
        let action = match i % 5 {
            0 | 1 => Action::Subject(SubjectAction::Register(info(i, "新登记主体"))),
            2 => Action::Subject(SubjectAction::Update(info(1_000_000 + i / 5, "变更后名称"))),
            _ => credit(i),
        };
        actions.push((&keys[i % SIGNERS], action));
    }
    let txs = sb
        .sign(&actions)
        .into_iter()
        .map(|v| v.signed().clone())
        .collect();
    (sb, txs)
}

fn bench(c: &mut Criterion) {
    let (sb, signed) = workload();
    let ctx = sb.next_block();
    let verified: Vec<VerifiedTx> = signed
        .iter()
        .cloned()
        .map(|t| t.verify(&sb.chain_id).unwrap())
        .collect();
    {
        let (_, receipts) = exec::execute_block(&sb.state, &ctx, &verified);
        let ok = receipts.iter().filter(|r| r.is_success()).count();
        assert_eq!(
            ok,
            BLOCK,
            "the workload must succeed: {:?}",
            receipts.iter().find(|r| !r.is_success())
        );
    }

    let mut g = c.benchmark_group("execute_block");
    g.throughput(Throughput::Elements(BLOCK as u64));
    g.sample_size(20);
    g.bench_function("mixed_1000_presigned", |b| {
        b.iter(|| exec::execute_block(&sb.state, &ctx, &verified))
    });
    g.bench_function("mixed_1000_with_signature_check", |b| {
        b.iter_batched(
            || signed.clone(),
            |txs| {
                let v: Vec<VerifiedTx> = txs
                    .into_iter()
                    .map(|t| t.verify(&sb.chain_id).unwrap())
                    .collect();
                exec::execute_block(&sb.state, &ctx, &v)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("signature");
    let msgs: Vec<Vec<u8>> = signed
        .iter()
        .take(256)
        .map(|t| t.tx.signing_bytes())
        .collect();
    let sigs: Vec<ed25519_dalek::Signature> = signed
        .iter()
        .take(256)
        .map(|t| ed25519_dalek::Signature::from_bytes(&t.signature.0))
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = signed
        .iter()
        .take(256)
        .map(|t| t.tx.signer.verifying_key().unwrap())
        .collect();
    g.throughput(Throughput::Elements(256));
    g.bench_function("verify_single_x256", |b| {
        b.iter(|| {
            for i in 0..256 {
                keys[i].verify_strict(&msgs[i], &sigs[i]).unwrap();
            }
        })
    });
    g.bench_function("verify_batch_256", |b| {
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        b.iter(|| ed25519_dalek::verify_batch(&refs, &sigs, &keys).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
