//! A Byzantine member (the `byzantine` test build, node::byzantine): Yinchuan equivocates as
//! proposer, double votes and proposes blocks with a wrong state root. The three honest members
//! stay safe (one chain, every acknowledged transaction on it once) and live, refuse its bad
//! blocks, record evidence that verifies on its own, and remove it by governance on the basis
//! of that evidence; afterwards the three commit without it.
//! A member that serves corrupt state snapshot chunks is refused by a node starting with
//! `--state-sync`, which finishes from the honest members. An alliance whose every member
//! crashed right after locking on a block (here a one-member one) restarts and commits it.
//!
//! Built only with `--features byzantine` (tests/run-all.sh runs it); release builds lack the
//! feature.

mod harness;
mod workload;

use std::time::Duration;

use caihong_chaincode::TxOutput;
use caihong_chaincode::governance::{GovernanceAction, ProposalKind};
use caihong_chaincode::tx::Action;
use caihong_consensus::{ChainId, Evidence};
use harness::{Alliance, TxAnswer, TxState};
use workload::{Workload, check_history};

const MINUTE: Duration = Duration::from_secs(60);

/// Submits `action` signed by member `m`'s admin; panics unless it committed successfully.
fn admin_tx(a: &Alliance, m: usize, action: Action) -> TxAnswer {
    let admin = a.admin_key(m);
    let tx = a.sign(&admin, a.next_nonce(m, &admin), action);
    let answer = a.submit(m, &tx, true).expect("admin transaction accepted");
    assert_eq!(answer.status, TxState::Committed, "{answer:?}");
    answer
}

