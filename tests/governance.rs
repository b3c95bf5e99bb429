//! Governance from the terminal, as administrators do it: a new city's node made with
//! `caihong init` waits, refused, while admins propose and vote with `caihong tx governance`;
//! once the change takes effect it syncs from genesis and is a validator the alliance needs to
//! commit.
//! Then a member is removed the same way and the smaller set commits without it, an admin key
//! and a node key are rotated, and another region's sync verifies through all of it.

mod harness;

use std::time::Duration;

use harness::{Alliance, run};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// Runs `caihong tx --home HOME --wait --json <args…>`; returns (exit code, answer, stderr).
fn tx(a: &Alliance, member: usize, args: &[&str]) -> (i32, Value, String) {
    let home = a.members[member].home.to_str().unwrap().to_string();
    let mut full = vec!["tx", "--home", &home, "--wait", "--json"];
    full.extend_from_slice(args);
    let (code, out, err) = run(&full);
    let answer = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, answer, err)
}

/// Member `voter` approves proposal `id`; panics unless it committed.
fn approve(a: &Alliance, voter: usize, id: u64) {
    let (code, v, err) = tx(
        a,
        voter,
        &["governance", "vote", "--proposal", &id.to_string()],
    );
    assert_eq!(code, 0, "vote by member {voter}: {v} {err}");
    assert_eq!(v["status"], "committed", "{v}");
}

