//! Storage stories: an alliance commits blocks executed by chaincode, queries them back, proves
//! state to an outsider, restarts, crashes mid-commit, and prunes old state versions.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use caihong_chaincode::exec::{self, execute_block};
use caihong_chaincode::members::{OperatorAction, Role};
use caihong_chaincode::sandbox::{self, SANDBOX_GENESIS_TIME_MS, Sandbox};
use caihong_chaincode::{
    Action, BlockContext, Hash, MemState, Receipt, StateReader, Transaction, TxStatus, VerifiedTx,
    WriteSet,
};
use caihong_consensus::{
    ChainId, CommitCertificate, Ed25519Signer, Evidence, SafetyState, Signer, Step, Vote, VoteKind,
};
use caihong_node::block::{Block, BlockError, Header, receipts_root, txs_root};
use caihong_node::storage::{
    GenesisInit, ProofError, StateProof, StorageError, Store, genesis_state_root, names::NameMatch,
};

const CITIES: [&str; 4] = ["hohhot", "baotou", "ordos", "yinchuan"];

fn validator() -> Ed25519Signer {
    Ed25519Signer::from_seed([9; 32])
}

/// Genesis state of a four-city sandbox alliance, and its header.
fn genesis() -> (WriteSet, Header) {
    let sb = Sandbox::new(4);
    let writes = sb.state_writes();
    let header = Header {
        chain_id: sb.chain_id.clone(),
        height: 0,
        time_ms: SANDBOX_GENESIS_TIME_MS,
        parent_hash: Hash::ZERO,
        proposer: sandbox::public(&Sandbox::node_key("hohhot")),
        txs_root: txs_root(&[]),
        receipts_root: receipts_root(&[]),
        state_root: genesis_state_root(&writes),
        next_validators_hash: Hash::ZERO,
    };
    (writes, header)
}

fn chain_id() -> String {
    Sandbox::new(1).chain_id
}

fn certificate(block: &Block) -> CommitCertificate {
    let signer = validator();
    let value = caihong_consensus::Hash(block.hash().0);
    let vote = Vote {
        kind: VoteKind::Precommit,
        height: block.header.height,
        round: 0,
        value: Some(value),
        validator: signer.public_key(),
    }
    .sign(&ChainId::new(block.header.chain_id.clone()), &signer);
    CommitCertificate::from_precommits(block.header.height, 0, value, [&vote])
}

fn context(height: u64, parent: &Header) -> BlockContext {
    BlockContext {
        chain_id: parent.chain_id.clone(),
        height,
        time_ms: SANDBOX_GENESIS_TIME_MS + height * 1000,
        parent_hash: parent.hash(),
    }
}

/// The transactions of block `height` in the deterministic test chain: one city's admin
/// registers a new operator, and every third block also repeats an earlier registration,
/// which fails (and still consumes its nonce).
fn block_txs(state: &dyn StateReader, height: u64) -> Vec<VerifiedTx> {
    let chain_id = chain_id();
    let city = CITIES[(height % 4) as usize];
    let admin = Sandbox::admin_key(city);
    let signer = sandbox::public(&admin);
    let mut nonce = exec::next_nonce(state, &signer);
    let mut actions = vec![format!("op-{height}")];
    if height % 3 == 0 && height >= 4 {
        actions.push(format!("op-{}", height - 4)); // same city, already registered
    }
    actions
        .into_iter()
        .map(|label| {
            let tx = Transaction {
                chain_id: chain_id.clone(),
                signer,
                nonce,
                action: Action::Operator(OperatorAction::Register {
                    key: sandbox::public(&sandbox::key(&label)),
                    name: label,
                    roles: [Role::Registrar].into(),
                }),
            };
            nonce += 1;
            tx.sign(&admin).verify(&chain_id).expect("signed correctly")
        })
        .collect()
}

struct Next {
    block: Block,
    cert: CommitCertificate,
    writes: WriteSet,
    receipts: Vec<Receipt>,
}

/// Executes the next block of the test chain against the store, as a proposer would.
fn next_block(store: &Store) -> Next {
    let latest = store.latest_height().unwrap().unwrap();
    let parent = store.block(latest).unwrap().unwrap().header;
    let view = store.state_view().unwrap();
    let height = latest + 1;
    let txs = block_txs(&view, height);
    let ctx = context(height, &parent);
    let (writes, receipts) = execute_block(&view, &ctx, &txs);
    let signed: Vec<_> = txs.iter().map(|t| t.signed().clone()).collect();
    let header = Header {
        chain_id: parent.chain_id.clone(),
        height,
        time_ms: ctx.time_ms,
        parent_hash: parent.hash(),
        proposer: sandbox::public(&Sandbox::node_key(CITIES[(height % 4) as usize])),
        txs_root: txs_root(&signed),
        receipts_root: receipts_root(&receipts),
        state_root: view.state_root_after(&writes).unwrap(),
        next_validators_hash: Hash::ZERO,
    };
    let block = Block {
        header,
        txs: signed,
    };
    let cert = certificate(&block);
    Next {
        block,
        cert,
        writes,
        receipts,
    }
}

fn commit_next(store: &Store) -> Next {
    let next = next_block(store);
    store
        .commit_block(&next.block, &next.cert, &next.writes, &next.receipts)
        .unwrap();
    next
}

