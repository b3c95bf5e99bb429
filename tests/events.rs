//! The committed-event feed (`GET /v1/events`) as a client uses it: read page by page with a
//! stored cursor while transactions commit, across a SIGKILL and restart of the member being
//! read, and end with exactly the feed a fresh reader gets from genesis. One four-member
//! alliance for the whole file.

mod harness;

use std::time::{Duration, Instant};

use caihong_chaincode::credit::{
    CreditAction, CreditKind, CreditRecordInput, PenaltyCategory, Severity,
};
use caihong_chaincode::types::parse_date;
use caihong_chaincode::{Action, Hash, SignedTransaction};
use caihong_node::contract::{Event, EventsAnswer};
use harness::{Alliance, get, register_subject, run, test_uscc};

/// The member whose feed is read (and killed); transactions go through member 0.
const READER: usize = 1;
const REGION: &str = "150100";

fn credit_record(n: u32) -> Action {
    Action::Credit(CreditAction::Record(Box::new(CreditRecordInput {
        kind: CreditKind::Violation,
        subject_uscc: test_uscc(REGION, n),
        subject_name: format!("测试投标人{n}有限公司"),
        document_no: format!("事件测罚〔2026〕{n}号"),
        violation_type: "未按规定提交投标保证金".into(),
        legal_basis: "《中华人民共和国招标投标法》第五十三条".into(),
        penalty_categories: vec![PenaltyCategory::Fine],
        content: "罚款".into(),
        fine_fen: 50_000,
        decision_date: parse_date("2026-03-01").unwrap(),
        penalty_end_date: None,
        publication_end_date: parse_date("2026-03-31").unwrap(),
        authority_name: "测试发展和改革委员会".into(),
        authority_uscc: String::new(),
        severity: Severity::General,
        rating: None,
    })))
}

/// Subject `n` and a credit record about it, for each `n` in `range`.
fn actions(range: std::ops::Range<u32>) -> Vec<Action> {
    range
        .flat_map(|n| [register_subject(REGION, n), credit_record(n)])
        .collect()
}

/// Signs `actions` with member 0's admin key at consecutive nonces and sends them in one batch
/// to member 0; returns their hashes.
fn submit(a: &Alliance, actions: Vec<Action>) -> Vec<Hash> {
    let key = a.admin_key(0);
    let first = a.next_nonce(0, &key);
    let txs: Vec<SignedTransaction> = actions
        .into_iter()
        .zip(first..)
        .map(|(action, nonce)| a.sign(&key, nonce, action))
        .collect();
    let answer = a.client(0).post_batch(&txs).expect("batch");
    assert_eq!(answer.accepted, txs.len(), "{answer:?}");
    txs.iter().map(|t| t.hash()).collect()
}

