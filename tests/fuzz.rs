//! Fuzz targets for everything a node or a syncing region decodes from others: transactions,
//! consensus gossip, sync requests and answers, light-client blocks, certificates and CRLs.
//! (The CSV import is fuzzed in `cli/src/import.rs`'s tests with the same engine.) Each target
//! must return an error or a value for any input, never panic; a decoded value is also pushed
//! through what the node does next with it (signature checks, hashing, light verification), so
//! a value that decodes but breaks an invariant is caught too.
//!
//! The engine and the limits of its approach are in `fuzzing.rs`. `write_fuzz_corpus` (ignored)
//! regenerates the seed corpus from a live two-member alliance.

mod fuzzing;
mod harness;

use caihong_chaincode::SignedTransaction;
use caihong_chaincode::codec::decode;
use caihong_chaincode::genesis::Genesis;
use caihong_consensus::ChainId;
use caihong_node::light::{LightClient, decode_light};
use caihong_node::wire::{Envelope, SyncRequest, SyncResponse, WireMessage};
use fuzzing::fuzz;
use std::path::PathBuf;

const CHAIN: &str = "caihong-test";

#[test]
fn fuzz_transaction_decoding() {
    fuzz("tx", &[], |bytes| {
        if let Ok(tx) = SignedTransaction::decode(bytes) {
            let _ = tx.hash();
            let _ = tx.clone().verify(CHAIN);
            // What decodes re-encodes to the same bytes: one canonical form per transaction.
            assert_eq!(tx.encode(), bytes, "a transaction has two encodings");
        }
    });
}

#[test]
fn fuzz_transaction_batches() {
    fuzz("tx-batch", &[], |bytes| {
        if let Ok(batch) = decode::<Vec<SignedTransaction>>(bytes) {
            for tx in batch {
                let _ = tx.verify(CHAIN);
            }
        }
    });
}

#[test]
fn fuzz_consensus_gossip() {
    let chain = ChainId::new(CHAIN);
    fuzz("consensus", &[], |bytes| {
        if let Ok(envelope) = decode::<Envelope>(bytes) {
            match envelope.message {
                WireMessage::Consensus(m) => {
                    let _ = m.verify_signature(&chain);
                    let _ = (m.height(), m.round(), m.step(), m.value(), m.signer());
                }
                WireMessage::Block(b) => {
                    let _ = b.hash();
                    let _ = b.check_txs();
                }
                WireMessage::Status { .. } => {}
            }
        }
    });
}

#[test]
fn fuzz_sync_messages() {
    fuzz("sync", &[], |bytes| {
        let _ = decode::<SyncRequest>(bytes);
        if let Ok(r) = decode::<SyncResponse>(bytes) {
            for (block, certificate) in r.blocks {
                let _ = block.check_txs();
                let _ = certificate.precommits().count();
            }
        }
    });
}

#[test]
fn fuzz_light_blocks() {
    let genesis: Genesis = serde_json::from_slice(
        &std::fs::read(fuzzing::corpus_dir("light").join("genesis.json.txt")).unwrap(),
    )
    .unwrap();
    fuzz("light", &[], |bytes| {
        if let Ok(blocks) = decode_light(bytes) {
            let mut client = LightClient::from_genesis(&genesis).unwrap();
            for b in &blocks {
                if client.verify(b).is_err() {
                    break;
                }
            }
        }
    });
}

fn cert_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chaincode/tests/fixtures/certs")
}

#[test]
fn fuzz_certificates() {
    fuzz("x509", &[cert_fixtures()], |bytes| {
        if let Ok(cert) = caihong_chaincode::x509::parse_certificate(bytes) {
            let _ = (
                cert.fingerprint_sha256(),
                cert.subject(),
                cert.issuer(),
                cert.serial_hex(),
            );
            let _ = cert.validity_at(1_700_000_000);
        }
    });
}

#[test]
fn fuzz_crls() {
    fuzz("crl", &[cert_fixtures()], |bytes| {
        if let Ok(crl) = caihong_chaincode::x509::crl::parse_crl(bytes) {
            let _ = crl.crl_number_hex();
        }
    });
}

/// Writes the seed corpus: transactions of every domain, gossip of every kind, sync and light
/// answers, taken from a two-member alliance that ran the demo.
#[test]
#[ignore = "regenerates tests/fuzz-corpus"]
fn write_fuzz_corpus() {
    use caihong_chaincode::codec::encode;
    let a = harness::Alliance::start_new(2);
    let (code, out, err) =
        harness::run(&["demo", "--dir", a.dir.path().join("net").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let tip = a.height(0).unwrap();
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = fuzzing::corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let light = ureq::get(&format!(
        "{}/v1/light/blocks?from=1&count={tip}&bodies=true",
        a.api(0)
    ))
    .call()
    .unwrap();
    let mut light_bytes = Vec::new();
    std::io::Read::read_to_end(&mut light.into_reader(), &mut light_bytes).unwrap();
    let blocks = decode_light(&light_bytes).unwrap();
    write(
        "light",
        "genesis.json.txt".into(),
        &std::fs::read(a.members[0].home.join("genesis.json")).unwrap(),
    );
    write("light", "demo-chain".into(), &light_bytes);
    let mut sync = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut signed = Vec::new();
    for lb in &blocks {
        let Some(body) = &lb.body else { continue };
        // One transaction of each kind of action, named by it.
        for tx in &body.txs {
            let debug = format!("{:?}", tx.tx.action);
            let kind: String = debug
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .take(2)
                .collect::<Vec<_>>()
                .join("-");
            if seen.insert(kind.clone()) {
                write("tx", kind.to_lowercase(), &tx.encode());
                signed.push(tx.clone());
            }
        }
        let block = caihong_node::block::Block {
            header: lb.header.clone(),
            txs: body.txs.clone(),
        };
        sync.push((block, lb.certificate.clone()));
    }
    let key = caihong_node::config::KeyFile::generate();
    write("tx-batch", "demo".into(), &encode(&signed));
    write(
        "tx-batch",
        "empty".into(),
        &encode(&Vec::<SignedTransaction>::new()),
    );
    let (block, certificate) = sync.last().unwrap().clone();
    let votes: Vec<_> = certificate.precommits().collect();
    for (name, message) in [
        (
            "precommit",
            WireMessage::Consensus(caihong_consensus::Message::Vote(votes[0].clone())),
        ),
        ("block", WireMessage::Block(block.clone())),
        ("status", WireMessage::Status { height: 7 }),
    ] {
        write(
            "consensus",
            name.into(),
            &encode(&Envelope {
                sent_ms: 1_700_000_000_000,
                message,
            }),
        );
    }
    let proposal = caihong_consensus::Proposal {
        height: block.header.height,
        round: 0,
        value: caihong_consensus::Hash(block.hash().0),
        pol_round: None,
        proposer: caihong_consensus::PublicKey(key.verifying_key().to_bytes()),
    }
    .sign(
        &ChainId::new(CHAIN),
        &caihong_consensus::Ed25519Signer::new(key.clone()),
    );
    write(
        "consensus",
        "proposal".into(),
        &encode(&Envelope {
            sent_ms: 1,
            message: WireMessage::Consensus(caihong_consensus::Message::Proposal(proposal)),
        }),
    );
    write(
        "sync",
        "request".into(),
        &encode(&SyncRequest::Blocks { from: 1, to: 64 }),
    );
    write(
        "sync",
        "response".into(),
        &encode(&SyncResponse {
            blocks: sync[sync.len().saturating_sub(3)..].to_vec(),
        }),
    );
    write("x509", "empty".into(), b"");
    write("crl", "empty".into(), b"");
}