/// Commits a block with no transactions and the given writes (for state-shape tests).
fn commit_writes(store: &Store, writes: WriteSet) -> Header {
    let latest = store.latest_height().unwrap().unwrap();
    let parent = store.block(latest).unwrap().unwrap().header;
    let header = Header {
        chain_id: parent.chain_id.clone(),
        height: latest + 1,
        time_ms: parent.time_ms + 1000,
        parent_hash: parent.hash(),
        proposer: parent.proposer,
        txs_root: txs_root(&[]),
        receipts_root: receipts_root(&[]),
        state_root: store.state_root_after(&writes).unwrap(),
        next_validators_hash: Hash::ZERO,
    };
    let block = Block {
        header: header.clone(),
        txs: vec![],
    };
    store
        .commit_block(&block, &certificate(&block), &writes, &[])
        .unwrap();
    header
}

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let (writes, header) = genesis();
    assert_eq!(
        store.init_genesis(&writes, &header).unwrap(),
        GenesisInit::Created
    );
    (dir, store)
}

fn all_state(reader: &dyn StateReader) -> BTreeMap<Vec<u8>, Vec<u8>> {
    reader.scan_prefix(b"").into_iter().collect()
}

/// Replays the test chain in memory up to `height`, with the parents' hashes from `store`.
fn replay(store: &Store, height: u64) -> MemState {
    let (writes, _) = genesis();
    let mut state = MemState::new();
    state.apply(&writes);
    for h in 1..=height {
        let parent = store.block(h - 1).unwrap().unwrap().header;
        let txs = block_txs(&state, h);
        let (writes, _) = execute_block(&state, &context(h, &parent), &txs);
        state.apply(&writes);
    }
    state
}

#[test]
fn an_alliance_commits_blocks_and_reads_them_back() {
    let (_dir, store) = new_store();
    assert_eq!(store.latest_height().unwrap(), Some(0));
    let mut committed = vec![];
    for _ in 0..6 {
        committed.push(commit_next(&store));
    }
    assert_eq!(store.latest_height().unwrap(), Some(6));
    assert_eq!(store.chain_id().unwrap(), Some(chain_id()));
    assert_eq!(store.genesis_hash().unwrap(), Some(genesis().1.hash()));

    let mut failures = 0;
    for next in &committed {
        let h = next.block.header.height;
        assert_eq!(store.block(h).unwrap().as_ref(), Some(&next.block));
        assert_eq!(
            store.block_by_hash(&next.block.hash()).unwrap().as_ref(),
            Some(&next.block)
        );
        assert!(store.latest_hash().unwrap().is_some());
        assert_eq!(
            store.commit_certificate(h).unwrap().as_ref(),
            Some(&next.cert)
        );
        assert!(
            next.cert
                .verify(
                    &caihong_consensus::ValidatorSet::equal_power([validator().public_key()])
                        .unwrap(),
                    &ChainId::new(chain_id())
                )
                .is_ok()
        );
        for (i, (tx, receipt)) in next.block.txs.iter().zip(&next.receipts).enumerate() {
            let stored = store.receipt(&tx.hash()).unwrap().expect("receipt stored");
            assert_eq!(stored.receipt, *receipt);
            assert_eq!(
                (stored.location.height, stored.location.index),
                (h, i as u32)
            );
            let stored_tx = store.tx(&tx.hash()).unwrap().expect("tx indexed");
            assert_eq!(stored_tx.tx, *tx);
            if matches!(receipt.status, TxStatus::Failed(_)) {
                failures += 1;
            }
        }
    }
    assert!(failures >= 1, "the chain includes failed transactions");
    assert_eq!(store.block(7).unwrap(), None);
    assert_eq!(
        store.commit_certificate(0).unwrap(),
        None,
        "genesis has no certificate"
    );
    assert_eq!(store.receipt(&Hash::of(b"unknown")).unwrap(), None);
    assert_eq!(store.tx(&Hash::of(b"unknown")).unwrap(), None);

    // The committed state is exactly what executing the chain in memory gives.
    let view = store.state_view().unwrap();
    assert_eq!(view.height(), Some(6));
    assert_eq!(all_state(&view), replay(&store, 6).entries);
}

#[test]
fn state_root_follows_the_state_and_matches_the_prediction() {
    let (_dir, store) = new_store();
    let (_, genesis_header) = genesis();
    assert_eq!(store.state_root(0).unwrap(), genesis_header.state_root);
    let mut roots = vec![genesis_header.state_root];
    for h in 1..=4 {
        let next = next_block(&store);
        let predicted = store.state_root_after(&next.writes).unwrap();
        // Predicting commits nothing.
        assert_eq!(store.latest_height().unwrap(), Some(h - 1));
        assert_eq!(predicted, next.block.header.state_root);
        store
            .commit_block(&next.block, &next.cert, &next.writes, &next.receipts)
            .unwrap();
        assert_eq!(store.state_root(h).unwrap(), predicted);
        assert!(!roots.contains(&predicted), "every block changed the state");
        roots.push(predicted);
    }
    // Old roots stay readable.
    for (h, root) in roots.iter().enumerate() {
        assert_eq!(store.state_root(h as u64).unwrap(), *root);
    }
    // No writes: same root; a write and its undo: back to the same root.
    let latest_root = *roots.last().unwrap();
    assert_eq!(
        store.state_root_after(&WriteSet::new()).unwrap(),
        latest_root
    );
    let header = commit_writes(&store, [(b"x/1".to_vec(), Some(b"1".to_vec()))].into());
    assert_ne!(header.state_root, latest_root);
    let header = commit_writes(&store, [(b"x/1".to_vec(), None)].into());
    assert_eq!(
        header.state_root, latest_root,
        "the root is a function of the state"
    );
    assert!(matches!(
        store.state_root(99),
        Err(StorageError::HeightNotCommitted { requested: 99, .. })
    ));
}

