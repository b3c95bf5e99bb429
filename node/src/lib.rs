//! The Caihong node: hosts consensus and chaincode over RocksDB, libp2p and HTTP.
//!
//! # Layout
//! Modules in dependency order: each uses only modules above it.
//! - [`block`]: block headers and bodies, Merkle roots, the checks every reader of a block makes.
//! - [`sigbatch`]: batched ed25519 verification of transactions.
//! - [`signer_state`]: what the node key signed, kept outside `data/`.
//! - [`network`]: libp2p with an allow list of member node keys, gossip and requests.
//! - [`config`]: a member's home: config.toml, keys, genesis; local testnets.
//! - [`storage`]: RocksDB column families, atomic block commit, state root and proofs.
//! - [`chain`]: the genesis header, block contexts, members and validator sets from state.
//! - [`wire`]: what members send each other besides transactions.
//! - [`mempool`]: verified transactions waiting for a block.
//! - [`intake`]: one thread verifies and admits gossiped and submitted transactions in
//!   batches; one task gossips what the API admitted.
//! - [`light`]: what other regions verify: light blocks, credit proofs, the light client.
//! - [`contract`]: the HTTP API's routes, requests and answers, shared with clients.
//! - [`shared`]: the status and handles the API reads.
//! - [`events`]: the committed-event feed: each block's events derived from the block, its
//!   receipts and immutable records; cursors and kind filters.
//! - [`access`]: who may call the API and the console, and the audit log of who did.
//! - [`api`]: the HTTP API.
//! - [`console`]: the web console on the API's port: server-rendered pages over the same
//!   reads as the API.
//! - [`pipeline`]: the height in progress: bodies, building, validation, commit.
//! - [`block_sync`]: catching up from peers; fetching decided bodies.
//! - [`host`]: drives consensus over the pipeline, block sync and the network.
//! - [`runtime`]: starts the parts and routes network events between them.
//!
//! # Errors
//! - Typed errors (`thiserror`) where a caller decides by kind: [`storage::error::StorageError`],
//!   [`block::BlockError`], [`light::LightError`], [`mempool::AdmitError`],
//!   [`network::NetworkError`], [`config::ConfigError`]. Each says what was wrong and what to do.
//! - `anyhow` where the only thing to do is stop and report: starting the node
//!   ([`runtime::run`]) and the consensus host's loop, whose error stops the node with the
//!   reason (a decided block that does not execute, a signer state that cannot be saved).
//! - Panics only on a broken invariant of this process: a poisoned lock (another thread
//!   panicked holding it), or a RocksDB read failing inside a
//!   [`StateReader`](caihong_chaincode::StateReader) call, whose interface cannot return an
//!   error: the node stops rather than execute a block on a state it could not read.
pub mod access;
pub mod api;
pub mod backup;
pub mod block;
pub mod block_sync;
#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod chain;
pub mod config;
pub mod console;
pub mod contract;
pub mod events;
pub mod host;
pub mod intake;
pub mod light;
pub mod mempool;
pub mod network;
pub mod pipeline;
pub mod retention;
pub mod runtime;
pub mod shared;
pub mod sigbatch;
pub mod signer_state;
pub mod state_sync;
pub mod storage;
pub mod tls;
pub mod wire;
