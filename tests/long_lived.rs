//! A chain that runs for years, tried on one four-member alliance: idle, it makes a block only
//! every `empty_block_interval_ms` (and says so in the log without a line per block); a
//! transaction starts its height at once; work that counts blocks (a governance change taking
//! effect) gets its blocks without waiting; a member restarted while the chain is idle catches
//! up and a transaction sent to it commits at once.

mod harness;

use std::time::{Duration, Instant};

use caihong_node::contract::TxState;
use harness::{Alliance, register_subject, run};
use serde_json::Value;

/// Long beside everything the test waits for, so a block made by the idle timer is told apart
/// from one a transaction started.
const EMPTY_BLOCK_INTERVAL_MS: u64 = 15_000;

/// Runs `caihong tx --home HOME --wait --json <args…>`; panics unless it committed.
fn tx(a: &Alliance, member: usize, args: &[&str]) -> Value {
    let home = a.members[member].home.to_str().unwrap().to_string();
    let mut full = vec!["tx", "--home", &home, "--wait", "--json"];
    full.extend_from_slice(args);
    let (code, out, err) = run(&full);
    let answer: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    assert_eq!(code, 0, "tx {args:?}: {out} {err}");
    assert_eq!(answer["status"], "committed", "{answer}");
    answer
}

fn heights(a: &Alliance) -> Vec<u64> {
    (0..a.members.len())
        .map(|i| a.height(i).unwrap_or(0))
        .collect()
}

/// Waits until every member is at `height` or above.
fn wait_all(a: &Alliance, height: u64, timeout: Duration) {
    for i in 0..a.members.len() {
        a.wait_height(i, height, timeout);
    }
}

#[test]
fn an_idle_chain_waits_for_transactions() {
    let mut a = Alliance::create(4);
    a.empty_block_interval_ms = Some(EMPTY_BLOCK_INTERVAL_MS);
    for i in 0..4 {
        a.start(i);
    }
    // A new chain makes block 1 at once: the members see that they agree.
    wait_all(&a, 1, Duration::from_secs(30));

    // Idle: over 8 s (about half the interval) at most the one block the timer may make.
    let before = *heights(&a).iter().max().unwrap();
    std::thread::sleep(Duration::from_secs(8));
    let after = *heights(&a).iter().max().unwrap();
    assert!(
        after <= before + 1,
        "an idle chain made {} blocks in 8 s with a {} ms empty-block interval",
        after - before,
        EMPTY_BLOCK_INTERVAL_MS
    );

    // ...but it is alive: the timer makes the next block within the interval.
    wait_all(
        &a,
        after + 1,
        Duration::from_millis(EMPTY_BLOCK_INTERVAL_MS + 10_000),
    );

    // A transaction starts its height at once, whichever member it reaches.
    for (n, member) in [(1, 2), (2, 0)] {
        let key = a.admin_key(member);
        let nonce = a.next_nonce(member, &key);
        let tx = a.sign(&key, nonce, register_subject("150100", n));
        let sent = Instant::now();
        let answer = a.submit(member, &tx, true).expect("submitted");
        let took = sent.elapsed();
        assert_eq!(answer.status, TxState::Committed, "{answer:?}");
        assert!(
            took < Duration::from_millis(EMPTY_BLOCK_INTERVAL_MS / 2),
            "a transaction to member {member} took {took:?} to commit on an idle chain"
        );
    }

    // A passed governance change counts blocks: its effective height comes without
    // transactions and without waiting for the idle timer.
    let v = tx(
        &a,
        0,
        &[
            "governance",
            "propose-parameter",
            "--name",
            "proposal_ttl_blocks",
            "--value",
            "5000",
        ],
    );
    let id = v["output"]["Proposal"].as_u64().expect("proposal id");
    tx(
        &a,
        1,
        &["governance", "vote", "--proposal", &id.to_string()],
    );
    let voted = Instant::now();
    tx(
        &a,
        2,
        &["governance", "vote", "--proposal", &id.to_string()],
    );
    let applied = loop {
        let p = a.get(0, &format!("/v1/governance/proposals/{id}"));
        if let Some(h) = p["status"]["Applied"]["height"].as_u64() {
            break h;
        }
        assert!(
            voted.elapsed() < Duration::from_millis(EMPTY_BLOCK_INTERVAL_MS),
            "the change has not taken effect {:?} after it passed: {p}",
            voted.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        voted.elapsed() < Duration::from_millis(EMPTY_BLOCK_INTERVAL_MS),
        "applied at height {applied} only after {:?}",
        voted.elapsed()
    );

    // A member restarted while the chain is idle catches up, and a transaction sent to it
    // commits at once.
    a.kill(3);
    let key = a.admin_key(0);
    let nonce = a.next_nonce(0, &key);
    let tx3 = a.sign(&key, nonce, register_subject("150100", 3));
    let committed = a.submit(0, &tx3, true).expect("submitted");
    let tip = committed.height.expect("committed");
    a.start(3);
    a.wait_height(3, tip, Duration::from_secs(30));
    let key = a.admin_key(3);
    let nonce = a.next_nonce(3, &key);
    let tx4 = a.sign(&key, nonce, register_subject("150100", 4));
    let sent = Instant::now();
    let answer = a.submit(3, &tx4, true).expect("submitted");
    assert_eq!(answer.status, TxState::Committed, "{answer:?}");
    assert!(
        sent.elapsed() < Duration::from_millis(EMPTY_BLOCK_INTERVAL_MS / 2),
        "a transaction to the restarted member took {:?}",
        sent.elapsed()
    );
    let tip = answer.height.expect("committed");
    wait_all(&a, tip, Duration::from_secs(30));
    a.assert_same_chain(&[0, 1, 2, 3], tip);

    // The log: one INFO line per block with transactions, none per empty block, and no
    // terminal colour codes in a file.
    let log = std::fs::read_to_string(a.log_path(0)).expect("member 0's log");
    assert!(!log.contains('\u{1b}'), "colour codes in node.log");
    let committed_lines = log
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains("committed"))
        .count();
    let height = a.height(0).unwrap();
    assert!(
        committed_lines >= 5 && (committed_lines as u64) < height,
        "{committed_lines} INFO commit lines for {height} blocks"
    );
}
