//! Verified credit sync as another region runs it: `caihong sync credit` against a member,
//! against a proxy that alters what the member serves (a record, a block, a gap), and with a
//! fallback from the forger to an honest member; then its sinks under load and kills: a file
//! that failed reruns never shorten, a PostgreSQL database (a throwaway cluster from
//! tests/postgres.sh) killed with SIGKILL over many rounds, and a push endpoint that is down,
//! then answers 500 for some records. One alliance serves the whole file.

mod harness;
mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caihong_node::light::{LightBlock, decode_light, encode_light};
use harness::{Alliance, caihong, free_ports, run};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use workload::Workload;

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

/// `caihong sync credit --from SOURCE --genesis GENESIS DESTINATION…`.
fn sync_into(source: &str, genesis: &Path, destination: &[&str]) -> (i32, String, String) {
    let mut args = vec!["sync", "credit", "--from", source, "--genesis"];
    args.push(genesis.to_str().unwrap());
    args.extend_from_slice(destination);
    run(&args)
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
fn credit_sync_verifies_keeps_and_delivers_exactly_once() {
    let a = Alliance::start_new(4);
    let (code, out, err) = run(&["demo", "--dir", a.dir.path().join("net").to_str().unwrap()]);
    assert_eq!(code, 0, "demo: {out}\n{err}");
    let genesis = a.members[0].home.join("genesis.json");
    let dir = tempfile::tempdir().unwrap();
    verifies_from_genesis_and_names_a_node_that_forges(&a, &genesis, dir.path());
    failed_reruns_never_shorten_the_file(&a, &genesis, dir.path());
    // The push follows the chain while the load and the database kills run; it is killed and
    // restarted halfway.
    let mut push = Push::start(&a, &genesis, dir.path());
    let pg = Postgres::start();
    postgres_sink_survives_kills_under_load(&a, &genesis, &pg, dir.path(), &mut push);
    push.delivers_every_record_once_in_order(&a, &genesis);
}

fn verifies_from_genesis_and_names_a_node_that_forges(a: &Alliance, genesis: &Path, dir: &Path) {
    let genesis = genesis.to_path_buf();

    // An honest member: both demo records, each tied to a committed transaction.
    let file = dir.join("credit.jsonl");
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

    // Rerun: resumes from the checkpoint without verifying again, nothing repeated. Filters
    // keep only what is asked for.
    let (code, stdout, err) = sync(&[a.api(1)], &genesis, &file, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("resuming") && stdout.contains("not verified again"),
        "{stdout}"
    );
    assert!(!stdout.contains("verified blocks 1..="), "{stdout}");
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
    assert!(outcome["resumed_from"].as_u64().unwrap() >= 1, "{outcome}");
    assert_eq!(lines(&file), records);
    // A checkpoint lost (or a file from an older caihong): verified from genesis again, and
    // the records already in the file are not written twice.
    std::fs::remove_file(dir.join("credit.jsonl.checkpoint.json")).unwrap();
    let (code, stdout, err) = sync(&[a.api(2)], &genesis, &file, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no checkpoint"), "{err}");
    assert!(stdout.contains("verified blocks 1..="), "{stdout}");
    assert_eq!(lines(&file), records);
    let blacklist = dir.join("blacklist.jsonl");
    let (code, _, err) = sync(&[a.api(3)], &genesis, &blacklist, &["--kind", "blacklist"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&blacklist), records[1..].to_vec());
    let (code, _, _) = sync(
        &[a.api(3)],
        &genesis,
        &dir.join("none.jsonl"),
        &["--member", "ordos"],
    );
    assert_eq!(code, 0);
    assert!(lines(&dir.join("none.jsonl")).is_empty());

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
        let forged = dir.join(format!("{}.jsonl", name.replace(' ', "-")));
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
    let (code, _, err) = sync(&["http://127.0.0.1:9"], &genesis, &dir.join("x"), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http://127.0.0.1:9"), "{err}");
}

/// The bug this guards against: a rerun that could reach no source first rewrote the file
/// without its last height's records, then failed; four such reruns emptied a 3-line file.
fn failed_reruns_never_shorten_the_file(a: &Alliance, genesis: &Path, dir: &Path) {
    let file = dir.join("kept.jsonl");
    let (code, _, err) = sync(&[a.api(0)], genesis, &file, &[]);
    assert_eq!(code, 0, "{err}");
    let before = std::fs::read(&file).unwrap();
    assert!(!before.is_empty());
    let checkpoint = dir.join("kept.jsonl.checkpoint.json");
    let saved = std::fs::read(&checkpoint).unwrap();
    for _ in 0..4 {
        let (code, _, err) = sync(&["http://127.0.0.1:9"], genesis, &file, &[]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("no source reachable"), "{err}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "a failed rerun changed the file"
        );
        assert_eq!(std::fs::read(&checkpoint).unwrap(), saved);
    }
    // A torn last line (a run killed while writing) is cut off and its record written again.
    let whole = lines(&file);
    let last = serde_json::to_string(whole.last().unwrap()).unwrap();
    let mut torn = before[..before.len() - last.len() - 1].to_vec();
    torn.extend_from_slice(&last.as_bytes()[..20]);
    std::fs::write(&file, &torn).unwrap();
    let cut = dir.join("kept.jsonl.checkpoint.json");
    let mut cp: Value = serde_json::from_slice(&saved).unwrap();
    cp["out_bytes"] = (before.len() - last.len() - 1).into();
    cp["last_credit"] = whole[whole.len() - 2]["record"]["id"].clone();
    cp["trusted"] = Value::Null;
    std::fs::write(&cut, cp.to_string()).unwrap();
    let (code, _, err) = sync(&[a.api(1)], genesis, &file, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("torn"), "{err}");
    assert_eq!(lines(&file), whole);
    // Other filters on the same file would leave holes: refused, the file untouched.
    let (code, _, err) = sync(&[a.api(1)], genesis, &file, &["--kind", "blacklist"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("same filters"), "{err}");
    assert_eq!(lines(&file), whole);
}

/// A throwaway PostgreSQL cluster (tests/postgres.sh), stopped and removed when dropped.
struct Postgres {
    dir: String,
    url: String,
}

impl Postgres {
    fn start() -> Postgres {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/postgres.sh");
        let out = std::process::Command::new(script)
            .args(["start", &free_ports(1).to_string()])
            .output()
            .expect("tests/postgres.sh runs");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success(),
            "PostgreSQL did not start: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (dir, url) = text.split_once(' ').expect("DIR URL");
        Postgres {
            dir: dir.to_string(),
            url: url.to_string(),
        }
    }

    /// A new, empty database on this cluster.
    fn database(&self, name: &str) -> String {
        let mut admin = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url.replace("/postgres", &format!("/{name}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/postgres.sh");
        let _ = std::process::Command::new(script)
            .args(["stop", &self.dir])
            .status();
    }
}

/// Every credit record on the chain, by id, as member `i` serves it.
fn chain_records(a: &Alliance, i: usize) -> BTreeMap<u64, Value> {
    let mut records = BTreeMap::new();
    let list = a.get(i, "/v1/credit/since/0?limit=10000");
    for r in list.as_array().unwrap() {
        records.insert(r["id"].as_u64().unwrap(), r.clone());
    }
    records
}

/// Starts the load, waits until it committed something, and returns it.
fn load(a: &Alliance, seed: u64) -> Workload {
    let load = Workload::start(a, 4, seed, None);
    load.wait_committed(12);
    load
}

/// Waits until every member passed the highest height any of them has now.
fn settle(a: &Alliance) -> u64 {
    let tip = (0..a.members.len())
        .filter_map(|i| a.height(i))
        .max()
        .unwrap();
    for i in 0..a.members.len() {
        a.wait_height(i, tip + 1, Duration::from_secs(60));
    }
    tip + 1
}

fn postgres_sink_survives_kills_under_load(
    a: &Alliance,
    genesis: &Path,
    pg: &Postgres,
    dir: &Path,
    push: &mut Push,
) {
    let url = pg.database("credit");
    let rounds = 20;
    let load = load(a, 24);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(24);
    for round in 0..rounds {
        let log = std::fs::File::create(dir.join(format!("pg-round-{round}.log"))).unwrap();
        let mut child = caihong()
            .args(["sync", "credit", "--from", a.api(round % 4), "--genesis"])
            .arg(genesis)
            .args(["--to", &url, "--follow", "--poll", "0.2"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..1500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if round == rounds / 2 {
            push.restart(a, genesis);
        }
    }
    let history = load.finish();
    assert!(
        history
            .iter()
            .any(|r| r.domain == "credit"
                && matches!(r.outcome, workload::Outcome::Committed { .. })),
        "the load committed no credit record"
    );
    settle(a);
    let (code, stdout, err) = sync_into(a.api(1), genesis, &["--to", &url, "--json"]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    let outcome: Value = serde_json::from_str(&stdout).unwrap();

    let chain = chain_records(a, 2);
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows = db
        .query(
            "SELECT record_id, record, tx_hash, height FROM credit_records ORDER BY record_id",
            &[],
        )
        .unwrap();
    let mut held = BTreeMap::new();
    for row in &rows {
        let id: i64 = row.get(0);
        let record: Value = row.get(1);
        assert!(
            held.insert(id as u64, record).is_none(),
            "record {id} twice"
        );
    }
    let verified_height = outcome["verified_height"].as_u64().unwrap();
    let expected: BTreeMap<u64, Value> = chain
        .into_iter()
        .filter(|(_, r)| r["height"].as_u64().unwrap() <= verified_height)
        .collect();
    let lost: Vec<&u64> = expected
        .keys()
        .filter(|id| !held.contains_key(id))
        .collect();
    let extra: Vec<&u64> = held
        .keys()
        .filter(|id| !expected.contains_key(id))
        .collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "lost {lost:?}, not on chain {extra:?}"
    );
    for (id, record) in &held {
        let on_chain = &expected[id];
        for field in [
            "tx_hash",
            "document_no",
            "fine_fen",
            "subject_uscc",
            "kind",
            "height",
        ] {
            assert_eq!(record[field], on_chain[field], "record {id} {field}");
        }
    }
    // Subjects: every version the load committed is held, once ((uscc, version) is the key),
    // and every held version was written by a committed transaction.
    let committed: BTreeSet<(String, u64)> = history
        .iter()
        .filter_map(|r| match &r.outcome {
            workload::Outcome::Committed { receipt, .. } if r.domain == "subject" => {
                let v = &receipt["output"]["SubjectVersion"];
                Some((v["uscc"].as_str()?.to_string(), v["version"].as_u64()?))
            }
            _ => None,
        })
        .collect();
    let held_versions: BTreeMap<(String, u64), String> = db
        .query("SELECT uscc, version, tx_hash FROM subject_versions", &[])
        .unwrap()
        .iter()
        .map(|row| {
            let version: i32 = row.get(1);
            ((row.get(0), version as u64), row.get(2))
        })
        .collect();
    let versions = held_versions.len();
    let missing: Vec<_> = committed
        .iter()
        .filter(|k| !held_versions.contains_key(k))
        .collect();
    assert!(missing.is_empty(), "subject versions lost: {missing:?}");
    for ((uscc, version), tx_hash) in &held_versions {
        let tx = a.get(0, &format!("/v1/tx/{tx_hash}"));
        assert_eq!(tx["status"], "committed", "{uscc} v{version}: {tx}");
    }
    let some: String = db
        .query_one(
            "SELECT uscc FROM subjects ORDER BY version DESC, uscc LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    let current = a.get(3, &format!("/v1/subjects/{some}"));
    let row = db
        .query_one(
            "SELECT version, name, subject FROM subjects WHERE uscc = $1",
            &[&some],
        )
        .unwrap();
    let version: i32 = row.get(0);
    assert_eq!(
        current["version"].as_u64(),
        Some(version as u64),
        "{current}"
    );
    assert_eq!(
        current["name"].as_str(),
        Some(row.get::<_, String>(1).as_str())
    );
    println!(
        "postgres sink: {rounds} SIGKILL rounds under load, {} records and {versions} subject \
         versions held, lost=0 duplicated=0; final catch-up {outcome}",
        held.len()
    );

    // Records/s into PostgreSQL: the whole chain into a fresh database, in one run.
    let fresh = pg.database("fresh");
    let (code, stdout, err) = sync_into(a.api(0), genesis, &["--to", &fresh, "--json"]);
    assert_eq!(code, 0, "{err}");
    let outcome: Value = serde_json::from_str(&stdout).unwrap();
    println!(
        "postgres sink, initial sync: {} records, {} heights in {} s ({} records/s, {} heights/s)",
        outcome["records_written"],
        outcome["heights_verified"],
        outcome["seconds"],
        outcome["records_per_second"],
        outcome["heights_per_second"]
    );
    assert_eq!(outcome["records_written"].as_u64(), Some(held.len() as u64));

    // A forging source: refused, and nothing it altered reaches the database.
    let forged_db = pg.database("forged");
    let proxy = tampering_proxy(a.api(1).to_string(), alter_record);
    let (code, stdout, err) = sync_into(&proxy, genesis, &["--to", &forged_db]);
    assert_eq!(code, 1, "{stdout}\n{err}");
    assert!(
        err.contains("REJECTED") && err.contains("state proof does not verify"),
        "{err}"
    );
    let mut db = postgres::Client::connect(&forged_db, postgres::NoTls).unwrap();
    for row in db
        .query("SELECT record_id, record FROM credit_records", &[])
        .unwrap()
    {
        let id: i64 = row.get(0);
        let record: Value = row.get(1);
        assert_eq!(
            record,
            held[&(id as u64)],
            "record {id} differs from the chain's"
        );
    }
    // A second sync into the same database while one runs is refused.
    let mut first = caihong()
        .args(["sync", "credit", "--from", a.api(0), "--genesis"])
        .arg(genesis)
        .args(["--to", &url, "--follow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (code, _, err) = sync_into(a.api(0), genesis, &["--to", &url]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("another caihong sync"), "{err}");
}

/// A push endpoint: a real HTTP server on a port that can be down at first and answer 500 to
/// the first attempt at some records. It keeps each record once by its Idempotency-Key.
struct Receiver {
    accepted: Arc<Mutex<Vec<(String, Value)>>>,
    posts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Receiver {
    /// Listens on `port` after `down_for`; fails the first POST of every key whose record id
    /// `fails` selects.
    fn start(port: u16, down_for: Duration, fails: fn(u64) -> bool) -> Receiver {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let posts = Arc::new(Mutex::new(BTreeMap::new()));
        let (acc, seen) = (accepted.clone(), posts.clone());
        std::thread::spawn(move || {
            std::thread::sleep(down_for);
            let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = BTreeMap::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_lowercase(), v.trim().to_string());
                    }
                }
                let length: usize = headers["content-length"].parse().unwrap();
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let key = headers["idempotency-key"].clone();
                let id: u64 = key.rsplit('/').next().unwrap().parse().unwrap();
                let attempts = {
                    let mut seen = seen.lock().unwrap();
                    let n = seen.entry(key.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                let status = if fails(id) && attempts == 1 {
                    "500 Internal Server Error"
                } else {
                    let mut acc = acc.lock().unwrap();
                    if !acc.iter().any(|(k, _)| *k == key) {
                        acc.push((key, serde_json::from_slice(&body).unwrap()));
                    }
                    "200 OK"
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { accepted, posts }
    }
}

/// `caihong sync credit --post … --follow` against a [`Receiver`] that is down for its first
/// 4 s and fails the first attempt at every 25th record.
struct Push {
    receiver: Receiver,
    endpoint: String,
    state: std::path::PathBuf,
    dir: std::path::PathBuf,
    child: std::process::Child,
    runs: usize,
}

impl Push {
    fn start(a: &Alliance, genesis: &Path, dir: &Path) -> Push {
        let port = free_ports(1);
        let receiver = Receiver::start(port, Duration::from_secs(4), |id| id % 25 == 3);
        let endpoint = format!("http://127.0.0.1:{port}/credit");
        let state = dir.join("push-state.json");
        let child = Push::follow(a, genesis, &endpoint, &state, dir, 0);
        Push {
            receiver,
            endpoint,
            state,
            dir: dir.to_path_buf(),
            child,
            runs: 1,
        }
    }

    fn follow(
        a: &Alliance,
        genesis: &Path,
        endpoint: &str,
        state: &Path,
        dir: &Path,
        run: usize,
    ) -> std::process::Child {
        caihong()
            .args(["sync", "credit", "--from", a.api(run % 4), "--genesis"])
            .arg(genesis)
            .args(["--post", endpoint, "--state"])
            .arg(state)
            .args(["--follow", "--poll", "0.2"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("push-{run}.log"))).unwrap())
            .spawn()
            .unwrap()
    }

    /// SIGKILL, then a new run from the state file (from another member).
    fn restart(&mut self, a: &Alliance, genesis: &Path) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Push::follow(
            a,
            genesis,
            &self.endpoint,
            &self.state,
            &self.dir,
            self.runs,
        );
        self.runs += 1;
    }

    fn delivers_every_record_once_in_order(mut self, a: &Alliance, genesis: &Path) {
        let chain = chain_records(a, 0);
        let started = Instant::now();
        while self.receiver.accepted.lock().unwrap().len() < chain.len() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} of {} records delivered: {}",
                self.receiver.accepted.lock().unwrap().len(),
                chain.len(),
                std::fs::read_to_string(self.dir.join(format!("push-{}.log", self.runs - 1)))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        // A rerun finds nothing left to deliver.
        let (code, stdout, err) = sync_into(
            a.api(0),
            genesis,
            &[
                "--post",
                &self.endpoint,
                "--state",
                self.state.to_str().unwrap(),
                "--json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let outcome: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(outcome["records_written"], 0, "{outcome}");
        let accepted = self.receiver.accepted.lock().unwrap().clone();
        let ids: Vec<u64> = accepted
            .iter()
            .map(|(_, body)| body["record"]["id"].as_u64().unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "delivered out of chain order");
        let delivered: BTreeSet<u64> = ids.iter().copied().collect();
        let on_chain: BTreeSet<u64> = chain.keys().copied().collect();
        assert_eq!(
            delivered, on_chain,
            "delivered records differ from the chain's"
        );
        assert_eq!(ids.len(), delivered.len());
        for (key, body) in &accepted {
            let id = body["record"]["id"].as_u64().unwrap();
            assert_eq!(*key, format!("{}/credit/{id}", a.chain_id));
            assert_eq!(body["record"]["tx_hash"], chain[&id]["tx_hash"]);
        }
        let posts = self.receiver.posts.lock().unwrap();
        let retried = posts.iter().filter(|(_, n)| **n > 1).count();
        assert!(retried > 0, "no record was retried after a 500");
        println!(
            "push: {} records delivered once each in chain order ({} POSTs, {retried} keys \
             POSTed more than once; receiver down the first 4 s, 500 to the first attempt at \
             every 25th record, {} runs, killed between)",
            accepted.len(),
            posts.values().sum::<usize>(),
            self.runs
        );
    }
}