#[test]
fn proofs_show_values_and_absence_to_an_outsider() {
    let (_dir, store) = new_store();
    for _ in 0..3 {
        commit_next(&store);
    }
    let h = 3;
    let root = store.block(h).unwrap().unwrap().header.state_root;
    let view = store.state_view().unwrap();
    let present: Vec<(Vec<u8>, Vec<u8>)> = view.scan_prefix(b"");
    assert!(present.len() > 10);
    for (key, value) in &present {
        let proof = store.prove(key, h).unwrap();
        assert_eq!(proof.value.as_deref(), Some(value.as_slice()));
        // What an outside region does: only the header's root, the key and the proof.
        let wire: StateProof =
            serde_json::from_str(&serde_json::to_string(&proof).unwrap()).unwrap();
        wire.verify(&root, key, Some(value)).unwrap();
        assert!(matches!(
            wire.verify(&root, key, Some(b"forged")),
            Err(ProofError::ValueMismatch { .. })
        ));
        assert_eq!(wire.verify(&root, key, None), Err(ProofError::KeyPresent));
        assert!(matches!(
            wire.verify(&Hash::of(b"another root"), key, Some(value)),
            Err(ProofError::RootMismatch { .. })
        ));
    }
    for i in 0..50 {
        let key = format!("absent/{i}").into_bytes();
        let proof = store.prove(&key, h).unwrap();
        assert_eq!(proof.value, None);
        proof.verify(&root, &key, None).unwrap();
        // Claiming a value fails: the path ends empty, or in another key's leaf.
        assert!(matches!(
            proof.verify(&root, &key, Some(b"anything")),
            Err(ProofError::ExpectedMembership | ProofError::WrongKey { .. })
        ));
        assert!(
            proof
                .verify(&Hash::of(b"another root"), &key, None)
                .is_err()
        );
        // An absence proof for one key does not prove another present key absent.
        let (other, _) = &present[i % present.len()];
        assert!(proof.verify(&root, other, None).is_err());
    }
    // Tampering with a sibling breaks the proof.
    let (key, value) = &present[0];
    let mut proof = store.prove(key, h).unwrap();
    assert!(!proof.siblings.is_empty());
    proof.siblings[0].0[0] ^= 1;
    assert!(matches!(
        proof.verify(&root, key, Some(value)),
        Err(ProofError::RootMismatch { .. })
    ));
    // A proof at an older height proves the older value against the older root only. (Not a
    // member record: commit reads the members to record validator changes, so those must decode.)
    let (key, value) = present
        .iter()
        .find(|(k, _)| !k.starts_with(caihong_chaincode::keys::MEMBER_PREFIX))
        .unwrap();
    let header = commit_writes(&store, [(key.clone(), Some(b"changed".to_vec()))].into());
    let old = store.prove(key, h).unwrap();
    old.verify(&root, key, Some(value)).unwrap();
    assert!(old.verify(&header.state_root, key, Some(value)).is_err());
    let new = store.prove(key, header.height).unwrap();
    new.verify(&header.state_root, key, Some(b"changed"))
        .unwrap();
    assert!(matches!(
        store.prove(key, 99),
        Err(StorageError::HeightNotCommitted { .. })
    ));
}

#[test]
fn genesis_is_idempotent_and_another_genesis_is_refused() {
    let (dir, store) = new_store();
    let (writes, header) = genesis();
    assert_eq!(
        store.init_genesis(&writes, &header).unwrap(),
        GenesisInit::AlreadyPresent
    );
    let mut other = header.clone();
    other.time_ms += 1;
    let err = store.init_genesis(&writes, &other).unwrap_err();
    assert!(matches!(err, StorageError::GenesisMismatch { .. }), "{err}");
    assert!(err.to_string().contains("another data directory"), "{err}");

    // A fresh store refuses a genesis header whose root does not match its writes.
    let fresh = Store::open(dir.path().join("fresh")).unwrap();
    let mut bad = header.clone();
    bad.state_root = Hash::of(b"wrong");
    assert!(matches!(
        fresh.init_genesis(&writes, &bad),
        Err(StorageError::StateRootMismatch { height: 0, .. })
    ));
    assert_eq!(fresh.latest_height().unwrap(), None);
    assert!(matches!(
        fresh.commit_block(
            &next_block(&store).block,
            &next_block(&store).cert,
            &WriteSet::new(),
            &[]
        ),
        Err(StorageError::NoGenesis)
    ));
}

#[test]
fn refused_blocks_write_nothing() {
    let (_dir, store) = new_store();
    commit_next(&store);
    let before = all_state(&store.state_view().unwrap());
    let next = next_block(&store);
    let commit =
        |block: &Block, cert: &CommitCertificate, writes: &WriteSet, receipts: &[Receipt]| {
            store.commit_block(block, cert, writes, receipts)
        };

    // Skipping a height.
    let mut skipped = next.block.clone();
    skipped.header.height = 3;
    assert!(matches!(
        commit(
            &skipped,
            &certificate(&skipped),
            &next.writes,
            &next.receipts
        ),
        Err(StorageError::Block {
            source: BlockError::Height { latest: 1, got: 3 },
            ..
        })
    ));
    // Replaying the committed height.
    let one = store.block(1).unwrap().unwrap();
    assert!(matches!(
        commit(&one, &certificate(&one), &WriteSet::new(), &[]),
        Err(StorageError::Block {
            source: BlockError::Height { latest: 1, got: 1 },
            ..
        })
    ));
    // Wrong parent.
    let mut orphan = next.block.clone();
    orphan.header.parent_hash = Hash::of(b"elsewhere");
    assert!(matches!(
        commit(&orphan, &certificate(&orphan), &next.writes, &next.receipts),
        Err(StorageError::Block {
            height: 2,
            source: BlockError::Parent { .. }
        })
    ));
    // A certificate for another block.
    assert!(matches!(
        commit(
            &next.block,
            &certificate(&orphan),
            &next.writes,
            &next.receipts
        ),
        Err(StorageError::Block {
            source: BlockError::Certificate { .. },
            ..
        })
    ));
    // Writes that are not what the header's state root says.
    let mut writes = next.writes.clone();
    writes.insert(b"sneaky".to_vec(), Some(b"1".to_vec()));
    let err = commit(&next.block, &next.cert, &writes, &next.receipts).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Block {
                height: 2,
                source: BlockError::StateRoot { .. }
            }
        ),
        "{err}"
    );
    // Receipts that do not match.
    assert!(matches!(
        commit(&next.block, &next.cert, &next.writes, &[]),
        Err(StorageError::Block {
            height: 2,
            source: BlockError::ReceiptCount { .. }
        })
    ));
    // Another chain.
    let mut foreign = next.block.clone();
    foreign.header.chain_id = "elsewhere".into();
    assert!(matches!(
        commit(
            &foreign,
            &certificate(&foreign),
            &next.writes,
            &next.receipts
        ),
        Err(StorageError::Block {
            source: BlockError::ChainId { .. },
            ..
        })
    ));

    assert_eq!(store.latest_height().unwrap(), Some(1));
    assert_eq!(store.block(2).unwrap(), None);
    assert_eq!(store.commit_certificate(2).unwrap(), None);
    assert_eq!(store.receipt(&next.receipts[0].tx_hash).unwrap(), None);
    assert_eq!(all_state(&store.state_view().unwrap()), before);
    // And the right block still commits.
    commit(&next.block, &next.cert, &next.writes, &next.receipts).unwrap();
    assert_eq!(store.latest_height().unwrap(), Some(2));
}

