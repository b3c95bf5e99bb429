//! Hostile input over the real ports. A member's node key in the wrong hands (member 3 is
//! stopped and this test speaks libp2p with its key) gossips garbage, truncated and oversized
//! messages, forged and foreign votes, votes from a non-member, replays and bad transactions;
//! raw bytes that are not libp2p at all hit a p2p port; idle connections pile up on the API.
//! The honest members keep committing, store nothing invalid, record no false evidence, and
//! ban the member that keeps sending invalid data.
//! (Malformed API requests and unknown node keys have their own tests in alliance.rs.)

mod harness;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use caihong_chaincode::codec::{decode, encode};
use caihong_consensus::{ChainId, CommitCertificate, Ed25519Signer, Message, Vote, VoteKind};
use caihong_node::network::{NetworkConfig, NetworkEvent, Topic, spawn};
use caihong_node::wire::{Envelope, WireMessage};
use harness::{Alliance, TxState, register_subject};

const MINUTE: Duration = Duration::from_secs(60);

fn envelope(message: WireMessage) -> Vec<u8> {
    encode(&Envelope {
        sent_ms: 1,
        message,
    })
}

#[test]
fn a_member_key_sending_garbage_is_banned_and_nothing_invalid_is_stored() {
    let mut a = Alliance::start_new(4);
    let chain = ChainId::new(a.chain_id.clone());

    // Bytes that are not libp2p, on a member's p2p port: the handshake fails, nothing else.
    let p2p_port: u16 = a.members[0]
        .p2p
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    for junk in [
        vec![0xffu8; 1 << 20],
        b"/multistream/1.0.0\n".repeat(1000),
        vec![0x13; 7],
    ] {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", p2p_port)) {
            let _ = s.write_all(&junk);
        }
    }
    // Idle connections on an API port do not starve the API.
    let api_addr = a.api(1).trim_start_matches("http://").to_string();
    let idle: Vec<TcpStream> = (0..64)
        .filter_map(|_| TcpStream::connect(&api_addr).ok())
        .collect();
    assert!(a.status(1)["height"].as_u64().is_some());
    drop(idle);

    // Member 3's node key, used by this test: the honest members let it in as a member.
    a.stop(3);
    let home = a.home(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = NetworkConfig::new(
        a.chain_id.clone(),
        home.node_key.to_bytes(),
        home.config.p2p.listen.parse().unwrap(),
    );
    let keys: Vec<[u8; 32]> = (0..4)
        .map(|i| a.home(i).node_key.verifying_key().to_bytes())
        .collect();
    cfg.allowed = keys.clone();
    cfg.peers = (0..3)
        .map(|i| (keys[i], a.members[i].p2p.parse().unwrap()))
        .collect();
    cfg.max_gossip_size = 16 << 20; // so that it can send what the others refuse
    cfg.redial_max = Duration::from_secs(1);
    let (net, mut events) = rt.block_on(spawn(cfg)).unwrap();
    // Which members have handed the impostor consensus gossip: once all three have, each one
    // knows it subscribes to the topic, and it knows theirs, so what it publishes reaches each
    // of them directly (a fixed wait for the subscriptions was sometimes too short under load).
    let heard_from = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let heard = heard_from.clone();
    rt.spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Gossip {
                topic: Topic::Consensus,
                from,
                ..
            } = event
            {
                heard.lock().unwrap().insert(from);
            }
        }
    });
    let deadline = Instant::now() + MINUTE;
    while rt.block_on(net.peers()).len() < 3 || heard_from.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the impostor did not connect to and hear from every member"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let h0 = a.height(0).unwrap();
    let block = a.get(0, &format!("/v1/blocks/{h0}"));
    let certificate: CommitCertificate =
        decode(&hex::decode(block["certificate_bincode_hex"].as_str().unwrap()).unwrap()).unwrap();
    let old_precommit = certificate.precommits().next().unwrap();
    let current = h0 + 1;
    let stranger = Ed25519Signer::from_seed([42; 32]);
    let stranger_key = caihong_consensus::PublicKey(
        ed25519_dalek::SigningKey::from_bytes(&[42; 32])
            .verifying_key()
            .to_bytes(),
    );
    let prevote_at = |height, validator| Vote {
        kind: VoteKind::Prevote,
        height,
        round: 0,
        value: None,
        validator,
    };
    let prevote = |validator| prevote_at(current, validator);
    let member3_key = caihong_consensus::PublicKey(keys[3]);
    let member3 = Ed25519Signer::new(home.node_key.clone());
    let mut forged = prevote(caihong_consensus::PublicKey(keys[0])).sign(&chain, &member3);
    forged.signature.0[0] ^= 1;
    let hostile_consensus: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\x01 not an envelope".to_vec()),
        (
            "truncated vote",
            envelope(WireMessage::Consensus(Message::Vote(old_precommit.clone())))[..40].to_vec(),
        ),
        (
            "forged vote",
            envelope(WireMessage::Consensus(Message::Vote(forged))),
        ),
        (
            "vote for another chain",
            envelope(WireMessage::Consensus(Message::Vote(
                prevote(member3_key).sign(&ChainId::new("another-chain"), &member3),
            ))),
        ),
        (
            "replayed vote",
            envelope(WireMessage::Consensus(Message::Vote(old_precommit))),
        ),
        ("oversized", vec![7u8; 5 << 20]),
    ];
    // A well-signed vote from a non-member is refused only at the height the receiver is
    // deciding (at another it may be from a member of another era, and is ignored), and the
    // members move on while these travel: one for each height around the current one.
    let non_member_votes = (h0.saturating_sub(2)..=h0 + 5).map(|height| {
        (
            "non-member vote",
            envelope(WireMessage::Consensus(Message::Vote(
                prevote_at(height, stranger_key).sign(&chain, &stranger),
            ))),
        )
    });
    let hostile_consensus = hostile_consensus.into_iter().chain(non_member_votes);
    for (what, data) in hostile_consensus {
        let sent = rt.block_on(net.publish(Topic::Consensus, data));
        eprintln!("sent {what}: {sent:?}");
    }
    // Each honest member refused the five it received directly that are not genuine
    // (garbage, truncated, forged, other chain, and the non-member vote at its height); the
    // replay and the oversized message are not counted (one is stale, the other never gets
    // past the transport).
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..3 {
        while a.status(i)["rejected_consensus_gossip"].as_u64().unwrap() < 5 {
            assert!(
                Instant::now() < deadline,
                "member {i} refused only {} hostile consensus messages",
                a.status(i)["rejected_consensus_gossip"]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Transactions: a bad signature, another chain, a replay, and undecodable batches.
    let key = a.admin_key(0);
    // One committed transaction, replayed below.
    let committed = a.sign(&key, a.next_nonce(0, &key), register_subject("150100", 903));
    let first = a.submit(0, &committed, true).expect("committed");
    assert_eq!(first.status, TxState::Committed, "{first:?}");
    let nonce = a.next_nonce(0, &key);
    let mut bad_signature = a.sign(&key, nonce, register_subject("150100", 901));
    bad_signature.tx.nonce += 7;
    let mut other_chain = a.sign(&key, nonce, register_subject("150100", 902)).tx;
    other_chain.chain_id = "another-chain".into();
    let other_chain = other_chain.sign(&key);
    for batch in [
        vec![bad_signature.clone()],
        vec![other_chain.clone()],
        vec![committed.clone()],
    ] {
        let _ = rt.block_on(net.publish(Topic::Transactions, encode(&batch)));
    }
    // Enough distinct junk to pass the ban threshold (10 strikes in a minute).
    for n in 0..15u32 {
        let _ = rt.block_on(net.publish(Topic::Transactions, format!("junk {n}").into_bytes()));
        let _ = rt.block_on(net.publish(Topic::Consensus, format!("junk {n}").into_bytes()));
        std::thread::sleep(Duration::from_millis(50));
    }

    // The honest three keep committing, and one of them at least banned the sender.
    for i in 0..3 {
        assert!(a.is_running(i), "member {i} died:\n{}", a.log_tail(i));
        a.wait_height(i, h0 + 5, MINUTE);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(0..3).any(|i| {
        std::fs::read_to_string(a.log_path(i))
            .unwrap_or_default()
            .contains("banned")
    }) {
        assert!(
            Instant::now() < deadline,
            "no member banned the sender of junk"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Nothing invalid stored, no false evidence against anyone.
    for i in 0..3 {
        for tx in [&bad_signature, &other_chain] {
            let e = harness::get(&format!("{}/v1/tx/{}", a.api(i), tx.hash().to_hex()))
                .expect_err("an invalid transaction is unknown");
            assert_eq!(e.status, 404, "member {i}: {e}");
        }
        let replayed = a.client(i).tx(&committed.hash()).expect("committed");
        assert_eq!(
            replayed.height, first.height,
            "member {i}: the replay moved it"
        );
        assert_eq!(
            a.get(i, "/v1/evidence"),
            serde_json::json!([]),
            "member {i}"
        );
    }
    let tip = (0..3).map(|i| a.height(i).unwrap()).min().unwrap();
    a.assert_same_chain(&[0, 1, 2], tip);
    let hash = committed.hash().to_hex();
    let copies: usize = (1..=tip)
        .map(|h| {
            let b = a.get(0, &format!("/v1/blocks/{h}"));
            b["txs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| **t == hash.as_str())
                .count()
        })
        .sum();
    assert_eq!(
        copies, 1,
        "the replayed transaction is on chain {copies} times"
    );
    rt.block_on(net.shutdown());
}