/// The height at which a passed proposal takes (or took) effect, as `member` sees it (waiting a
/// little: the last vote may have committed on another member's node a moment earlier).
fn effective_height(a: &Alliance, member: usize, id: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let p = a.get(member, &format!("/v1/governance/proposals/{id}"));
        let status = &p["status"];
        if let Some(h) = status["Passed"]["effective_height"]
            .as_u64()
            .or_else(|| status["Applied"]["height"].as_u64())
        {
            return h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "proposal {id} has not passed: {p}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn member_ids(a: &Alliance, i: usize) -> Vec<String> {
    a.get(i, "/v1/members")
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_fifth_city_joins_by_vote_and_a_removed_member_is_no_longer_needed() {
    let mut a = Alliance::start_new(4);

    // The new city's node may start before it is a member, but members refuse its connections
    // until the alliance admits it: it neither syncs nor votes.
    let new = a.add_home("lanzhou");
    a.start(new);
    assert_eq!(a.status(new)["validator"], false);

    // Its admin cannot vote for the alliance yet: rejected by the chain, exit code 1.
    let (code, _, err) = tx(&a, new, &["governance", "vote", "--proposal", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("UNKNOWN_SIGNER"), "{err}");

    // Hohhot proposes; the proposer's vote counts, two more make 3 of 4 (more than 2/3).
    let new_home = a.members[new].home.to_str().unwrap().to_string();
    let p2p = a.members[new].p2p.clone();
    let (code, v, err) = tx(
        &a,
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
            &new_home,
            "--p2p",
            &p2p,
        ],
    );
    assert_eq!(code, 0, "{v} {err}");
    let add = v["output"]["Proposal"].as_u64().expect("proposal id");
    // A vote from the terminal says where the proposal stands: open after the first of the
    // three approvals it needs (the proposer's counts), passed after the last.
    let vote_text = |member: usize| {
        let home = a.members[member].home.to_str().unwrap().to_string();
        let id = add.to_string();
        let args = [
            "tx",
            "--home",
            &home,
            "--wait",
            "governance",
            "vote",
            "--proposal",
            &id,
        ];
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{out} {err}");
        out
    };
    let out = vote_text(1);
    assert!(
        out.contains(&format!("proposal (提案) {add}: still open")),
        "{out}"
    );
    // The same member voting twice is refused.
    let (code, v, _) = tx(
        &a,
        1,
        &["governance", "vote", "--proposal", &add.to_string()],
    );
    assert_eq!(code, 1, "{v}");
    let out = vote_text(2);
    assert!(
        out.contains(&format!(
            "proposal (提案) {add}: passed; takes effect at height"
        )),
        "{out}"
    );
    let effective = effective_height(&a, 0, add);

    // From the effective height on, members accept and dial the new node; it syncs from genesis
    // and is a validator.
    a.wait_height(0, effective + 2, MINUTE);
    a.wait_height(new, effective + 2, MINUTE);
    assert!(member_ids(&a, 2).contains(&"lanzhou".to_string()));
    assert_eq!(a.status(new)["validator"], true, "{}", a.log_tail(new));

    // With five validators a quorum is four: with Yinchuan down the chain commits only if the
    // new city votes.
    a.kill(3);
    let before = a.height(0).unwrap();
    for i in [0, 1, 2, new] {
        a.wait_height(i, before + 3, MINUTE);
    }
    let tip = a.height(0).unwrap();
    a.assert_same_chain(&[0, 1, 2, new], tip);

    // Remove Yinchuan (still down): 4 of 5 approve, the new city among them.
    let (code, v, err) = tx(
        &a,
        0,
        &["governance", "propose-remove-member", "--id", "yinchuan"],
    );
    assert_eq!(code, 0, "{v} {err}");
    let remove = v["output"]["Proposal"].as_u64().expect("proposal id");
    approve(&a, 1, remove);
    approve(&a, 2, remove);
    approve(&a, new, remove);
    let effective = effective_height(&a, 0, remove);
    a.wait_height(0, effective + 1, MINUTE);
    assert!(!member_ids(&a, 0).contains(&"yinchuan".to_string()));

    // Four validators now: a quorum is three, so Hohhot, Baotou and Lanzhou commit with
    // Ordos stopped too.
    a.kill(2);
    let before = a.height(0).unwrap();
    for i in [0, 1, new] {
        a.wait_height(i, before + 3, MINUTE);
    }
    let tip = a.height(0).unwrap();
    a.assert_same_chain(&[0, 1, new], tip);
    println!(
        "lanzhou joined at height {}, yinchuan removed at height {effective}; tip {tip}",
        effective_height(&a, 0, add)
    );

    // Baotou rotates its admin key by proposal: afterwards the old key signs nothing and the
    // new one acts for Baotou.
    let new_key = a.dir.path().join("baotou-admin-2.json");
    let (code, new_public, err) = run(&["keygen", "--out", new_key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let old_public = hex::encode(a.admin_key(1).verifying_key().to_bytes());
    let (code, v, err) = tx(
        &a,
        0,
        &[
            "governance",
            "propose-rotate-admin-key",
            "--member",
            "baotou",
            "--old-key",
            &old_public,
            "--new-key",
            new_public.trim(),
        ],
    );
    assert_eq!(code, 0, "{v} {err}");
    let rotate = v["output"]["Proposal"].as_u64().expect("proposal id");
    approve(&a, 1, rotate);
    approve(&a, new, rotate);
    let effective = effective_height(&a, 0, rotate);
    a.wait_height(0, effective + 1, MINUTE);
    let parameter = [
        "governance",
        "propose-parameter",
        "--name",
        "proposal_ttl_blocks",
        "--value",
        "20000",
    ];
    let (code, _, err) = tx(&a, 1, &parameter);
    assert_eq!(code, 1, "the old admin key still signs: {err}");
    let mut with_new_key = vec!["--key", new_key.to_str().unwrap()];
    with_new_key.extend(parameter);
    let (code, v, err) = tx(&a, 1, &with_new_key);
    assert_eq!(code, 0, "the new admin key: {v} {err}");
    assert_eq!(v["status"], "committed", "{v}");

    // Baotou's node key is rotated the same way. Ordos comes back first, so that Hohhot, Ordos
    // and Lanzhou are a quorum while Baotou's node still has the old key.
    a.start(2);
    a.wait_height(2, a.height(0).unwrap(), MINUTE);
    let node_key = a.dir.path().join("baotou-node-2.json");
    let (code, node_public, err) = run(&["keygen", "--out", node_key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, v, err) = tx(
        &a,
        0,
        &[
            "governance",
            "propose-rotate-node-key",
            "--member",
            "baotou",
            "--new-key",
            node_public.trim(),
        ],
    );
    assert_eq!(code, 0, "{v} {err}");
    let rotate_node = v["output"]["Proposal"].as_u64().expect("proposal id");
    approve(&a, 2, rotate_node);
    approve(&a, new, rotate_node);
    let rotated_at = effective_height(&a, 0, rotate_node);
    a.wait_height(0, rotated_at + 1, MINUTE);
    // Baotou installs the new key (its genesis file still lists the old one) and restarts.
    a.stop(1);
    std::fs::copy(
        &node_key,
        caihong_node::config::Home::node_key_path(&a.members[1].home),
    )
    .unwrap();
    a.start(1);
    // With Ordos stopped again a quorum needs Baotou, so the chain moves only if Baotou's node
    // signs with its new key.
    a.kill(2);
    let before = a.height(0).unwrap();
    for i in [0, 1, new] {
        a.wait_height(i, before + 3, MINUTE);
    }
    assert_eq!(a.status(1)["validator"], true, "{}", a.log_tail(1));
    assert_eq!(
        a.status(1)["node_key"],
        node_public.trim(),
        "{}",
        a.log_tail(1)
    );
    println!(
        "baotou's node key rotated at height {rotated_at}; it signs again from height {}",
        before + 1
    );

    // Another region verifies the chain from genesis through every membership change: the
    // certificates after each change are signed by the new set, which it learns from headers.
    let out = a.dir.path().join("credit.jsonl");
    let genesis = a.members[0].home.join("genesis.json");
    let (code, stdout, err) = run(&[
        "sync",
        "credit",
        "--from",
        a.api(new),
        "--genesis",
        genesis.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    assert!(stdout.contains("verified blocks 1..="), "{stdout}");
    let history = a.get(new, "/v1/validators");
    assert_eq!(history.as_array().unwrap().len(), 4, "{history}");
}