#[test]
fn the_view_scans_in_byte_order_through_deletes_and_stays_at_its_height() {
    let (_dir, store) = new_store();
    let keys: [&[u8]; 7] = [
        b"t/\xff", b"t/b", b"t/\x00", b"t/a/2", b"t/a", b"t/a/10", b"u/x",
    ];
    let writes: WriteSet = keys
        .iter()
        .map(|k| (k.to_vec(), Some(k.to_vec())))
        .collect();
    commit_writes(&store, writes);
    let before = store.state_view().unwrap();
    commit_writes(
        &store,
        [
            (b"t/a".to_vec(), None),
            (b"t/\xff".to_vec(), None),
            (b"t/c".to_vec(), Some(b"new".to_vec())),
            (b"t/never".to_vec(), None), // deleting an absent key is fine
        ]
        .into(),
    );
    let after = store.state_view().unwrap();
    let scanned: Vec<Vec<u8>> = after
        .scan_prefix(b"t/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected: Vec<Vec<u8>> = [&b"t/\x00"[..], b"t/a/10", b"t/a/2", b"t/b", b"t/c"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    assert_eq!(scanned, expected);
    assert_eq!(after.get(b"t/a"), None);
    assert_eq!(after.get(b"t/c"), Some(b"new".to_vec()));
    assert_eq!(after.scan_prefix(b"t/a/").len(), 2);
    assert_eq!(after.scan_prefix(b"nothing/"), vec![]);
    // The older view is a snapshot: it still sees its own height.
    assert_eq!(before.height(), Some(1));
    assert_eq!(before.get(b"t/a"), Some(b"t/a".to_vec()));
    let old: Vec<Vec<u8>> = before
        .scan_prefix(b"t/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut sorted: Vec<Vec<u8>> = keys[..6].iter().map(|k| k.to_vec()).collect();
    sorted.sort();
    assert_eq!(old, sorted);
    assert_eq!(before.state_root().unwrap(), store.state_root(1).unwrap());
}

fn evidence() -> Evidence {
    let signer = validator();
    let vote = |value: &[u8]| {
        Vote {
            kind: VoteKind::Prevote,
            height: 3,
            round: 1,
            value: Some(caihong_consensus::Hash::digest(value)),
            validator: signer.public_key(),
        }
        .sign(&ChainId::new(chain_id()), &signer)
    };
    Evidence::ConflictingVotes {
        first: vote(b"a"),
        second: vote(b"b"),
    }
}

#[test]
fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (committed, root, proof_key) = {
        let store = Store::open(&path).unwrap();
        let (writes, header) = genesis();
        store.init_genesis(&writes, &header).unwrap();
        let committed: Vec<Next> = (0..3).map(|_| commit_next(&store)).collect();
        let safety = SafetyState {
            last_signed: Some((4, 2, Step::Prevote)),
            ..SafetyState::default()
        };
        store.save_safety_state(&safety).unwrap();
        assert!(store.add_evidence(&evidence()).unwrap());
        assert!(!store.add_evidence(&evidence()).unwrap(), "kept once");
        let key = store.state_view().unwrap().scan_prefix(b"")[0].0.clone();
        (committed, store.state_root(3).unwrap(), key)
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.latest_height().unwrap(), Some(3));
    let (writes, header) = genesis();
    assert_eq!(
        store.init_genesis(&writes, &header).unwrap(),
        GenesisInit::AlreadyPresent
    );
    for next in &committed {
        let h = next.block.header.height;
        assert_eq!(store.block(h).unwrap().as_ref(), Some(&next.block));
        assert_eq!(
            store.commit_certificate(h).unwrap().as_ref(),
            Some(&next.cert)
        );
        for r in &next.receipts {
            assert_eq!(store.receipt(&r.tx_hash).unwrap().unwrap().receipt, *r);
        }
    }
    assert_eq!(store.state_root(3).unwrap(), root);
    store
        .prove(&proof_key, 3)
        .unwrap()
        .verify_carried(&root, &proof_key)
        .unwrap();
    assert_eq!(
        store.load_safety_state().unwrap().unwrap().last_signed,
        Some((4, 2, Step::Prevote))
    );
    assert_eq!(store.evidence().unwrap(), vec![evidence()]);
    assert_eq!(
        all_state(&store.state_view().unwrap()),
        replay(&store, 3).entries
    );
    // And the chain goes on.
    commit_next(&store);
    assert_eq!(store.latest_height().unwrap(), Some(4));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let (dir, _store) = new_store();
    let err = Store::open(dir.path().join("db")).unwrap_err();
    // Said in words, not RocksDB's about a LOCK file.
    assert!(matches!(err, StorageError::InUse(_)), "{err}");
    assert!(err.to_string().contains("already running"), "{err}");
}

#[test]
fn pruning_keeps_recent_proofs_and_refuses_old_ones() {
    let (dir, store) = new_store();
    for _ in 0..6 {
        commit_next(&store);
    }
    let key = store.state_view().unwrap().scan_prefix(b"")[0].0.clone();
    let report = store.prune_state_versions(4).unwrap();
    assert_eq!(report.oldest_kept, 4);
    assert!(report.nodes_deleted > 0);
    assert!(matches!(
        store.prove(&key, 3),
        Err(StorageError::StateVersionPruned {
            height: 3,
            oldest_kept: 4
        })
    ));
    for h in 4..=6 {
        let root = store.block(h).unwrap().unwrap().header.state_root;
        assert_eq!(store.state_root(h).unwrap(), root);
        store
            .prove(&key, h)
            .unwrap()
            .verify_carried(&root, &key)
            .unwrap();
        store
            .prove(b"absent", h)
            .unwrap()
            .verify(&root, b"absent", None)
            .unwrap();
    }
    // Headers keep every state root; the chain goes on after pruning.
    assert!(store.block(1).unwrap().is_some());
    commit_next(&store);
    let root = store.state_root(7).unwrap();
    store
        .prove(&key, 7)
        .unwrap()
        .verify_carried(&root, &key)
        .unwrap();
    // Reopened (an empty node cache): the kept versions are whole on disk.
    drop(store);
    let store = Store::open(dir.path().join("db")).unwrap();
    for h in 4..=7 {
        let root = store.block(h).unwrap().unwrap().header.state_root;
        assert_eq!(store.state_root(h).unwrap(), root, "height {h}");
        store
            .prove(&key, h)
            .unwrap()
            .verify_carried(&root, &key)
            .unwrap();
    }
}

// ---- crash consistency: a child process commits in a loop and is SIGKILLed ----

const CRASH_DIR_ENV: &str = "CAIHONG_STORAGE_CRASH_DIR";

/// Run only by `a_kill_at_any_instant_leaves_a_whole_height` in a child process: commits the
/// test chain forever, printing each height after it is durable.
#[test]
#[ignore = "child process of a_kill_at_any_instant_leaves_a_whole_height"]
fn crash_child_commits_forever() {
    let dir = std::env::var(CRASH_DIR_ENV).expect("run by the crash test");
    let store = Store::open(&dir).unwrap();
    let (writes, header) = genesis();
    store.init_genesis(&writes, &header).unwrap();
    loop {
        let next = commit_next(&store);
        println!("committed {}", next.block.header.height);
    }
}

#[test]
fn a_kill_at_any_instant_leaves_a_whole_height() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let exe = std::env::current_exe().unwrap();
    let mut last = 0;
    for round in 0..5u64 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_commits_forever",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it commit a few blocks, then kill it at a varying instant of the next commit.
        let mut seen = 0;
        while seen < 3 + round {
            let line = lines.next().expect("child is committing").unwrap();
            if line.starts_with("committed ") {
                seen += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_micros(round * 1700));
        child.kill().unwrap(); // SIGKILL: no destructors, no flush
        child.wait().unwrap();

        let store = Store::open(&path).unwrap();
        let h = store.latest_height().unwrap().unwrap();
        assert!(h >= last + 3, "round {round}: height {h} after {last}");
        last = h;
        // Every height up to h is whole ...
        for height in 0..=h {
            let block = store.block(height).unwrap().expect("block present");
            assert_eq!(block.header.height, height);
            if height > 0 {
                assert_eq!(
                    block.header.parent_hash,
                    store.block(height - 1).unwrap().unwrap().hash()
                );
                assert!(store.commit_certificate(height).unwrap().is_some());
                for tx in &block.txs {
                    assert!(store.receipt(&tx.hash()).unwrap().is_some());
                }
            }
            assert_eq!(store.state_root(height).unwrap(), block.header.state_root);
        }
        assert_eq!(
            store.latest_hash().unwrap(),
            Some(store.block(h).unwrap().unwrap().hash())
        );
        // ... nothing of h + 1 is there ...
        assert_eq!(store.block(h + 1).unwrap(), None);
        assert_eq!(store.commit_certificate(h + 1).unwrap(), None);
        let would_be = next_block(&store);
        for tx in &would_be.block.txs {
            assert_eq!(store.receipt(&tx.hash()).unwrap(), None);
            assert_eq!(store.tx(&tx.hash()).unwrap(), None);
        }
        // ... and the state is exactly the state at h.
        assert_eq!(
            all_state(&store.state_view().unwrap()),
            replay(&store, h).entries
        );
    }
}

