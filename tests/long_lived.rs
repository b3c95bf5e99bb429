//! A chain that runs for years, tried on one four-member alliance:
//! - idle, it makes a block only every `empty_block_interval_ms` (and says so in the log
//!   without a line per block); a transaction starts its height at once; work that counts
//!   blocks (a governance change taking effect) gets its blocks without waiting; a member
//!   restarted while the chain is idle catches up and a transaction sent to it commits at once;
//! - under load, a member that keeps only recent state versions proves those and answers
//!   `410 STATE_PRUNED` for older ones while an archive member proves any; online backups
//!   taken while blocks commit each restore to whole blocks, and a member restored into a new
//!   home from one catches up and agrees;
//! - a city admitted by vote starts with `--state-sync`: it verifies the headers from genesis,
//!   restores the state at the tip from its peers' chunks, and is a validator whose blocks and
//!   state roots are the others' from its first block on.

mod harness;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caihong_node::contract::TxState;
use caihong_node::storage::Store;
use harness::{Alliance, get, register_subject, run};
use serde_json::Value;
use workload::Workload;

/// Long beside everything the test waits for, so a block made by the idle timer is told apart
/// from one a transaction started.
const EMPTY_BLOCK_INTERVAL_MS: u64 = 15_000;

/// The member that prunes, and how many state versions it keeps.
const PRUNER: usize = 1;
const KEEP: u64 = 20;

/// The member backed up, restored into a new home.
const BACKED_UP: usize = 2;

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
fn a_chain_that_runs_for_years() {
    let mut a = Alliance::create(4);
    a.empty_block_interval_ms = Some(EMPTY_BLOCK_INTERVAL_MS);
    for i in 0..4 {
        a.start(i);
    }
    an_idle_chain_waits_for_transactions(&mut a);
    pruning_and_backups_under_load(&mut a);
    a_new_city_joins_by_state_sync(&mut a);
}

