//! Verified credit sync as another region runs it: `caihong sync credit` against a member,
//! against a proxy that alters what the member serves (a record, a block, a gap), and with a
//! fallback from the forger to an honest member.

mod harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;

use caihong_node::light::{LightBlock, decode_light, encode_light};
use harness::{Alliance, run};
use serde_json::Value;

/// Serves `upstream`'s API on a local port, passing every light answer through `tamper`.
/// Returns its URL; the thread lives as long as the test process.
fn tampering_proxy(upstream: String, tamper: fn(&mut Vec<LightBlock>)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers (GET requests have no body).
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok() && line.trim() != "" {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("/");
            let (status, mut body) = match ureq::get(&format!("{upstream}{path}")).call() {
                Ok(r) => {
                    let mut b = Vec::new();
                    r.into_reader().read_to_end(&mut b).unwrap();
                    (200, b)
                }
                Err(ureq::Error::Status(s, r)) => {
                    let mut b = Vec::new();
                    r.into_reader().read_to_end(&mut b).unwrap();
                    (s, b)
                }
                Err(_) => (502, b"{}".to_vec()),
            };
            if status == 200 && path.starts_with("/v1/light/blocks") {
                let mut blocks = decode_light(&body).unwrap();
                tamper(&mut blocks);
                body = encode_light(&blocks);
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    url
}

/// Changes the fine of the first credit record the answer proves (the proof no longer matches).
#[allow(clippy::ptr_arg)] // one signature for every tamper; `leave_gap` removes
fn alter_record(blocks: &mut Vec<LightBlock>) {
    for b in blocks.iter_mut() {
        if let Some(body) = b.body.as_mut()
            && let Some(proof) = body.credit_proofs.first_mut()
        {
            let mut record: caihong_chaincode::credit::CreditRecord =
                caihong_chaincode::codec::decode(proof.value.as_ref().unwrap()).unwrap();
            record.fine_fen = 1;
            proof.value = Some(caihong_chaincode::codec::encode(&record));
            return;
        }
    }
}

/// Drops a transaction from the first block that has one (the txs root no longer matches).
#[allow(clippy::ptr_arg)] // one signature for every tamper; `leave_gap` removes
fn drop_transaction(blocks: &mut Vec<LightBlock>) {
    for b in blocks.iter_mut() {
        if let Some(body) = b.body.as_mut()
            && !body.txs.is_empty()
        {
            body.txs.pop();
            body.receipts.pop();
            return;
        }
    }
}

/// Leaves out the second block of the answer.
fn leave_gap(blocks: &mut Vec<LightBlock>) {
    if blocks.len() > 1 {
        blocks.remove(1);
    }
}

/// Claims a block of the answer at another state root: its certificate no longer matches.
#[allow(clippy::ptr_arg)] // one signature for every tamper; `leave_gap` removes
fn rewrite_header(blocks: &mut Vec<LightBlock>) {
    if let Some(b) = blocks.last_mut() {
        b.header.state_root = caihong_chaincode::Hash::of(b"forged");
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sync(sources: &[&str], genesis: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["sync", "credit"];
    for s in sources {
        args.extend(["--from", s]);
    }
    args.extend([
        "--genesis",
        genesis.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn credit_sync_verifies_from_genesis_and_names_a_node_that_forges() {
    let a = Alliance::start_new(4);
    let (code, out, err) = run(&["demo", "--dir", a.dir.path().join("net").to_str().unwrap()]);
    assert_eq!(code, 0, "demo: {out}\n{err}");
    let genesis = a.members[0].home.join("genesis.json");
    let dir = tempfile::tempdir().unwrap();

    // An honest member: both demo records, each tied to a committed transaction.
    let file = dir.path().join("credit.jsonl");
    let (code, stdout, err) = sync(&[a.api(0)], &genesis, &file, &[]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    let records = lines(&file);
    assert_eq!(records.len(), 2, "{records:?}");
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["record"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Violation", "Blacklist"]);
    for r in &records {
        let tx = a.get(2, &format!("/v1/tx/{}", r["tx_hash"].as_str().unwrap()));
        assert_eq!(tx["status"], "committed");
        assert_eq!(tx["height"], r["height"]);
    }
    println!("{stdout}");

    // Rerun: resumes, nothing repeated. Filters keep only what is asked for.
    let (code, stdout, err) = sync(&[a.api(1)], &genesis, &file, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("verified blocks 1..="), "{stdout}");
    assert_eq!(lines(&file), records);
    // With --json the outcome is one JSON object on stdout, the commentary on stderr.
    let (code, stdout, err) = sync(&[a.api(1)], &genesis, &file, &["--json"]);
    assert_eq!(code, 0, "{err}");
    let outcome: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(outcome["source"], a.api(1), "{outcome}");
    assert!(outcome["records_written"].is_u64(), "{outcome}");
    assert!(
        outcome["verified_height"].as_u64().unwrap() >= 1,
        "{outcome}"
    );
    assert!(err.contains("resuming"), "{err}");
    assert_eq!(lines(&file), records);
    let blacklist = dir.path().join("blacklist.jsonl");
    let (code, _, err) = sync(&[a.api(3)], &genesis, &blacklist, &["--kind", "blacklist"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&blacklist), records[1..].to_vec());
    let (code, _, _) = sync(
        &[a.api(3)],
        &genesis,
        &dir.path().join("none.jsonl"),
        &["--member", "ordos"],
    );
    assert_eq!(code, 0);
    assert!(lines(&dir.path().join("none.jsonl")).is_empty());

    // Forgers: each is named, exit code 1, and nothing unverified is written.
    for (name, tamper, expect) in [
        (
            "altered record",
            alter_record as fn(&mut Vec<LightBlock>),
            "state proof does not verify",
        ),
        ("dropped transaction", drop_transaction, "txs_root"),
        ("gap", leave_gap, "gap"),
        (
            "rewritten header",
            rewrite_header,
            "certificate is not for this header",
        ),
    ] {
        let proxy = tampering_proxy(a.api(1).to_string(), tamper);
        let forged = dir.path().join(format!("{}.jsonl", name.replace(' ', "-")));
        let (code, stdout, err) = sync(&[&proxy], &genesis, &forged, &[]);
        assert_eq!(code, 1, "{name}: {stdout}\n{err}");
        assert!(
            err.contains("REJECTED") && err.contains(&proxy),
            "{name}: {err}"
        );
        assert!(err.contains(expect), "{name}: {err}");
        for r in lines(&forged) {
            assert!(
                records.contains(&r),
                "{name}: wrote an unverified record {r}"
            );
        }
        // With an honest member as the fallback the sync completes.
        let (code, stdout, err) = sync(&[&proxy, a.api(2)], &genesis, &forged, &[]);
        assert_eq!(code, 0, "{name}: {stdout}\n{err}");
        assert!(err.contains("REJECTED"), "{err}");
        assert_eq!(lines(&forged), records, "{name}");
    }

    // An unreachable source: a local error (exit 2) naming the URL.
    let (code, _, err) = sync(
        &["http://127.0.0.1:9"],
        &genesis,
        &dir.path().join("x"),
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http://127.0.0.1:9"), "{err}");
}
