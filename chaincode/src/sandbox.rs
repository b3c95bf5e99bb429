//! An in-memory alliance for tests, examples and benchmarks: genesis with
//! deterministic keys, blocks executed exactly as a node executes them
//! ([`crate::exec::execute_block`]), and a clock that only moves when told.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;

use crate::exec::{BlockContext, Receipt, TxStatus, execute_block};
use crate::genesis::{Genesis, GenesisMember};
use crate::members::Role;
use crate::params::ChainParams;
use crate::state::{MemState, WriteSet};
use crate::tx::{Action, Transaction, VerifiedTx};
use crate::types::{Hash, PublicKey, TimestampMs};
use crate::{codec, exec};

/// A deterministic ed25519 key from a label.
pub fn key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&Hash::of_parts(&[b"caihong/sandbox-key/", label.as_bytes()]).0)
}

pub fn public(key: &SigningKey) -> PublicKey {
    PublicKey::from(&key.verifying_key())
}

/// Example cities: (id, name, region code).
pub const CITIES: [(&str, &str, &str); 9] = [
    ("hohhot", "呼和浩特市公共资源交易中心", "150100"),
    ("baotou", "包头市公共资源交易中心", "150200"),
    ("ordos", "鄂尔多斯市公共资源交易中心", "150600"),
    ("yinchuan", "银川市公共资源交易中心", "640100"),
    ("lanzhou", "兰州市公共资源交易中心", "620100"),
    ("xian", "西安市公共资源交易中心", "610100"),
    ("zhengzhou", "郑州市公共资源交易中心", "410100"),
    ("jinan", "济南市公共资源交易中心", "370100"),
    ("taiyuan", "太原市公共资源交易中心", "140100"),
];

#[derive(Debug)]
pub struct Sandbox {
    pub state: MemState,
    pub chain_id: String,
    pub height: u64,
    pub time_ms: TimestampMs,
    pub parent_hash: Hash,
    /// Milliseconds added per block.
    pub block_interval_ms: u64,
}

/// 2024-06-01 00:00 Beijing time.
pub const SANDBOX_GENESIS_TIME_MS: TimestampMs = 1_717_171_200_000;

impl Sandbox {
    /// An alliance of the first `members` example cities with default parameters.
    pub fn new(members: usize) -> Self {
        Self::with_params(members, ChainParams::default())
    }

    pub fn with_params(members: usize, params: ChainParams) -> Self {
        let genesis = Genesis {
            chain_id: "caihong-sandbox".into(),
            genesis_time_ms: SANDBOX_GENESIS_TIME_MS,
            members: CITIES[..members]
                .iter()
                .map(|(id, name, region)| GenesisMember {
                    id: id.to_string(),
                    name: name.to_string(),
                    region_code: region.to_string(),
                    node_key: public(&Self::node_key(id)),
                    admin_keys: vec![public(&Self::admin_key(id))],
                    p2p_address: format!("/dns4/{id}.example/tcp/26656"),
                    encryption_key: Some(Self::encryption_public(id)),
                })
                .collect(),
            params,
        };
        let mut state = MemState::new();
        state.apply(&genesis.initial_state().expect("sandbox genesis is valid"));
        Sandbox {
            state,
            chain_id: genesis.chain_id,
            height: 0,
            time_ms: SANDBOX_GENESIS_TIME_MS,
            parent_hash: Hash::of(b"genesis"),
            block_interval_ms: 1000,
        }
    }

    /// The whole state as writes: what a store's genesis commits for this alliance.
    pub fn state_writes(&self) -> WriteSet {
        self.state
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect()
    }

    pub fn admin_key(member: &str) -> SigningKey {
        key(&format!("{member}/admin"))
    }

    pub fn node_key(member: &str) -> SigningKey {
        key(&format!("{member}/node"))
    }

    /// A member's deterministic X25519 key for sealed seat notices.
    pub fn encryption_key(member: &str) -> x25519_dalek::StaticSecret {
        x25519_dalek::StaticSecret::from(
            Hash::of_parts(&[b"caihong/sandbox-encryption/", member.as_bytes()]).0,
        )
    }

    pub fn encryption_public(member: &str) -> crate::types::EncryptionKey {
        crate::experts::seal::encryption_public(&Self::encryption_key(member))
    }

    /// Registers an operator of `member` with `roles` and returns its key.
    pub fn operator(&mut self, member: &str, label: &str, roles: &[Role]) -> SigningKey {
        let k = key(&format!("{member}/{label}"));
        let receipt = self.run(
            &Self::admin_key(member),
            Action::Operator(crate::members::OperatorAction::Register {
                key: public(&k),
                name: label.to_string(),
                roles: roles.iter().copied().collect(),
            }),
        );
        assert!(receipt.is_success(), "registering operator: {receipt:?}");
        k
    }

    /// Signs `actions` in order (nonces assigned per signer) without running them.
    pub fn sign(&self, actions: &[(&SigningKey, Action)]) -> Vec<VerifiedTx> {
        let mut nonces: BTreeMap<PublicKey, u64> = BTreeMap::new();
        actions
            .iter()
            .map(|(k, action)| {
                let signer = public(k);
                let nonce = nonces
                    .entry(signer)
                    .or_insert_with(|| exec::next_nonce(&self.state, &signer));
                let tx = Transaction {
                    chain_id: self.chain_id.clone(),
                    signer,
                    nonce: *nonce,
                    action: action.clone(),
                };
                *nonce += 1;
                tx.sign(k)
                    .verify(&self.chain_id)
                    .expect("sandbox signs correctly")
            })
            .collect()
    }

    /// The context of the next block.
    pub fn next_block(&self) -> BlockContext {
        BlockContext {
            chain_id: self.chain_id.clone(),
            height: self.height + 1,
            time_ms: self.time_ms + self.block_interval_ms,
            parent_hash: self.parent_hash,
        }
    }

    /// Executes one block of transactions and commits it.
    pub fn block(&mut self, txs: &[VerifiedTx]) -> Vec<Receipt> {
        let ctx = self.next_block();
        let (writes, receipts) = execute_block(&self.state, &ctx, txs);
        self.state.apply(&writes);
        self.height = ctx.height;
        self.time_ms = ctx.time_ms;
        // Stand-in for a header hash: commits to the parent, the writes and receipts.
        self.parent_hash = Hash::of_parts(&[
            &self.parent_hash.0,
            &codec::encode(&writes),
            &codec::encode(&receipts),
        ]);
        receipts
    }

    /// Runs one action in its own block.
    pub fn run(&mut self, key: &SigningKey, action: Action) -> Receipt {
        let txs = self.sign(&[(key, action)]);
        self.block(&txs).remove(0)
    }

    /// Runs one action and returns its error code, panicking if it succeeded.
    pub fn run_err(&mut self, key: &SigningKey, action: Action) -> crate::TxError {
        match self.run(key, action).status {
            TxStatus::Failed(e) => e,
            TxStatus::Success(out) => panic!("expected a failure, got success {out:?}"),
        }
    }

    /// Runs an empty block.
    pub fn empty_block(&mut self) {
        self.block(&[]);
    }

    /// Moves the clock forward by whole days (no block is made).
    pub fn advance_days(&mut self, days: u64) {
        self.time_ms += days * 86_400_000;
    }

    pub fn today(&self) -> crate::Date {
        crate::types::date_of(self.time_ms)
    }
}