/// The database's own record of its options (RocksDB writes an OPTIONS file on open) shows the
/// per-family choices `Store::open` makes: no bottom-level rewrites for a day, tree nodes
/// uncompressed, memtable filters only where reads miss.
#[test]
fn store_options_reach_rocksdb() {
    let (_dir, store) = new_store();
    let path = store.path().to_path_buf();
    drop(store);
    let options_file = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("OPTIONS-")
        })
        .max()
        .expect("RocksDB wrote an OPTIONS file");
    let text = std::fs::read_to_string(options_file).unwrap();
    // Section per column family: [CFOptions "name"] followed by its settings.
    let family = |name: &str| -> String {
        let start = text
            .find(&format!("[CFOptions \"{name}\"]"))
            .unwrap_or_else(|| panic!("no options for {name}"));
        let rest = &text[start + 1..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
    };
    for name in ["state", "tree_nodes", "tree_values", "receipts"] {
        assert!(
            family(name).contains("bottommost_file_compaction_delay=86400"),
            "{name}"
        );
    }
    assert!(family("tree_nodes").contains("compression=kNoCompression"));
    assert!(family("state").contains("compression=kLZ4Compression"));
    assert!(family("state").contains("memtable_whole_key_filtering=true"));
    assert!(family("tree_nodes").contains("memtable_whole_key_filtering=false"));
    assert!(family("tree_nodes").contains("write_buffer_size=16777216"));
    assert!(family("state").contains("write_buffer_size=67108864"));
}

