//! The Caihong node: hosts consensus and chaincode over RocksDB, libp2p and HTTP.
//!
//! # Layout
//! - [`block`]: block headers and bodies, Merkle roots.
//! - [`config`]: a member's home: config.toml, keys, genesis; local testnets.
//! - [`storage`]: RocksDB column families, atomic block commit, state root and proofs.
//! - [`network`]: libp2p with an allow list of member node keys, gossip and block sync.
//! - [`intake`]: one thread verifies and admits gossiped and submitted transactions in batches.
//! - [`mempool`]: verified transactions waiting for a block.
//! - [`runtime`]: the core loop hosting consensus; [`api`]: the HTTP API.
//! - [`signer_state`]: what the node key signed, kept outside `data/`.
pub mod api;
pub mod block;
#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod config;
pub mod intake;
pub mod light;
pub mod mempool;
pub mod network;
pub mod runtime;
pub mod sigbatch;
pub mod signer_state;
pub mod storage;
