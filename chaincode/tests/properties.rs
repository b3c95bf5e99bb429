//! Properties of execution over generated workloads: the same block gives the
//! same bytes every time, and independent transactions commute.

use caihong_chaincode::members::Role;
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::subjects::{SubjectAction, SubjectInfo, SubjectRole, SubjectStatus};
use caihong_chaincode::{Action, exec, uscc};
use proptest::prelude::*;

fn registration(i: u32, name: &str) -> Action {
    let code = uscc::build("91150100", &format!("{i:08}")).unwrap();
    Action::Subject(SubjectAction::Register(SubjectInfo {
        uscc: code.to_string(),
        name: name.into(),
        roles: [SubjectRole::Bidder].into(),
        legal_representative: "李四".into(),
        qualifications: vec![],
        status: SubjectStatus::Active,
    }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Registrations of distinct subjects by distinct operators commute: any
    /// order of the block gives the same state.
    #[test]
    fn independent_registrations_commute(
        ids in proptest::collection::btree_set(0u32..10_000, 1..12),
        seed in any::<u64>(),
    ) {
        let mut sb = Sandbox::new(4);
        let ids: Vec<u32> = ids.into_iter().collect();
        let keys: Vec<_> = ids.iter().map(|i| sb.operator("hohhot", &format!("op{i}"), &[Role::Registrar])).collect();
        let actions: Vec<_> = ids.iter().zip(&keys).map(|(i, k)| (k, registration(*i, &format!("subject {i}")))).collect();
        let txs = sb.sign(&actions);
        let mut shuffled = txs.clone();
        // A deterministic permutation from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let ctx = sb.next_block();
        let (a, ra) = exec::execute_block(&sb.state, &ctx, &txs);
        let (b, rb) = exec::execute_block(&sb.state, &ctx, &shuffled);
        prop_assert_eq!(a, b);
        prop_assert!(ra.iter().chain(&rb).all(|r| r.is_success()));
    }

    /// Any block, including conflicting and failing transactions, executes to
    /// the same bytes and receipts every time.
    #[test]
    fn execution_is_deterministic(ops in proptest::collection::vec((0u32..20, 0usize..3, any::<bool>()), 1..30)) {
        let mut sb = Sandbox::new(4);
        let keys: Vec<_> = (0..3).map(|i| sb.operator(["hohhot", "baotou", "ordos"][i], "op", &[Role::Registrar])).collect();
        let actions: Vec<_> = ops.iter().map(|(id, who, update)| {
            let mut a = registration(*id, "n");
            if *update && let Action::Subject(SubjectAction::Register(info)) = a {
                a = Action::Subject(SubjectAction::Update(info));
            }
            (&keys[*who], a)
        }).collect();
        let txs = sb.sign(&actions);
        let ctx = sb.next_block();
        let first = exec::execute_block(&sb.state, &ctx, &txs);
        let second = exec::execute_block(&sb.state, &ctx, &txs);
        prop_assert_eq!(caihong_chaincode::codec::encode(&first.0), caihong_chaincode::codec::encode(&second.0));
        prop_assert_eq!(first.1, second.1);
    }
}