/// Waits until member `i` has committed every one of `hashes`; returns whether each succeeded.
fn committed(a: &Alliance, i: usize, hashes: &[Hash]) -> Vec<bool> {
    let deadline = Instant::now() + Duration::from_secs(60);
    hashes
        .iter()
        .map(|h| {
            loop {
                if let Ok(t) = a.client(i).tx(h)
                    && t.is_final()
                {
                    return t.output.is_some();
                }
                assert!(
                    Instant::now() < deadline,
                    "{h} not committed on member {i}\n{}",
                    a.every_log_tail()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .collect()
}

fn page(a: &Alliance, i: usize, query: &str) -> EventsAnswer {
    let v = a.get(i, &format!("/v1/events?{query}"));
    serde_json::from_value(v).expect("an EventsAnswer")
}

/// Whether an answer ends at a whole height at or past the tip: nothing more to read yet.
fn caught_up(p: &EventsAnswer) -> bool {
    !p.next.contains(':') && p.next.parse::<u64>().unwrap() >= p.tip
}

/// Every event after `after` on member `i`, `limit` a page, until caught up at `height` or
/// later; returns them and the cursor to go on from.
fn read_to(
    a: &Alliance,
    i: usize,
    after: &str,
    kinds: &str,
    limit: usize,
    height: u64,
) -> (Vec<Event>, String) {
    let mut after = after.to_string();
    let mut events = Vec::new();
    loop {
        let p = page(a, i, &format!("after={after}&kinds={kinds}&limit={limit}"));
        assert!(p.events.len() <= limit);
        events.extend(p.events.iter().cloned());
        let at_tip = caught_up(&p);
        after = p.next;
        if at_tip && p.tip >= height {
            return (events, after);
        }
        if at_tip {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn height_of(a: &Alliance, i: usize, hash: &Hash) -> u64 {
    a.client(i).tx(hash).unwrap().height.unwrap()
}

#[test]
fn a_reader_with_a_cursor_gets_every_event_once_across_a_restart() {
    let mut a = Alliance::start_new(4);
    let mut collected: Vec<Event> = Vec::new();

    // A first batch, one of it failing (subject 1 twice): failed transactions give no event.
    let mut batch = actions(1..5);
    batch.push(register_subject(REGION, 1));
    let first = submit(&a, batch);
    let ok = committed(&a, 0, &first);
    assert_eq!(ok.iter().filter(|ok| !**ok).count(), 1, "{ok:?}");
    let failed = first[ok.iter().position(|ok| !ok).unwrap()];

    // Read in small pages while a second batch commits.
    let p = page(&a, READER, "after=0&limit=3");
    assert_eq!(p.events.len(), 3);
    collected.extend(p.events);
    let second = submit(&a, actions(5..9));
    committed(&a, 0, &second);
    let tip = height_of(&a, 0, second.last().unwrap());
    let (events, cursor) = read_to(&a, READER, &p.next, "", 3, tip);
    collected.extend(events);

    // The member being read is killed; more commits while it is down; it comes back and the
    // reader goes on from its stored cursor.
    a.kill(READER);
    let third = submit(&a, actions(9..13));
    committed(&a, 0, &third);
    let tip = height_of(&a, 0, third.last().unwrap());
    a.start(READER);
    a.wait_height(READER, tip, Duration::from_secs(60));
    let (events, cursor) = read_to(&a, READER, &cursor, "", 4, tip);
    collected.extend(events);

    // A long-poll answers when a transaction commits, well before its wait ends.
    let tx = {
        let key = a.admin_key(0);
        let nonce = a.next_nonce(0, &key);
        a.sign(&key, nonce, register_subject(REGION, 13))
    };
    let started = Instant::now();
    let sender = {
        let client = a.client(0);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            client.post(&tx, false).expect("submitted");
        })
    };
    let polled = page(&a, READER, &format!("after={cursor}&wait=5"));
    let waited = started.elapsed();
    sender.join().unwrap();
    assert_eq!(polled.events.len(), 1, "{polled:?}");
    assert_eq!(polled.events[0].kind, "subject.registered");
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_millis(4500),
        "the long-poll answered after {waited:?}"
    );
    collected.extend(polled.events);

    // Exactly the feed a fresh reader gets from genesis, on this member and another: no gap,
    // no duplicate, the same order.
    let tip = a.height(READER).unwrap();
    for member in [READER, 2] {
        let (fresh, _) = read_to(&a, member, "0", "", 1000, tip);
        let cursors =
            |events: &[Event]| events.iter().map(|e| e.cursor.clone()).collect::<Vec<_>>();
        assert_eq!(cursors(&collected), cursors(&fresh), "member {member}");
        assert_eq!(collected, fresh, "member {member}");
    }
    let subjects = collected
        .iter()
        .filter(|e| e.kind == "subject.registered")
        .count();
    assert_eq!(subjects, 13);
    assert!(
        collected
            .iter()
            .all(|e| e.tx_hash.as_deref() != Some(&failed.to_hex())),
        "the failed transaction has no event"
    );
    let mut positions: Vec<(u64, u32)> = collected
        .iter()
        .map(|e| {
            let (h, n) = e.cursor.split_once(':').unwrap();
            (h.parse().unwrap(), n.parse().unwrap())
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    positions.dedup();
    assert_eq!(positions.len(), collected.len());

    // The credit.recorded events are the chain's credit records, in order; kinds=credit gives
    // them with the same cursors.
    let records = a.get(READER, "/v1/credit/since/0?limit=10000");
    let chain_ids: Vec<u64> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    let credit: Vec<&Event> = collected
        .iter()
        .filter(|e| e.kind == "credit.recorded")
        .collect();
    let event_ids: Vec<u64> = credit
        .iter()
        .map(|e| e.data["id"].as_u64().unwrap())
        .collect();
    assert_eq!(event_ids, chain_ids);
    assert_eq!(chain_ids.len(), 12);
    let (filtered, _) = read_to(&a, READER, "0", "credit", 5, tip);
    assert_eq!(filtered.iter().collect::<Vec<_>>(), credit);

    // The CLI prints the same events, one JSON line each.
    let (code, out, err) = run(&[
        "query",
        "events",
        "--node",
        a.api(READER),
        "--kinds",
        "credit",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let printed: Vec<Event> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed, filtered);
    assert!(err.contains("next cursor: "), "{err}");

    // Malformed cursors and unknown families are refused, saying what is valid.
    for (query, says) in [
        ("after=12:x", "H:N (after event N of block H"),
        ("after=-1", "H:N (after event N of block H"),
        ("kinds=credit,bids", "the families are credit, subject, ca"),
    ] {
        let e = get(&format!("{}/v1/events?{query}", a.api(READER))).unwrap_err();
        assert_eq!(e.status, 400, "{query}: {e}");
        assert!(e.body["error"].as_str().unwrap().contains(says), "{e}");
    }
}