/// A database made before the `tx_index` family was retired opens, keeps its data, and loses
/// only that family.
#[test]
fn a_database_with_the_retired_tx_index_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::open(&path).unwrap();
        let (writes, header) = genesis();
        store.init_genesis(&writes, &header).unwrap();
        commit_next(&store);
    }
    {
        // Add the family an older version had, with an entry.
        let opts = rocksdb::Options::default();
        let names = rocksdb::DB::list_cf(&opts, &path).unwrap();
        assert!(!names.contains(&"tx_index".to_string()));
        let mut db = rocksdb::DB::open_cf(&opts, &path, &names).unwrap();
        db.create_cf("tx_index", &opts).unwrap();
        db.put_cf(db.cf_handle("tx_index").unwrap(), b"k", b"v")
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.latest_height().unwrap(), Some(1));
    let next = commit_next(&store);
    let tx = next.block.txs[0].hash();
    assert_eq!(store.tx(&tx).unwrap().unwrap().location.height, 2);
    drop(store);
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).unwrap();
    assert!(!names.contains(&"tx_index".to_string()), "{names:?}");
}

/// A block's state root computed on top of its parent's uncommitted tree update (a proposer
/// building ahead) is the root computed once the parent is committed, with and without
/// deletions, and the child then commits with that update.
#[test]
fn a_child_prepared_on_an_uncommitted_parent_commits() {
    let (_dir, store) = new_store();
    for _ in 0..3 {
        commit_next(&store);
    }
    let parent = next_block(&store);
    let view = store.state_view().unwrap();
    let parent_prepared = view.prepare(&parent.writes).unwrap();
    assert_eq!(parent_prepared.root(), parent.block.header.state_root);
    // Overwrites of the parent's keys and new keys; the second set also deletes.
    let mut puts = WriteSet::new();
    for (i, key) in parent.writes.keys().enumerate() {
        if i % 2 == 0 {
            puts.insert(key.clone(), Some(b"child".to_vec()));
        }
    }
    puts.insert(b"child/new".to_vec(), Some(b"v".to_vec()));
    let mut with_deletion = puts.clone();
    let deleted = parent.writes.keys().nth(1).unwrap().clone();
    with_deletion.insert(deleted, None);
    let ahead: Vec<_> = [&puts, &with_deletion]
        .map(|w| view.prepare_on(&parent_prepared, w).unwrap())
        .into();
    // A grandchild cannot be built on this view: refused.
    assert!(view.prepare_on(&ahead[0], &puts).is_err());
    drop(view);

    store
        .commit_prepared(
            &parent.block,
            &parent.cert,
            &parent.writes,
            &parent.receipts,
            &parent_prepared,
        )
        .unwrap();
    let view = store.state_view().unwrap();
    assert!(view.prepare_on(&parent_prepared, &puts).is_err());
    for (writes, prepared) in [&puts, &with_deletion].into_iter().zip(&ahead) {
        assert_eq!(view.state_root_after(writes).unwrap(), prepared.root());
    }
    assert_ne!(ahead[0].root(), ahead[1].root());
    drop(view);

    let header = Header {
        chain_id: parent.block.header.chain_id.clone(),
        height: parent.block.header.height + 1,
        time_ms: parent.block.header.time_ms + 1000,
        parent_hash: parent.block.hash(),
        proposer: parent.block.header.proposer,
        txs_root: txs_root(&[]),
        receipts_root: receipts_root(&[]),
        state_root: ahead[1].root(),
        next_validators_hash: Hash::ZERO,
    };
    let child = Block {
        header,
        txs: vec![],
    };
    store
        .commit_prepared(&child, &certificate(&child), &with_deletion, &[], &ahead[1])
        .unwrap();
    let view = store.state_view().unwrap();
    assert_eq!(view.state_root().unwrap(), ahead[1].root());
    assert_eq!(view.get(b"child/new"), Some(b"v".to_vec()));
}

/// The store's database opened directly, with every family it has (to change it under the
/// store as an older version or a crash would).
fn open_raw(path: &std::path::Path) -> rocksdb::DB {
    let opts = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&opts, path).unwrap();
    rocksdb::DB::open_cf(&opts, path, &names).unwrap()
}

/// Deletes every tree node of `from` and later versions, as a crash loses the nodes that were
/// only in the memtable (they are written without the write-ahead log).
fn lose_tree_nodes_from(path: &std::path::Path, from: u64) {
    let db = open_raw(path);
    let nodes = db.cf_handle("tree_nodes").unwrap();
    db.delete_range_cf(nodes, from.to_be_bytes(), u64::MAX.to_be_bytes())
        .unwrap();
}

