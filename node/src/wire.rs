//! What members send each other besides transactions: the consensus topic's messages and the
//! block sync requests and answers. Encoded with `caihong_chaincode::codec`.

use caihong_chaincode::Hash;
use caihong_consensus::{CommitCertificate, Message};
use serde::{Deserialize, Serialize};

use crate::block::Block;

/// What travels on the consensus topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireMessage {
    Consensus(Message),
    /// A proposed block's body (consensus carries only its hash).
    Block(Block),
    /// The sender's latest committed height, for catch-up.
    Status {
        height: u64,
    },
}

/// A [`WireMessage`] as gossiped. Gossipsub drops a payload it has seen before, so without the
/// send time a vote re-broadcast after a timeout (because the first copy was lost, e.g. before
/// the mesh formed) would never be delivered and the height could stall.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub sent_ms: u64,
    pub message: WireMessage,
}

/// Catch-up requests and answers (request-response).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Blocks `from..=to` with their commit certificates.
    Blocks { from: u64, to: u64 },
    /// The body of block `hash` at `height`, committed or not, answered with an
    /// `Option<Block>`. A member restarted after it locked decides on its peers' precommits
    /// without the body, which it lost with its memory; the peers validated the block but may
    /// not have committed it yet (they wait for this member's precommit).
    Body { height: u64, hash: Hash },
    /// Light blocks (headers, certificates, validator set changes) from `from`, at most
    /// `count`, answered with the bytes of `light::encode_light`: how a node starting by
    /// state sync verifies the chain up to the snapshot's height.
    Light { from: u64, count: u64 },
    /// A chunk of the state at `height` after key hash `after` (from the first when `None`)
    /// of about `max_bytes` (the server caps it), answered with a [`SnapshotAnswer`].
    Snapshot {
        height: u64,
        after: Option<Hash>,
        max_bytes: u32,
    },
}

/// The answer to [`SyncRequest::Snapshot`]: a chunk, or why not (a pruned height, busy).
pub type SnapshotAnswer = Result<crate::storage::snapshot::SnapshotChunk, String>;

/// The answer to [`SyncRequest::Blocks`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResponse {
    pub blocks: Vec<(Block, CommitCertificate)>,
}