#[test]
fn honest_members_survive_an_equivocating_member_and_remove_it_by_evidence() {
    let mut a = Alliance::create(4);
    let byz = 3;
    a.members[byz].env = vec![(
        "CAIHONG_BYZANTINE".into(),
        "equivocate,double-vote,bad-state-root".into(),
    )];
    for i in 0..4 {
        a.start(i);
    }
    let honest = [0, 1, 2];
    for i in honest {
        a.wait_height(i, 1, MINUTE);
    }
    assert!(
        std::fs::read_to_string(a.log_path(byz))
            .unwrap()
            .contains("BYZANTINE TEST BUILD"),
        "the byzantine member did not switch its behaviour on"
    );

    // Live under load: clients submit to the honest members only (the Byzantine member's API
    // is not trusted with anything).
    let workload = Workload::start_on(&a, &honest, 3, 11, None);
    let start = a.height(0).unwrap();
    for i in honest {
        a.wait_height(i, start + 20, MINUTE);
    }
    let history = workload.finish();

    // Evidence: the honest members recorded the equivocation, it names Yinchuan, and it
    // verifies from its bytes alone.
    let chain_id = ChainId::new(a.chain_id.clone());
    let yinchuan_key = hex::encode(a.home(byz).node_key.verifying_key().to_bytes());
    let mut kinds = std::collections::BTreeSet::new();
    for i in honest {
        let evidence = a.get(i, "/v1/evidence");
        let list = evidence.as_array().unwrap();
        assert!(!list.is_empty(), "member {i} recorded no evidence");
        for e in list {
            assert_eq!(e["offender_node_key"], yinchuan_key.as_str(), "{e}");
            assert_eq!(e["member"], "yinchuan", "{e}");
            assert_eq!(e["verified"], true, "{e}");
            let bytes = hex::decode(e["evidence_bincode_hex"].as_str().unwrap()).unwrap();
            let ev: Evidence = caihong_chaincode::codec::decode(&bytes).unwrap();
            assert_eq!(hex::encode(ev.verify(&chain_id).unwrap().0), yinchuan_key);
            kinds.insert(e["kind"].as_str().unwrap().to_string());
        }
    }
    assert!(kinds.contains("conflicting_votes"), "{kinds:?}");
    assert!(kinds.contains("conflicting_proposals"), "{kinds:?}");

    // Safe: one chain among the honest, no bad state root committed (every honest member
    // re-executes and would have stopped), every acknowledged transaction on chain once.
    let tip = workload::common_tip(&a, &honest, &history);
    a.assert_same_chain(&honest, tip);
    let check = check_history(&a, &honest, tip, &history);
    assert!(check.acknowledged > 0, "no transaction was acknowledged");
    assert!(check.lost.is_empty(), "{:#?}", check.lost);
    // Yinchuan proposed in its rounds, but none of its blocks was committed.
    for h in 1..=tip {
        let b = a.get(0, &format!("/v1/blocks/{h}"));
        assert_ne!(
            b["proposer"],
            yinchuan_key.as_str(),
            "height {h} is Yinchuan's bad block"
        );
    }

    // Governance on the basis of the evidence: Hohhot proposes removing the member the
    // evidence names, Baotou and Ordos approve (3 of 4).
    let offender = a.get(0, "/v1/evidence")[0]["member"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = admin_tx(
        &a,
        0,
        Action::Governance(GovernanceAction::Propose {
            kind: ProposalKind::RemoveMember {
                id: offender.clone(),
            },
        }),
    );
    let Some(TxOutput::Proposal(id)) = answer.output else {
        panic!("no proposal id in {answer:?}");
    };
    for voter in [1, 2] {
        admin_tx(
            &a,
            voter,
            Action::Governance(GovernanceAction::Vote {
                proposal: id,
                approve: true,
            }),
        );
    }
    let deadline = std::time::Instant::now() + MINUTE;
    while a.get(0, "/v1/members").as_array().unwrap().len() != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "yinchuan was not removed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Three validators without Yinchuan: they commit on their own, and it is shut out.
    a.kill(byz);
    let h = a.height(0).unwrap();
    for i in honest {
        a.wait_height(i, h + 5, MINUTE);
    }
    a.assert_same_chain(&honest, h + 5);
}

#[test]
fn state_sync_refuses_a_member_serving_corrupt_chunks() {
    let mut a = Alliance::create(4);
    let (byz, joiner) = (3, 2);
    a.members[byz].env = vec![("CAIHONG_BYZANTINE".into(), "corrupt-snapshots".into())];
    for i in 0..4 {
        a.start(i);
    }
    // State to restore: a few hundred keys from a short load.
    let workload = Workload::start_on(&a, &[0, 1], 2, 12, None);
    let start = a.height(0).unwrap();
    a.wait_height(0, start + 25, MINUTE);
    let history = workload.finish();
    let tip = workload::common_tip(&a, &[0, 1, 3], &history);

    // Baotou's disk is replaced: its home keeps the keys and signer state, data/ is empty. It
    // asks for small chunks, so every peer serves some.
    a.stop(joiner);
    a.wipe(joiner);
    a.members[joiner].start_args = vec!["--state-sync".into()];
    a.members[joiner].env = vec![("CAIHONG_STATE_SYNC_CHUNK_BYTES".into(), "2048".into())];
    a.start(joiner);
    a.wait_height(joiner, tip, MINUTE);
    let log = std::fs::read_to_string(a.log_path(joiner)).unwrap();
    assert!(log.contains("started from a state snapshot"), "{log}");
    let byz_key = hex::encode(a.home(byz).node_key.verifying_key().to_bytes());
    let refused = log
        .lines()
        .find(|l| l.contains("not asked again"))
        .unwrap_or_else(|| panic!("the corrupt peer was not refused:\n{log}"));
    assert!(refused.contains(&byz_key), "{refused}");
    assert!(refused.contains("does not verify"), "{refused}");
    let first = a
        .snapshot_height(joiner)
        .expect("the snapshot's height in the log");
    let h = a.height(0).unwrap();
    a.wait_height(joiner, h, MINUTE);
    for height in first..=h {
        let ids = |i| {
            let b = a.get(i, &format!("/v1/blocks/{height}"));
            (b["hash"].to_string(), b["state_root"].to_string())
        };
        assert_eq!(ids(joiner), ids(0), "height {height}");
    }
}

/// A node that crashed after precommitting (locking on) a block it had not committed decides
/// that block again on restart; when no peer can send the body (every member crashed with it,
/// or the alliance has one member) it must have kept the body itself.
#[test]
fn a_lone_member_that_crashed_after_locking_restarts_and_commits() {
    let mut a = Alliance::create(1);
    a.members[0].env = vec![("CAIHONG_BYZANTINE".into(), "crash-after-lock".into())];
    a.start(0);
    a.wait_height(0, 1, MINUTE);
    let arm = a.members[0].home.join("crash-after-lock");
    std::fs::write(&arm, b"").unwrap();
    // A transaction makes a block to lock on (the chain waits for transactions otherwise).
    let key = a.admin_key(0);
    let nonce = a.next_nonce(0, &key);
    let tx = a.sign(&key, nonce, harness::register_subject("150100", 1));
    let _ = a.submit(0, &tx, false);
    let armed = std::time::Instant::now();
    while a.is_running(0) {
        assert!(
            armed.elapsed() < MINUTE,
            "no crash after locking:\n{}",
            a.log_tail(0)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !arm.exists(),
        "exited without the armed crash:\n{}",
        a.log_tail(0)
    );
    let height = a.height(0);
    assert!(height.is_none(), "the node is down");
    a.kill(0);
    a.start(0);
    // The mempool went with the crash: the transaction commits only in the locked block.
    let deadline = std::time::Instant::now() + MINUTE;
    loop {
        let answer = a.client(0).tx(&tx.hash());
        if matches!(&answer, Ok(t) if t.status == TxState::Committed) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the locked block was not committed after the restart: {answer:?}\n{}",
            a.log_tail(0)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