/// A restart computes again the tree nodes a crash lost, from the logged value history,
/// through blocks with and without deletions, and refuses a history that gives another root
/// than the block's header.
#[test]
fn lost_tree_nodes_are_computed_again_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut roots = vec![];
    {
        let store = Store::open(&path).unwrap();
        let (writes, header) = genesis();
        store.init_genesis(&writes, &header).unwrap();
        roots.push(header.state_root);
        for _ in 0..3 {
            roots.push(commit_next(&store).block.header.state_root);
        }
        let some_key = all_state(&store.state_view().unwrap())
            .into_keys()
            .next()
            .unwrap();
        let deletion = WriteSet::from([(some_key, None), (b"x/new".to_vec(), Some(vec![7]))]);
        roots.push(commit_writes(&store, deletion).state_root);
        roots.push(commit_writes(&store, WriteSet::new()).state_root);
        roots.push(commit_next(&store).block.header.state_root);
    }
    lose_tree_nodes_from(&path, 2);
    {
        let store = Store::open(&path).unwrap();
        for (height, root) in roots.iter().enumerate() {
            assert_eq!(&store.state_root(height as u64).unwrap(), root, "{height}");
        }
        let key = b"x/new";
        let proof = store.prove(key, 5).unwrap();
        assert_eq!(proof.value.as_deref(), Some(&[7u8][..]));
        proof
            .verify(&roots[5], key, proof.value.as_deref())
            .unwrap();
        // And the chain goes on from there.
        commit_next(&store);
    }

    // A value history that does not give the header's root is refused, not written over.
    lose_tree_nodes_from(&path, 4);
    {
        let db = open_raw(&path);
        let values = db.cf_handle("tree_values").unwrap();
        let key = db
            .iterator_cf(values, rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap().0)
            .find(|k| k.ends_with(&6u64.to_be_bytes()))
            .expect("a value written at height 6");
        db.put_cf(values, key, [1, 9, 9]).unwrap();
    }
    match Store::open(&path) {
        Err(StorageError::StateRootMismatch { height, .. }) => assert_eq!(height, 6),
        other => panic!("expected a state root mismatch at 6, got {other:?}"),
    }
}

// ---- state snapshots ----

/// Writes `n` state keys spread over several blocks (and deletes some), so the tree at the
/// last height has many leaves at several depths.
fn many_keys(store: &Store, n: usize) -> u64 {
    let mut height = 0;
    for block in 0..4 {
        let writes: WriteSet = (0..n / 4)
            .map(|i| {
                let key = format!("test/{block}/{i}").into_bytes();
                let value = (i % 3 != 0 || block == 0)
                    .then(|| format!("value {i} of {block}").into_bytes());
                (key, Some(value.unwrap_or_else(|| b"x".to_vec())))
            })
            .collect();
        height = commit_writes(store, writes).height;
    }
    // Deletes: keys that leave the tree before the snapshot's height.
    let deletes: WriteSet = (0..n / 8)
        .map(|i| (format!("test/1/{i}").into_bytes(), None))
        .collect();
    commit_writes(store, deletes).height.max(height)
}

/// A store with only genesis, as a node starting by state sync has.
fn empty_store() -> (tempfile::TempDir, Store) {
    new_store()
}

#[test]
fn a_snapshot_restores_the_state_and_refuses_a_forged_chunk() {
    use caihong_node::storage::snapshot::{ChunkError, SnapshotRestore};
    let (_dir, store) = new_store();
    let height = many_keys(&store, 2_000);
    let served = store.block(height).unwrap().unwrap();
    let cert = certificate(&served);
    let root = served.header.state_root;
    let (_dir2, target) = empty_store();
    let mut restore = SnapshotRestore::new(&target, height, root).unwrap();
    let mut chunks = 0;
    let mut forged_refused = 0;
    while !restore.is_done() {
        let chunk = store
            .snapshot_chunk(height, restore.after(), 4 * 1024)
            .unwrap();
        chunks += 1;
        if chunks % 3 == 0 {
            // A peer changes one value: refused, nothing of it written, and the same chunk
            // from an honest peer is then taken.
            let mut forged = chunk.clone();
            forged.entries[0].1.push(b'!');
            assert!(matches!(
                restore.add(forged),
                Err(ChunkError::Verify { .. })
            ));
            // A peer drops an entry in the middle.
            let mut gapped = chunk.clone();
            if gapped.entries.len() > 2 {
                gapped.entries.remove(1);
                assert!(matches!(
                    restore.add(gapped),
                    Err(ChunkError::Verify { .. })
                ));
            }
            forged_refused += 1;
        }
        if chunks == 4 && !chunk.last {
            // A peer claims the state ends early.
            let mut short = chunk.clone();
            short.last = true;
            assert!(
                matches!(restore.add(short), Err(ChunkError::NotLast { .. })),
                "an early end is refused"
            );
            // The entries verified as a prefix and stay: the next chunk starts after them.
            continue;
        }
        restore.add(chunk).unwrap();
    }
    assert!(chunks > 10, "{chunks} chunks");
    assert!(forged_refused > 2);
    restore.finish(&served, &cert).unwrap();
    assert_eq!(target.latest_height().unwrap(), Some(height));
    assert_eq!(target.state_root(height).unwrap(), root);
    assert_eq!(target.first_block().unwrap(), height);
    assert_eq!(
        all_state(&target.state_view().unwrap()),
        all_state(&store.state_view().unwrap()),
        "the restored state is the served state"
    );
    // The restored store proves its state and goes on committing, like the source.
    let key = format!("test/3/{}", 7).into_bytes();
    target
        .prove(&key, height)
        .unwrap()
        .verify_carried(&root, &key)
        .unwrap();
    let more: WriteSet = [(b"test/after".to_vec(), Some(b"1".to_vec()))].into();
    let a = commit_writes(&store, more.clone());
    let b = commit_writes(&target, more);
    assert_eq!(a.state_root, b.state_root);
    // Its own snapshots start at its first height.
    assert!(target.snapshot_chunk(height - 1, None, 1024).is_err());
    target.snapshot_chunk(height + 1, None, 1024).unwrap();
}

