//! A local alliance of real processes: members commit the same blocks, draw a sealed
//! cross-region committee that only the right members can read until the award, survive a
//! SIGKILL, sync an empty member from genesis, refuse an unknown node key, and reject
//! malformed API input without storing anything.

mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caihong_chaincode::tx::Action;
use harness::{Alliance, TxState, post_raw, register_subject, run};
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

/// Member `i` submits `count` subject registrations signed by its admin, numbered from
/// `first`; returns the transaction hashes. The last one is submitted with `wait`.
fn register_subjects(a: &Alliance, i: usize, first: u32, count: u32) -> Vec<String> {
    let key = a.admin_key(i);
    let region = &a.home(i).genesis.members[i].region_code.clone();
    let nonce = a.next_nonce(i, &key);
    (0..count)
        .map(|k| {
            let tx = a.sign(&key, nonce + k as u64, register_subject(region, first + k));
            let wait = k + 1 == count;
            let answer = a
                .submit(i, &tx, wait)
                .unwrap_or_else(|e| panic!("submit to member {i}: {e}"));
            if wait && answer.status != TxState::Committed {
                let logs: Vec<String> = (0..a.members.len()).map(|m| a.log_tail(m)).collect();
                panic!("not committed: {answer:?}\n{}", logs.join("\n----\n"));
            }
            tx.hash().to_hex()
        })
        .collect()
}

#[test]
fn four_members_commit_the_same_blocks_and_answer_alike() {
    let a = Alliance::start_new(4);
    let started = Instant::now();
    let start_height = a.height(0).unwrap();

    let mut hashes = register_subjects(&a, 0, 1, 20);
    hashes.extend(register_subjects(&a, 1, 1, 20));

    // Every member reports the same receipt for every transaction.
    let tip = (0..4).map(|i| a.height(i).unwrap()).max().unwrap();
    for i in 0..4 {
        a.wait_height(i, tip, MINUTE);
    }
    for hash in &hashes {
        let answers: Vec<Value> = (0..4)
            .map(|i| {
                let mut v = a.get(i, &format!("/v1/tx/{hash}"));
                v.as_object_mut().unwrap().remove("tx");
                v
            })
            .collect();
        assert_eq!(answers[0]["status"], "committed", "{}", answers[0]);
        for (i, v) in answers.iter().enumerate() {
            assert_eq!(v, &answers[0], "member {i} answers differently for {hash}");
        }
    }
    // The registered subject reads the same from every member.
    let uscc = harness::test_uscc("150100", 5);
    let subject = a.get(0, &format!("/v1/subjects/{uscc}"));
    assert_eq!(subject["home"], "hohhot", "{subject}");
    for i in 1..4 {
        assert_eq!(a.get(i, &format!("/v1/subjects/{uscc}")), subject);
    }
    a.assert_same_chain(&[0, 1, 2, 3], tip);

    // The CLI sees the same: status and block JSON.
    let (code, out, err) = run(&["status", "--node", a.api(2), "--json"]);
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["chain_id"], "caihong-test");
    assert_eq!(status["member"], "ordos");
    assert_eq!(status["syncing"], false);
    assert_eq!(status["peers"].as_array().unwrap().len(), 3, "{status}");
    let (code, out, err) = run(&["query", "block", "1", "--node", a.api(3), "--json"]);
    assert_eq!(code, 0, "{err}");
    let block: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(block["hash"].as_str().unwrap(), a.block_ids(0, 1).0);
    assert_eq!(block["height"], 1);

    sealed_extraction_across_four_members(&a);

    let elapsed = started.elapsed().as_secs_f64();
    let blocks = a.height(0).unwrap() - start_height;
    eprintln!(
        "four members: {blocks} blocks in {elapsed:.1} s ({:.1} blocks/s), tip {tip}",
        blocks as f64 / elapsed
    );
}

