//! The Caihong node: hosts consensus and chaincode over RocksDB, libp2p and HTTP.
//!
//! # Layout
//! - [`block`]: block headers and bodies, Merkle roots.
//! - `storage`: RocksDB column families, atomic block commit, state root and proofs.
//! - `network`: libp2p with an allow list of member node keys, gossip and block sync.
pub mod block;
pub mod config;
pub mod mempool;
pub mod network;
