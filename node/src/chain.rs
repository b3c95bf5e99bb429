//! What the committed chain says about the next block: the genesis header, the context a block
//! after a given header executes in, and the members and validator set a state holds.
//!
//! Plain functions over headers, write sets and the store, shared by the height pipeline,
//! transaction intake, the light client and the API; nothing here keeps state.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use caihong_chaincode::exec::BlockContext;
use caihong_chaincode::genesis::Genesis;
use caihong_chaincode::members::members;
use caihong_chaincode::{Hash, PublicKey, WriteSet};
use caihong_consensus::{ValidatorSet, ValidatorSetError};

use crate::block::{Header, receipts_root, txs_root, validators_hash};
use crate::storage::{Store, genesis_state_root, member_node_keys};

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The genesis header of an alliance whose initial state is `writes`.
pub fn genesis_header(genesis: &Genesis, writes: &WriteSet) -> Header {
    initial_header(
        &genesis.chain_id,
        genesis.genesis_time_ms,
        crate::config::genesis_hash(genesis),
        writes,
    )
}

/// The height-0 header over the initial state `writes`; its parent hash names the genesis
/// document it came from.
pub fn initial_header(
    chain_id: &str,
    time_ms: u64,
    parent_hash: Hash,
    writes: &WriteSet,
) -> Header {
    let validators = member_node_keys(&caihong_chaincode::MemState::new(), writes);
    Header {
        chain_id: chain_id.to_string(),
        height: 0,
        time_ms,
        parent_hash,
        proposer: PublicKey([0; 32]),
        txs_root: txs_root(&[]),
        receipts_root: receipts_root(&[]),
        state_root: genesis_state_root(writes),
        next_validators_hash: validators_hash(&validators),
    }
}

/// The context of a block built now on `parent`: its time is now, or just after the parent's
/// if this clock is behind.
pub fn context_after(parent: &Header, chain_id: &str) -> BlockContext {
    BlockContext {
        chain_id: chain_id.to_string(),
        height: parent.height + 1,
        time_ms: now_ms().max(parent.time_ms + 1),
        parent_hash: parent.hash(),
    }
}

/// The context of the block after the latest committed one (what admission checks against).
pub fn next_block_context(store: &Store, chain_id: &str) -> anyhow::Result<BlockContext> {
    let parent = store.latest_header()?.context("store has no genesis")?;
    Ok(context_after(&parent, chain_id))
}

/// Members at the latest committed state: (node key, p2p address).
pub fn current_members(store: &Store) -> anyhow::Result<Vec<(PublicKey, String)>> {
    let view = store.state_view()?;
    Ok(members(&view)
        .into_iter()
        .map(|m| (m.node_key, m.p2p_address))
        .collect())
}

/// The validator set of members with node keys `keys`: every member has one vote.
pub fn validator_set(keys: &[PublicKey]) -> Result<ValidatorSet, ValidatorSetError> {
    ValidatorSet::equal_power(keys.iter().map(|k| caihong_consensus::PublicKey(k.0)))
}