/// Submits registrations to members 0..3 in a loop until `stop`; counts commits.
fn background_load(
    a: &Alliance,
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..3)
        .map(|i| {
            let api = a.api(i).to_string();
            let key = a.admin_key(i);
            let region = a.home(i).genesis.members[i].region_code.clone();
            let chain_id = a.chain_id.clone();
            let stop = stop.clone();
            let committed = committed.clone();
            std::thread::spawn(move || {
                let public = caihong_chaincode::PublicKey::from(&key.verifying_key());
                let mut n = 10_000;
                while !stop.load(Ordering::SeqCst) {
                    let Ok(nonce) = harness::get(&format!("{api}/v1/nonce/{}", public.to_hex()))
                    else {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    };
                    let nonce = nonce["next_free_nonce"].as_u64().unwrap();
                    let tx = caihong_chaincode::Transaction {
                        chain_id: chain_id.clone(),
                        signer: public,
                        nonce,
                        action: register_subject(&region, n),
                    }
                    .sign(&key);
                    n += 1;
                    let answer = harness::post(
                        &format!("{api}/v1/tx"),
                        &json!({"tx": hex::encode(tx.encode()), "wait": true}),
                    );
                    if matches!(answer, Ok(v) if v["status"] == "committed") {
                        committed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect()
}

#[test]
fn a_member_killed_under_load_catches_up_and_never_equivocates() {
    let mut a = Alliance::start_new(4);
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let load = background_load(&a, stop.clone(), committed.clone());

    let h = a.wait_height(3, 5, MINUTE);
    a.kill(3);
    // The other three keep committing while member 3 is down.
    let down_at = a.height(0).unwrap();
    a.wait_height(0, down_at + 10, MINUTE);
    for i in 1..3 {
        a.wait_height(i, down_at + 10, MINUTE);
    }
    let restart = Instant::now();
    a.start(3);
    let target = a.height(0).unwrap();
    a.wait_height(3, target, MINUTE);
    let catch_up = restart.elapsed();
    // Once caught up it keeps up.
    a.wait_height(3, target + 3, MINUTE);
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().unwrap();
    }
    let tip = (0..4).map(|i| a.height(i).unwrap()).min().unwrap();
    a.assert_same_chain(&[0, 1, 2, 3], tip);
    // No honest member recorded equivocation evidence against anyone (a restarted member
    // that signed against its own past would show up here).
    for i in 0..4 {
        assert_eq!(
            a.get(i, "/v1/evidence"),
            json!([]),
            "member {i} has evidence"
        );
    }
    let n = committed.load(Ordering::SeqCst);
    assert!(n > 0, "the load committed nothing");
    eprintln!(
        "killed member 3 at height {h}; the others went from {down_at} to {target} while it was down; \
         it caught up in {:.1} s; {n} transactions committed under load; tip {tip}",
        catch_up.as_secs_f64()
    );
}

#[test]
fn a_member_with_an_empty_data_directory_syncs_from_genesis_and_joins() {
    let mut a = Alliance::create(4);
    for i in 0..3 {
        a.start(i);
    }
    register_subjects(&a, 0, 1, 10);
    a.wait_height(0, 20, MINUTE);
    let started = Instant::now();
    a.start(3);
    let target = a.height(0).unwrap();
    a.wait_height(3, target, MINUTE);
    let sync_time = started.elapsed();
    a.assert_same_chain(&[0, 3], target);
    // Let member 3 follow a few heights in consensus (its gossip mesh forms on the next
    // heartbeats) before it becomes necessary.
    a.wait_height(3, target + 5, MINUTE);
    // Member 3 now votes: with member 0 stopped, commits need it (3 of 4).
    a.stop(0);
    let h = a.height(1).unwrap();
    a.wait_height(1, h + 3, MINUTE);
    a.wait_height(3, h + 3, MINUTE);
    let tip = a.height(3).unwrap().min(a.height(1).unwrap());
    a.assert_same_chain(&[1, 2, 3], tip);
    eprintln!(
        "empty member synced {target} blocks in {:.1} s, then committed with two others to {tip}",
        sync_time.as_secs_f64()
    );
}

#[test]
fn an_unknown_node_key_is_refused() {
    let a = Alliance::start_new(4);
    // A home for the same genesis with a fresh node key nobody voted in, dialling member 0.
    let stranger = a.dir.path().join("stranger");
    let genesis = a.members[0].home.join("genesis.json");
    let ports = harness::free_ports(2);
    let (code, _, err) = run(&[
        "init",
        "--home",
        stranger.to_str().unwrap(),
        "--member",
        "stranger",
        "--genesis",
        genesis.to_str().unwrap(),
        "--p2p-listen",
        &format!("/ip4/127.0.0.1/tcp/{ports}"),
        "--api-listen",
        &format!("127.0.0.1:{}", ports + 1),
    ]);
    assert_eq!(code, 0, "{err}");
    let log = std::fs::File::create(stranger.join("node.log")).unwrap();
    let mut child = harness::caihong()
        .args(["start", "--home"])
        .arg(&stranger)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let status = harness::get(&format!("http://127.0.0.1:{}/v1/status", ports + 1));
    let _ = child.kill();
    let _ = child.wait();
    let status = status.expect("the stranger's API answers");
    assert_eq!(status["height"], 0, "the stranger got blocks: {status}");
    assert_eq!(
        status["peers"],
        json!([]),
        "the stranger has peers: {status}"
    );
    for i in 0..4 {
        let peers = a.status(i)["peers"].as_array().unwrap().len();
        assert_eq!(peers, 3, "member {i} has {peers} peers");
    }
    let members_log = (0..4).map(|i| a.log_tail(i)).collect::<String>();
    assert!(
        members_log.contains("refused connection"),
        "no member logged the refusal:\n{members_log}"
    );
}

#[test]
fn malformed_api_input_is_rejected_and_nothing_is_stored() {
    let a = Alliance::start_new(4);
    let url = format!("{}/v1/tx", a.api(0));
    let reject = |content_type: &str, body: &[u8], status: u16, needle: &str| {
        let e = post_raw(&url, content_type, body).expect_err("must be rejected");
        assert_eq!(e.status, status, "{e}");
        let message = e.body["error"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    };
    reject("application/json", b"{not json", 400, "request body");
    reject(
        "application/json",
        br#"{"tx": 5}"#,
        422,
        "expected a string",
    );
    reject("application/json", br#"{"tx": "zz"}"#, 400, "not hex");
    reject(
        "application/json",
        br#"{"tx": "00112233"}"#,
        400,
        "does not decode",
    );
    reject("text/plain", b"hello", 415, "");
    let huge = vec![b'a'; 9 * 1024 * 1024];
    let e = post_raw(&url, "application/json", &huge).expect_err("huge body");
    assert_eq!(e.status, 413, "{e}");

    // Well-formed but wrong: another chain id, a bad signature, a stale nonce.
    let key = a.admin_key(0);
    let nonce = a.next_nonce(0, &key);
    let mut other_chain = a.sign(&key, nonce, register_subject("150100", 1));
    other_chain.tx.chain_id = "another-chain".into();
    let other_chain = other_chain.tx.sign(&key);
    let e = a.submit(0, &other_chain, false).expect_err("wrong chain");
    assert_eq!(e.status, 422, "{e}");
    assert!(
        e.body["error"].as_str().unwrap().contains("another-chain"),
        "{e}"
    );
    let mut forged = a.sign(&key, nonce, register_subject("150100", 2));
    forged.tx.nonce += 1; // signature no longer covers the bytes
    let e = a.submit(0, &forged, false).expect_err("bad signature");
    assert_eq!(e.status, 422, "{e}");
    assert!(
        e.body["error"].as_str().unwrap().contains("signature"),
        "{e}"
    );
    let ok = a.sign(&key, nonce, register_subject("150100", 3));
    assert_eq!(a.submit(0, &ok, true).unwrap().status, TxState::Committed);
    let replay = a.sign(&key, nonce, register_subject("150100", 4));
    let e = a.submit(0, &replay, false).expect_err("stale nonce");
    assert!(e.status == 409 || e.status == 422, "{e}");

    // A batch: each entry admitted or refused on its own, with the single route's error code.
    let batch_url = format!("{}/v1/txs", a.api(2));
    let first = a.sign(&key, nonce + 1, register_subject("150100", 5));
    let second = a.sign(&key, nonce + 2, register_subject("150100", 6));
    let answer = harness::post(
        &batch_url,
        &json!({"txs": [
            hex::encode(first.encode()),
            "zz",
            hex::encode(forged.encode()),
            hex::encode(other_chain.encode()),
            hex::encode(second.encode()),
        ]}),
    )
    .expect("a batch with bad entries is still answered");
    assert_eq!(answer["accepted"], 2, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["hash"], first.hash().to_hex(), "{answer}");
    assert_eq!(results[0]["status"], "pending", "{answer}");
    assert_eq!(results[1]["code"], "INVALID_INPUT", "{answer}");
    assert!(
        results[1]["error"]
            .as_str()
            .unwrap()
            .contains("txs[1] is not hex"),
        "{answer}"
    );
    assert!(
        results[2]["error"].as_str().unwrap().contains("signature"),
        "{answer}"
    );
    assert!(
        results[3]["error"]
            .as_str()
            .unwrap()
            .contains("another-chain"),
        "{answer}"
    );
    assert_eq!(results[4]["status"], "pending", "{answer}");
    for (body, needle) in [
        (json!({"txs": []}), "1 to 10000"),
        (json!({"tx": "00"}), "missing field `txs`"),
    ] {
        let e = harness::post(&batch_url, &body).expect_err("malformed batch");
        assert!(e.status == 400 || e.status == 422, "{e}");
        assert!(e.body["error"].as_str().unwrap().contains(needle), "{e}");
    }
    // Both good entries commit, on every member.
    a.wait_height(0, a.height(2).unwrap() + 2, MINUTE);
    for tx in [&first, &second] {
        let url = format!("{}/v1/tx/{}", a.api(3), tx.hash().to_hex());
        let deadline = Instant::now() + MINUTE;
        while harness::get(&url).map(|r| r["status"].clone()).ok() != Some(json!("committed")) {
            assert!(Instant::now() < deadline, "{} not committed", tx.hash());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Bad query input gets a 400 naming the problem.
    for (path, needle) in [
        ("/v1/blocks/abc", "not a number"),
        ("/v1/tx/xyz", "transaction hash"),
        ("/v1/subjects/91150100MA0N12341B", "USCC"),
        ("/v1/nonce/12", "public key"),
    ] {
        let e = harness::get(&format!("{}{path}", a.api(1))).expect_err(path);
        assert_eq!(e.status, 400, "{path}: {e}");
        let message = e.body["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            message.contains(&needle.to_lowercase()),
            "{path}: {message}"
        );
    }

    // Nothing of the rejected transactions reached any member's chain.
    let tip = a.wait_height(1, a.height(0).unwrap(), MINUTE);
    for tx in [&other_chain, &forged, &replay] {
        for i in 0..4 {
            let e = harness::get(&format!("{}/v1/tx/{}", a.api(i), tx.hash().to_hex()))
                .expect_err("rejected transaction must be unknown");
            assert_eq!(e.status, 404, "member {i}: {e}");
        }
    }
    for uscc in [
        harness::test_uscc("150100", 1),
        harness::test_uscc("150100", 2),
        harness::test_uscc("150100", 4),
    ] {
        let e =
            harness::get(&format!("{}/v1/subjects/{uscc}", a.api(2))).expect_err("not registered");
        assert_eq!(e.status, 404, "{e}");
    }
    a.assert_same_chain(&[0, 1], tip);
}

/// Runs `caihong args…` and returns stdout, failing the test with both streams otherwise.
fn cli(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "caihong {args:?}:\n{out}\n{err}");
    out
}

fn extraction_view(a: &Alliance, i: usize, x: &str) -> Value {
    a.get(i, &format!("/v1/extractions/{x}"))
}

/// Every `expert` value anywhere in a JSON answer.
fn experts_in(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("expert", Value::String(e)) => vec![e.clone()],
                _ => experts_in(v),
            })
            .collect(),
        Value::Array(a) => a.iter().flat_map(experts_in).collect(),
        _ => Vec::new(),
    }
}

/// A cross-region extraction (远程异地评标) over four processes, through the CLI: Hohhot
/// requests and seals; before the award the other members' nodes show no expert but their
/// own seats; two homes confirm, one declines and the chain seats the next backup; Hohhot
/// publishes the result and every member verifies the whole draw.
fn sealed_extraction_across_four_members(a: &Alliance) {
    use caihong_chaincode::experts::{ExpertAction, ExpertInfo, expert_id};
    let homes: Vec<String> = (0..4)
        .map(|i| a.members[i].home.display().to_string())
        .collect();
    let names = ["hohhot", "baotou", "ordos", "yinchuan"];
    let mut pool = std::collections::BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let key = a.admin_key(i);
        let nonce = a.next_nonce(i, &key);
        let region = a.home(i).genesis.members[i].region_code.clone();
        for k in 0..3u32 {
            let id = expert_id(&format!("{region}19800101{:04}", i as u32 * 10 + k));
            let info = ExpertInfo {
                id,
                name: format!("{name}专家{}", k + 1),
                specialties: vec!["A010101".into()],
                title: "高级工程师".into(),
                employer_uscc: harness::test_uscc(&region, 900 + k),
            };
            let tx = a.sign(
                &key,
                nonce + k as u64,
                Action::Expert(ExpertAction::Register(Box::new(info))),
            );
            let answer = a.submit(i, &tx, k == 2).expect("expert registered");
            if k == 2 {
                assert_eq!(answer.status, TxState::Committed, "{answer:?}");
            }
            pool.insert(id.to_hex(), *name);
        }
    }
    let dir = a.dir.path();
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 86_400_000;
    let request = json!({
        "project_code": "HHHT-2026-SEALED",
        "window_start": start_ms,
        "window_end": start_ms + 8 * 3_600_000,
        "requirements": [{"specialty": "A010101", "count": 5, "backups": 2}],
        "tenderee_uscc": harness::test_uscc("150100", 800),
        "bidder_usccs": [harness::test_uscc("150200", 801)],
        "remote": {"members": ["baotou", "ordos", "yinchuan"], "min_outside": 3}
    });
    let request_path = dir.join("sealed-request.json");
    std::fs::write(&request_path, request.to_string()).unwrap();
    let secret = dir.join("sealed.secret");
    let (req, sec) = (request_path.to_str().unwrap(), secret.to_str().unwrap());
    let x = cli(&[
        "tx",
        "--home",
        &homes[0],
        "-q",
        "extraction",
        "request",
        "--file",
        req,
        "--secret-file",
        sec,
    ]);
    let x = x.trim().to_string();
    cli(&[
        "tx",
        "--home",
        &homes[0],
        "--wait",
        "extraction",
        "seal",
        "--extraction",
        &x,
        "--secret-file",
        sec,
    ]);
    let tip = a.height(0).unwrap();
    for i in 0..4 {
        a.wait_height(i, tip, MINUTE);
    }

    // Before the award: the requester's node shows the whole committee, a home only its own
    // experts, and the sealed view shows none, on every node.
    let own = extraction_view(a, 0, &x);
    assert_eq!(own["view"], "requester", "{own}");
    let committee: Vec<(String, String)> = own["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["home"].as_str().unwrap().to_string(),
                s["expert"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(committee.len(), 7, "5 seats and 2 backups: {own}");
    for (home, e) in &committee {
        assert_eq!(
            pool.get(e),
            Some(&home.as_str()),
            "each slot is sealed to its expert's home"
        );
    }
    for (i, name) in names.iter().enumerate() {
        let sealed = a.get(i, &format!("/v1/extractions/{x}?view=sealed"));
        assert_eq!(sealed["view"], "sealed");
        assert!(experts_in(&sealed).is_empty(), "member {i}: {sealed}");
        let text = sealed.to_string();
        for (_, e) in &committee {
            assert!(!text.contains(e.as_str()), "member {i} leaks {e}");
        }
        if i > 0 {
            let view = extraction_view(a, i, &x);
            let mine: Vec<&(String, String)> =
                committee.iter().filter(|(h, _)| h == name).collect();
            let shown = experts_in(&view);
            assert_eq!(
                shown.len(),
                mine.len(),
                "member {i} sees exactly its own: {view}"
            );
            assert_eq!(
                view["view"],
                if mine.is_empty() { "sealed" } else { "home" }
            );
        }
    }

    // Two homes answer for their seated experts; the first declines one, and the chain seats
    // the first backup that keeps the rules.
    let seated = |v: &Value, home: &str| -> Vec<String> {
        v["seats"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["home"] == home && s["seated"] == true && s["answer"] == "pending")
            .map(|s| s["expert"].as_str().unwrap().to_string())
            .collect()
    };
    // The draw is random. The first answering home declines one seat; the requester's own
    // home comes first when it has a seat, since its decline leaves the outside count as it
    // was and so always seats the first backup; when it has none, all five seats are outside
    // (more than the minimum of 3) and any decline does. At most 3 experts per home are
    // eligible, so at least two homes hold seats.
    let answering: Vec<usize> = (0..4)
        .filter(|&i| !seated(&own, names[i]).is_empty())
        .take(2)
        .collect();
    assert_eq!(
        answering.len(),
        2,
        "five seats across two homes or more: {own}"
    );
    let mut declined = None;
    for &i in &answering {
        for e in seated(&extraction_view(a, i, &x), names[i]) {
            let decline = declined.is_none();
            let mut args = vec![
                "tx",
                "--home",
                &homes[i],
                "--wait",
                "extraction",
                "respond",
                "--extraction",
                &x,
                "--expert",
                &e,
            ];
            if decline {
                args.push("--decline");
                declined = Some(e.clone());
            }
            cli(&args);
        }
    }
    let after = extraction_view(a, 0, &x);
    let promoted: Vec<&Value> = after["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["backup"] == true && s["seated"] == true)
        .collect();
    assert_eq!(promoted.len(), 1, "the decline seated one backup: {after}");
    assert!(promoted[0]["promoted_height"].is_u64(), "{after}");
    // Every remaining seat is confirmed by its home.
    for i in 0..4 {
        for e in seated(&extraction_view(a, i, &x), names[i]) {
            cli(&[
                "tx",
                "--home",
                &homes[i],
                "--wait",
                "extraction",
                "respond",
                "--extraction",
                &x,
                "--expert",
                &e,
            ]);
        }
    }
    assert_eq!(extraction_view(a, 0, &x)["status"], "Confirmed");

    // The award: Hohhot reveals; every member re-derives and verifies.
    cli(&[
        "tx",
        "--home",
        &homes[0],
        "--wait",
        "extraction",
        "publish",
        "--extraction",
        &x,
        "--secret-file",
        sec,
    ]);
    let tip = a.height(0).unwrap();
    for i in 0..4 {
        a.wait_height(i, tip, MINUTE);
        let v = extraction_view(a, i, &x);
        assert_eq!(v["view"], "published", "member {i}: {v}");
        assert_eq!(v["rederivation"]["verified"], true, "member {i}: {v}");
        assert_eq!(v["published"]["verdict"], "Verified", "member {i}: {v}");
        let published: Vec<String> = v["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["expert"].as_str().unwrap().to_string())
            .collect();
        let before: Vec<String> = committee.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(
            published, before,
            "member {i}: the published committee is the sealed one"
        );
        let declined_seat = v["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["expert"].as_str() == declined.as_deref())
            .unwrap();
        assert_eq!(declined_seat["answer"], "declined");
    }
    let text = cli(&["query", "--home", &homes[2], "extraction", &x]);
    assert!(text.starts_with("shown: published view"), "{text}");
    eprintln!(
        "sealed extraction {x}: 7 slots sealed to {:?}; one decline, one backup seated; \
         verified on 4 members",
        committee
            .iter()
            .map(|(h, _)| h.as_str())
            .collect::<Vec<_>>()
    );
}