fn an_idle_chain_waits_for_transactions(a: &mut Alliance) {
    let a = &mut *a;
    // A new chain makes block 1 at once: the members see that they agree.
    wait_all(a, 1, Duration::from_secs(30));

    // Idle: over 8 s (about half the interval) at most the one block the timer may make.
    let before = *heights(a).iter().max().unwrap();
    std::thread::sleep(Duration::from_secs(8));
    let after = *heights(a).iter().max().unwrap();
    assert!(
        after <= before + 1,
        "an idle chain made {} blocks in 8 s with a {} ms empty-block interval",
        after - before,
        EMPTY_BLOCK_INTERVAL_MS
    );

    // ...but it is alive: the timer makes the next block within the interval.
    wait_all(
        a,
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
        a,
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
    tx(a, 1, &["governance", "vote", "--proposal", &id.to_string()]);
    let voted = Instant::now();
    tx(a, 2, &["governance", "vote", "--proposal", &id.to_string()]);
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
    wait_all(a, tip, Duration::from_secs(30));
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

fn pruning_and_backups_under_load(a: &mut Alliance) {
    // The pruning member keeps the latest KEEP versions; the others keep every one.
    a.stop(PRUNER);
    let config = a.members[PRUNER].home.join("config.toml");
    let mut node: caihong_node::config::NodeConfig =
        toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    node.storage.keep_state_versions = KEEP;
    std::fs::write(&config, toml::to_string(&node).unwrap()).unwrap();
    a.start(PRUNER);
    let load = Workload::start_on(a, &[0, 1, 3], 3, 25, None);
    load.wait_committed(12);

    // Backups while blocks commit: each restores to whole blocks at its reported height.
    let backups: Vec<(PathBuf, Value)> = (0..3)
        .map(|n| {
            let out = a.dir.path().join(format!("backup-{n}"));
            let home = a.members[BACKED_UP].home.to_str().unwrap().to_string();
            let (code, stdout, stderr) = run(&[
                "backup",
                "--home",
                &home,
                "--out",
                out.to_str().unwrap(),
                "--json",
            ]);
            assert_eq!(code, 0, "backup {n}: {stdout} {stderr}");
            std::thread::sleep(Duration::from_millis(700));
            (out, serde_json::from_str(&stdout).expect("backup JSON"))
        })
        .collect();
    let heights_backed_up: Vec<u64> = backups
        .iter()
        .map(|(_, m)| m["height"].as_u64().unwrap())
        .collect();
    assert!(
        heights_backed_up.windows(2).all(|w| w[0] < w[1]),
        "backups under load are at rising heights: {heights_backed_up:?}"
    );
    for (n, (dir, manifest)) in backups.iter().enumerate() {
        let scratch = new_home_like(a, BACKED_UP, &format!("scratch-{n}"));
        let (code, out, err) = run(&[
            "restore",
            "--from",
            dir.to_str().unwrap(),
            "--home",
            scratch.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 0, "restore of backup {n}: {out} {err}");
        let store = Store::open(scratch.join("data")).expect("the restored store opens");
        let height = manifest["height"].as_u64().unwrap();
        let header = store.latest_header().unwrap().expect("a latest block");
        assert_eq!(header.height, height, "backup {n}");
        assert_eq!(header.hash().to_hex(), manifest["block_hash"], "backup {n}");
        assert_eq!(
            store.state_root(height).unwrap(),
            header.state_root,
            "backup {n}: the state tree at its height is whole"
        );
        assert!(store.block(height + 1).unwrap().is_none(), "backup {n}");
    }

    // The pruning member proves recent state and refuses older heights by name; an archive
    // member proves any height.
    let key = hex::encode(caihong_chaincode::keys::PARAMS);
    let proof = |i: usize, height: u64| {
        get(&format!(
            "{}/v1/state/proof?key={key}&height={height}",
            a.api(i)
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        match proof(PRUNER, 1) {
            Err(e) if e.status == 410 => break e.body,
            other => assert!(
                Instant::now() < deadline,
                "member {PRUNER} still proves height 1: {other:?}\n{}",
                a.log_tail(PRUNER)
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(refused["code"], "STATE_PRUNED", "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("oldest kept") && message.contains("keep_state_versions"),
        "{message}"
    );
    proof(0, 1).expect("an archive member proves height 1");
    let recent = a.height(PRUNER).unwrap() - 5;
    let answer = proof(PRUNER, recent).expect("a recent height is proved");
    let (_, header_root) = a.block_ids(PRUNER, recent);
    assert_eq!(answer["state_root"], header_root.as_str());
    // Another region's sync from genesis is told to use an archive member.
    let genesis = a.members[0].home.join("genesis.json");
    let (code, out, err) = run(&[
        "sync",
        "credit",
        "--from",
        a.api(PRUNER),
        "--genesis",
        genesis.to_str().unwrap(),
        "--out",
        a.dir.path().join("pruned-sync.jsonl").to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "a sync from genesis off a pruning member: {out}");
    assert!(err.contains("keep_state_versions"), "{err}");

    // A member restored into a new home from a backup catches up and agrees.
    let (dir, manifest) = &backups[0];
    a.stop(BACKED_UP);
    let new_home = new_home_like(a, BACKED_UP, "restored");
    std::fs::copy(
        a.members[BACKED_UP].home.join("signer_state.bin"),
        new_home.join("signer_state.bin"),
    )
    .unwrap();
    let (code, out, err) = run(&[
        "restore",
        "--from",
        dir.to_str().unwrap(),
        "--home",
        new_home.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("signer_state.bin kept"), "{out}");
    a.members[BACKED_UP].home = new_home;
    a.start(BACKED_UP);
    assert!(a.height(BACKED_UP).unwrap() >= manifest["height"].as_u64().unwrap());
    let history = load.finish();
    let tip = workload::common_tip(a, &[0, 1, 2, 3], &history);
    wait_all(a, tip, Duration::from_secs(60));
    a.assert_same_chain(&[0, 1, 2, 3], tip);
}

/// A new home for member `i` with its config, genesis and keys, and no data.
fn new_home_like(a: &Alliance, i: usize, name: &str) -> PathBuf {
    let from: &Path = &a.members[i].home;
    let to = a.dir.path().join(name);
    std::fs::create_dir_all(&to).unwrap();
    for file in [
        "config.toml",
        "genesis.json",
        "node_key.json",
        "admin_key.json",
    ] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    to
}

fn a_new_city_joins_by_state_sync(a: &mut Alliance) {
    let new = a.add_home("lanzhou");
    let home = a.members[new].home.to_str().unwrap().to_string();
    let p2p = a.members[new].p2p.clone();
    let v = tx(
        a,
        0,
        &[
            "governance",
            "propose-add-member",
            "--id",
            "lanzhou",
            "--name",
            "兰州市公共资源交易中心",
            "--region",
            "620100",
            "--new-home",
            &home,
            "--p2p",
            &p2p,
        ],
    );
    let id = v["output"]["Proposal"]
        .as_u64()
        .expect("proposal id")
        .to_string();
    tx(a, 1, &["governance", "vote", "--proposal", &id]);
    tx(a, 2, &["governance", "vote", "--proposal", &id]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let applied = loop {
        let p = a.get(0, &format!("/v1/governance/proposals/{id}"));
        if let Some(h) = p["status"]["Applied"]["height"].as_u64() {
            break h;
        }
        assert!(Instant::now() < deadline, "not applied: {p}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for i in 0..new {
        a.wait_height(i, applied, Duration::from_secs(30));
    }
    a.members[new].start_args = vec!["--state-sync".into()];
    a.start(new);
    let deadline = Instant::now() + Duration::from_secs(120);
    while a.status(new)["validator"] != true {
        assert!(
            Instant::now() < deadline,
            "the new city is not a validator:\n{}",
            a.log_tail(new)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = std::fs::read_to_string(a.log_path(new)).unwrap();
    assert!(log.contains("started from a state snapshot"), "{log}");
    // It did not replay: no block below its snapshot is in its store.
    let first = a
        .snapshot_height(new)
        .expect("the snapshot's height in the log");
    assert!(
        first >= applied,
        "snapshot at {first}, change applied at {applied}"
    );
    assert_eq!(
        get(&format!("{}/v1/blocks/{}", a.api(new), first - 1))
            .err()
            .map(|e| e.status),
        Some(404)
    );
    // Its event feed starts at its snapshot: earlier cursors are told where to go.
    let early = get(&format!("{}/v1/events?after=0", a.api(new))).unwrap_err();
    assert_eq!(
        (early.status, early.body["code"].as_str()),
        (410, Some("BEFORE_SNAPSHOT"))
    );
    get(&format!("{}/v1/events?after={first}", a.api(new))).expect("events after the snapshot");
    // A transaction through the new city commits, and every member agrees from its first
    // block to the tip.
    let key = a.admin_key(0);
    let nonce = a.next_nonce(new, &key);
    let tx5 = a.sign(&key, nonce, register_subject("150100", 5));
    let answer = a.submit(new, &tx5, true).expect("submitted");
    assert_eq!(answer.status, TxState::Committed, "{answer:?}");
    let tip = answer.height.expect("committed");
    wait_all(a, tip, Duration::from_secs(30));
    for h in first..=tip {
        assert_eq!(a.block_ids(new, h), a.block_ids(0, h), "height {h}");
    }
}