fn subject_write(n: u64, name: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    use caihong_chaincode::subjects::{Subject, SubjectStatus};
    let uscc = caihong_chaincode::uscc::build("91150100", &format!("{n:08}")).unwrap();
    let subject = Subject {
        uscc: uscc.clone(),
        name: name.to_string(),
        roles: Default::default(),
        legal_representative: "张三".into(),
        region_code: "150100".into(),
        qualifications: vec![],
        status: SubjectStatus::Active,
        home: caihong_chaincode::members::MemberId::parse("hohhot").unwrap(),
        version: 1,
        height: 1,
        tx_hash: Hash::ZERO,
    };
    (
        caihong_chaincode::keys::subject(&uscc),
        Some(caihong_chaincode::codec::encode(&subject)),
    )
}

fn names_found(store: &Store, query: &str, how: NameMatch) -> Vec<String> {
    let view = store.state_view().unwrap();
    let hits = view.search_subject_names(query, how, None, 100).unwrap();
    hits.usccs
        .iter()
        .map(|u| {
            let key = caihong_chaincode::keys::subject(&caihong_chaincode::Uscc::parse(u).unwrap());
            let s: caihong_chaincode::subjects::Subject =
                caihong_chaincode::codec::decode(&view.get(&key).unwrap()).unwrap();
            s.name
        })
        .collect()
}

#[test]
fn subjects_are_found_by_a_fragment_of_their_name_through_renames_and_restores() {
    let (_dir, store) = new_store();
    let names = [
        "鄂尔多斯市建工集团有限公司",
        "内蒙古（鄂尔多斯）路桥有限公司",
        "包头市建设工程有限公司",
        "呼和浩特市建工监理有限责任公司",
        "Ａlpha 咨询",
    ];
    commit_writes(
        &store,
        names
            .iter()
            .enumerate()
            .map(|(i, n)| subject_write(i as u64 + 1, n))
            .collect(),
    );
    let contains = |q| names_found(&store, q, NameMatch::Contains);
    assert_eq!(
        contains("鄂尔多斯"),
        vec![
            "鄂尔多斯市建工集团有限公司",
            "内蒙古（鄂尔多斯）路桥有限公司"
        ]
    );
    assert_eq!(
        names_found(&store, "鄂尔多斯", NameMatch::StartsWith),
        vec!["鄂尔多斯市建工集团有限公司"]
    );
    assert_eq!(
        names_found(&store, "鄂尔多斯", NameMatch::Inside),
        vec!["内蒙古（鄂尔多斯）路桥有限公司"]
    );
    assert_eq!(
        names_found(&store, "询", NameMatch::Inside),
        vec!["Ａlpha 咨询"]
    );
    assert!(names_found(&store, "Ａ", NameMatch::Inside).is_empty());
    // "建工" is a bigram of two names; "建设工" is not a substring of "建工".
    assert_eq!(contains("建工").len(), 2);
    assert_eq!(contains("建设工"), vec!["包头市建设工程有限公司"]);
    // Bigrams all present but not adjacent: no match.
    assert!(contains("建工程").is_empty());
    // One character, any position, including the last; full-width and case folded.
    assert_eq!(contains("询"), vec!["Ａlpha 咨询"]);
    assert_eq!(contains("(鄂尔多斯)").len(), 1);
    assert_eq!(contains("ALPHA咨询"), vec!["Ａlpha 咨询"]);
    assert_eq!(contains("有限").len(), 4);
    // Paging: after the first hit comes the rest.
    let view = store.state_view().unwrap();
    let first = view
        .search_subject_names("有限", NameMatch::Contains, None, 1)
        .unwrap();
    assert_eq!(first.usccs.len(), 1);
    let rest = view
        .search_subject_names("有限", NameMatch::Contains, first.more_after.as_deref(), 10)
        .unwrap();
    assert_eq!(rest.usccs.len(), 3);
    assert!(rest.more_after.is_none());
    drop(view);

    // A rename takes the old name's postings away.
    commit_writes(&store, [subject_write(1, "东胜区城建公司")].into());
    assert_eq!(contains("鄂尔多斯"), vec!["内蒙古（鄂尔多斯）路桥有限公司"]);
    assert_eq!(contains("城建"), vec!["东胜区城建公司"]);
    assert!(contains("建工集团").is_empty());

    // A node restored from a state snapshot finds the same names, also when an earlier
    // restore (of an older height, before the rename) stopped half-way.
    let height = store.latest_height().unwrap().unwrap();
    let served = store.block(height).unwrap().unwrap();
    let (_dir2, target) = empty_store();
    {
        let older = store.block(height - 1).unwrap().unwrap();
        let mut first = caihong_node::storage::snapshot::SnapshotRestore::new(
            &target,
            height - 1,
            older.header.state_root,
        )
        .unwrap();
        let chunk = store.snapshot_chunk(height - 1, None, 1 << 20).unwrap();
        first.add(chunk).unwrap();
        assert!(
            !names_found(&target, "建工集团", NameMatch::Contains).is_empty(),
            "the first attempt indexed the old name"
        );
    }
    let mut restore = caihong_node::storage::snapshot::SnapshotRestore::new(
        &target,
        height,
        served.header.state_root,
    )
    .unwrap();
    while !restore.is_done() {
        let chunk = store
            .snapshot_chunk(height, restore.after(), 64 * 1024)
            .unwrap();
        restore.add(chunk).unwrap();
    }
    restore.finish(&served, &certificate(&served)).unwrap();
    assert_eq!(
        names_found(&target, "鄂尔多斯", NameMatch::Contains),
        vec!["内蒙古（鄂尔多斯）路桥有限公司"]
    );
    assert_eq!(names_found(&target, "建", NameMatch::Contains).len(), 3);
}
