//! Storage benchmarks: the state root of a 1000-transaction block's writes (what a proposer
//! and every validator compute per block) and the synced commit of such a block.
//!
//! `cargo bench -p caihong-node --bench storage`

use std::cell::Cell;

use caihong_chaincode::members::{OperatorAction, Role};
use caihong_chaincode::sandbox::{self, Sandbox};
use caihong_chaincode::{
    Action, Hash, Receipt, SignedTransaction, Transaction, TxOutput, TxStatus, WriteSet,
};
use caihong_consensus::CommitCertificate;
use caihong_node::block::{Block, Header, receipts_root, txs_root};
use caihong_node::storage::{Store, genesis_state_root};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const TXS: usize = 1000;

/// Roughly what a registration writes: the nonce, the record and an index entry.
fn tx_writes(block: u64, i: usize) -> WriteSet {
    let id = format!("{block:08}/{i:05}");
    [
        (format!("nonce/{id}").into_bytes(), Some(vec![1; 8])),
        (format!("operator/{id}").into_bytes(), Some(vec![7; 160])),
        (format!("index/member/{id}").into_bytes(), Some(vec![])),
    ]
    .into()
}

fn block_writes(block: u64) -> WriteSet {
    (0..TXS).flat_map(|i| tx_writes(block, i)).collect()
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let sb = Sandbox::new(4);
    let writes = sb.state_writes();
    let header = Header {
        chain_id: sb.chain_id.clone(),
        height: 0,
        time_ms: 0,
        parent_hash: Hash::ZERO,
        proposer: sandbox::public(&Sandbox::node_key("hohhot")),
        txs_root: txs_root(&[]),
        receipts_root: receipts_root(&[]),
        state_root: genesis_state_root(&writes),
        next_validators_hash: Hash::ZERO,
    };
    store.init_genesis(&writes, &header).unwrap();
    (dir, store)
}

fn signed_txs(chain_id: &str, first_nonce: u64) -> Vec<SignedTransaction> {
    let admin = Sandbox::admin_key("hohhot");
    (0..TXS as u64)
        .map(|i| {
            Transaction {
                chain_id: chain_id.into(),
                signer: sandbox::public(&admin),
                nonce: first_nonce + i,
                action: Action::Operator(OperatorAction::Register {
                    key: sandbox::public(&sandbox::key(&format!("bench-{i}"))),
                    name: format!("bench-{i}"),
                    roles: [Role::Registrar].into(),
                }),
            }
            .sign(&admin)
        })
        .collect()
}

fn next_block(store: &Store, writes: &WriteSet) -> (Block, CommitCertificate, Vec<Receipt>) {
    let latest = store.latest_height().unwrap().unwrap();
    let parent = store.block(latest).unwrap().unwrap().header;
    let txs = signed_txs(&parent.chain_id, latest * TXS as u64);
    let receipts: Vec<Receipt> = txs
        .iter()
        .map(|t| Receipt {
            tx_hash: t.hash(),
            status: TxStatus::Success(TxOutput::None),
        })
        .collect();
    let header = Header {
        chain_id: parent.chain_id.clone(),
        height: latest + 1,
        time_ms: parent.time_ms + 1000,
        parent_hash: parent.hash(),
        proposer: parent.proposer,
        txs_root: txs_root(&txs),
        receipts_root: receipts_root(&receipts),
        state_root: store.state_root_after(writes).unwrap(),
        next_validators_hash: Hash::ZERO,
    };
    let block = Block { header, txs };
    let cert = CommitCertificate {
        height: latest + 1,
        round: 0,
        value: caihong_consensus::Hash(block.hash().0),
        signatures: vec![],
    };
    (block, cert, receipts)
}

fn benches(c: &mut Criterion) {
    let (_dir, store) = open();
    // Some history first, so the tree has depth: 10 blocks of 1000 transactions.
    for b in 1..=10 {
        let writes = block_writes(b);
        let (block, cert, receipts) = next_block(&store, &writes);
        store
            .commit_block(&block, &cert, &writes, &receipts)
            .unwrap();
    }

    let mut group = c.benchmark_group("storage");
    group.sample_size(10);
    let writes = block_writes(1_000_000);
    group.bench_function("state_root_after/1000tx (3000 keys)", |b| {
        b.iter(|| store.state_root_after(&writes).unwrap())
    });

    let next_id = Cell::new(100u64);
    group.bench_function("commit_block/1000tx (3000 keys, synced)", |b| {
        b.iter_batched(
            || {
                let id = next_id.get();
                next_id.set(id + 1);
                let writes = block_writes(id);
                let (block, cert, receipts) = next_block(&store, &writes);
                (block, cert, writes, receipts)
            },
            |(block, cert, writes, receipts)| {
                store
                    .commit_block(&block, &cert, &writes, &receipts)
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(storage, benches);
criterion_main!(storage);
