//! Block sync: a member behind its peers catches up by asking them for blocks with their
//! commit certificates, and a member that decided a block without its body fetches the body.
//!
//! Its own task: it gossips this member's committed height each second, learns the peers'
//! from theirs, and when a peer is ahead asks it for the next blocks. Answers go to the
//! consensus host as [`SyncEvent`]s; the host feeds each certificate to consensus, which
//! verifies it against the height's validator set and decides, and the height pipeline
//! re-executes and commits the block as any other. The consensus loop never waits on a peer.
//!
//! [`serve_blocks`] answers other members' requests from the store.

use std::time::{Duration, Instant};

use caihong_chaincode::{Hash, codec};
use caihong_consensus::CommitCertificate;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use crate::block::Block;
use crate::network::{self, NetworkHandle, NodeKey, Topic};
use crate::storage::Store;
use crate::wire::{Envelope, SyncRequest, SyncResponse, WireMessage};

/// Most blocks answered per sync request (fewer when they would not fit one response).
pub const SYNC_BATCH: u64 = 64;

/// A peer this far ahead of the height in progress for this long means this member is behind
/// (the height's votes are not reaching it) rather than just slower.
const STALLED_AFTER: Duration = Duration::from_secs(3);

/// Attempts, half a second apart, to fetch a decided block's body before giving up.
const BODY_ATTEMPTS: u32 = 20;

/// What block sync hands the consensus host.
#[derive(Debug)]
pub enum SyncEvent {
    /// Blocks from `peer`, from the height in progress on, with their certificates.
    Blocks {
        peer: NodeKey,
        blocks: Vec<(Block, CommitCertificate)>,
    },
    /// The body of the decided block `hash` at `height`, or `None` if no peer sent it.
    Body {
        height: u64,
        hash: Hash,
        block: Option<Box<Block>>,
    },
}

/// Whether this member is catching up, the highest height a peer announced, and the last
/// height each peer announced (for the console's member list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    pub catching_up: bool,
    pub highest_peer_height: u64,
    pub peer_heights: std::collections::BTreeMap<NodeKey, u64>,
}

/// Who is ahead and whether to ask: the decisions of block sync, without the network.
#[derive(Debug)]
pub struct Catchup {
    committed: u64,
    committed_at: Instant,
    /// The highest height a peer announced, and that peer (none once it failed us).
    highest: (u64, Option<NodeKey>),
    /// The last height each peer announced.
    announced: std::collections::BTreeMap<NodeKey, u64>,
}

impl Catchup {
    pub fn new(committed: u64, now: Instant) -> Self {
        Catchup {
            committed,
            committed_at: now,
            highest: (committed, None),
            announced: Default::default(),
        }
    }

    /// A peer announced its committed height.
    pub fn peer_at(&mut self, height: u64, peer: NodeKey) {
        self.heard(height, peer, None);
    }

    /// Member `origin` announced its committed height, delivered by peer `from` (which may
    /// have relayed it). The height is recorded as the origin's; `from` is who is asked for
    /// blocks, as before (a member relays what it has taken in).
    pub fn heard(&mut self, height: u64, from: NodeKey, origin: Option<NodeKey>) {
        self.announced.insert(origin.unwrap_or(from), height);
        if height > self.highest.0 {
            self.highest = (height, Some(from));
        }
    }

    /// This member committed `height`.
    pub fn committed(&mut self, height: u64, now: Instant) {
        if height != self.committed {
            self.committed = height;
            self.committed_at = now;
        }
    }

    /// Behind: a peer is past the height in progress, or has committed it while this member
    /// has been on it for [`STALLED_AFTER`].
    pub fn catching_up(&self, now: Instant) -> bool {
        let peer_height = self.highest.0;
        peer_height > self.committed + 1
            || (peer_height > self.committed
                && now.duration_since(self.committed_at) > STALLED_AFTER)
    }

    /// Whom to ask for which blocks, if catching up.
    pub fn next_request(&self, now: Instant) -> Option<(NodeKey, u64, u64)> {
        let (peer_height, peer) = self.highest;
        let from = self.committed + 1;
        let peer = peer.filter(|_| self.catching_up(now))?;
        Some((peer, from, peer_height.min(from + SYNC_BATCH - 1)))
    }

    /// The peer asked had nothing to send, or did not answer: forget it (it may be gone), so
    /// the next announcement from a live peer ahead picks whom to ask.
    pub fn peer_failed(&mut self) {
        self.highest = (self.committed, None);
    }

    pub fn status(&self, now: Instant) -> SyncStatus {
        SyncStatus {
            catching_up: self.catching_up(now),
            highest_peer_height: self.highest.0,
            peer_heights: self.announced.clone(),
        }
    }
}

/// The consensus host's handle on block sync.
#[derive(Clone)]
pub struct BlockSync {
    peer_heights: mpsc::Sender<(u64, NodeKey, Option<NodeKey>)>,
    committed: watch::Sender<u64>,
    status: watch::Receiver<SyncStatus>,
    net: NetworkHandle,
    events: mpsc::Sender<SyncEvent>,
}

impl std::fmt::Debug for BlockSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSync")
            .field("committed", &*self.committed.borrow())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl BlockSync {
    /// Starts the sync task at committed height `committed`; its answers arrive on the
    /// returned receiver.
    pub fn spawn(net: NetworkHandle, committed: u64) -> (BlockSync, mpsc::Receiver<SyncEvent>) {
        let (events, received) = mpsc::channel(16);
        let (peer_heights, heights) = mpsc::channel(256);
        let (committed_tx, committed_rx) = watch::channel(committed);
        let (status_tx, status) = watch::channel(SyncStatus::default());
        tokio::spawn(sync_task(
            net.clone(),
            events.clone(),
            heights,
            committed_rx,
            status_tx,
        ));
        let sync = BlockSync {
            peer_heights,
            committed: committed_tx,
            status,
            net,
            events,
        };
        (sync, received)
    }

    /// Member `origin` announced `height`, delivered by peer `from` (dropped if the task is
    /// behind: the member repeats it).
    pub fn peer_at(&self, height: u64, from: NodeKey, origin: Option<NodeKey>) {
        let _ = self.peer_heights.try_send((height, from, origin));
    }

    pub fn committed(&self, height: u64) {
        self.committed.send_replace(height);
    }

    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }

    /// Fetches the body of the decided block `hash` at `height` from peers, in the background;
    /// the answer arrives as [`SyncEvent::Body`]. Tries for a while (peers that were cut off
    /// or are restarting may answer later).
    pub fn fetch_body(&self, height: u64, hash: Hash) {
        let (net, events) = (self.net.clone(), self.events.clone());
        tokio::spawn(async move {
            let mut block = None;
            for attempt in 1..=BODY_ATTEMPTS {
                block = fetch_body_once(&net, height, hash).await;
                if block.is_some() {
                    if attempt > 1 {
                        info!(height, %hash, attempt, "fetched the body of a decided block");
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let block = block.map(Box::new);
            let _ = events
                .send(SyncEvent::Body {
                    height,
                    hash,
                    block,
                })
                .await;
        });
    }
}

/// How many attempts [`BlockSync::fetch_body`] makes, and over about how many seconds.
pub fn body_fetch_span() -> (u32, u32) {
    (BODY_ATTEMPTS, BODY_ATTEMPTS / 2)
}

async fn sync_task(
    net: NetworkHandle,
    events: mpsc::Sender<SyncEvent>,
    mut peer_heights: mpsc::Receiver<(u64, NodeKey, Option<NodeKey>)>,
    mut committed: watch::Receiver<u64>,
    status: watch::Sender<SyncStatus>,
) {
    let mut catchup = Catchup::new(*committed.borrow(), Instant::now());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // A slow request must not be followed by a burst of missed ticks.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            Some((height, from, origin)) = peer_heights.recv() => catchup.heard(height, from, origin),
            changed = committed.changed() => {
                if changed.is_err() {
                    return;
                }
                catchup.committed(*committed.borrow_and_update(), Instant::now());
            }
            _ = tick.tick() => {
                catchup.committed(*committed.borrow_and_update(), Instant::now());
                publish_status(&net, catchup.committed).await;
                if let Some((peer, from, to)) = catchup.next_request(Instant::now()) {
                    match request_blocks(&net, peer, from, to).await {
                        Ok(blocks) if blocks.is_empty() => catchup.peer_failed(),
                        Ok(blocks) => {
                            if events.send(SyncEvent::Blocks { peer, blocks }).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            debug!("sync from peer failed: {e}");
                            catchup.peer_failed();
                        }
                    }
                }
                status.send_replace(catchup.status(Instant::now()));
            }
        }
    }
}

/// Gossips this member's committed height (peers behind learn whom to ask).
async fn publish_status(net: &NetworkHandle, height: u64) {
    let envelope = Envelope {
        sent_ms: crate::chain::now_ms(),
        message: WireMessage::Status { height },
    };
    if let Err(e) = net
        .publish(Topic::Consensus, codec::encode(&envelope))
        .await
    {
        debug!("publishing the status: {e}");
    }
}

async fn request_blocks(
    net: &NetworkHandle,
    peer: NodeKey,
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<(Block, CommitCertificate)>> {
    let request = codec::encode(&SyncRequest::Blocks { from, to });
    let bytes = net.request(peer, request).await?;
    let response: SyncResponse = codec::decode(&bytes)?;
    Ok(response.blocks)
}

/// Asks every peer at once for the body of block `hash` at `height` and keeps the first that
/// matches. Peers of an older version answer only the request for committed blocks: asked
/// last.
async fn fetch_body_once(net: &NetworkHandle, height: u64, hash: Hash) -> Option<Block> {
    let peers = net.peers().await;
    let request = codec::encode(&SyncRequest::Body { height, hash });
    let mut asks: futures::stream::FuturesUnordered<_> = peers
        .iter()
        .map(|&peer| {
            let request = request.clone();
            async move { net.request(peer, request).await }
        })
        .collect();
    while let Some(answer) = asks.next().await {
        let body = answer
            .ok()
            .and_then(|bytes| codec::decode::<Option<Block>>(&bytes).ok().flatten());
        if let Some(block) = body.filter(|b| b.hash() == hash) {
            return Some(block);
        }
    }
    for peer in peers {
        if let Ok(blocks) = request_blocks(net, peer, height, height).await {
            return blocks
                .into_iter()
                .map(|(block, _)| block)
                .find(|b| b.hash() == hash);
        }
    }
    None
}

/// The answer to a peer's request for blocks `from..=to`: at most [`SYNC_BATCH`] blocks, fewer
/// when they would not fit one response (a single block always fits; see
/// `config::MAX_BLOCK_BYTES_LIMIT`).
pub fn serve_blocks(store: &Store, max_response_size: usize, from: u64, to: u64) -> SyncResponse {
    let to = to.min(from.saturating_add(SYNC_BATCH - 1));
    let limit = (caihong_chaincode::codec::MAX_ENCODED_LEN as usize).min(max_response_size)
        - network::BLOCK_MESSAGE_OVERHEAD;
    let mut blocks = Vec::new();
    let mut bytes = 0;
    for h in from.max(1)..=to {
        match (store.block(h), store.commit_certificate(h)) {
            (Ok(Some(b)), Ok(Some(c))) => {
                bytes += codec::encoded_len(&b) + codec::encoded_len(&c);
                if bytes > limit && !blocks.is_empty() {
                    break;
                }
                blocks.push((b, c));
            }
            _ => break,
        }
    }
    SyncResponse { blocks }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeKey = [1; 32];
    const B: NodeKey = [2; 32];

    /// A peer more than one height ahead starts catch-up at once, from the height in
    /// progress, at most a batch at a time; catching up ends when this member reaches it.
    #[test]
    fn a_peer_two_heights_ahead_is_asked_for_the_missing_blocks() {
        let start = Instant::now();
        let mut sync = Catchup::new(10, start);
        assert_eq!(sync.next_request(start), None);
        sync.peer_at(11, A);
        assert_eq!(
            sync.next_request(start),
            None,
            "one height ahead: in progress"
        );
        sync.peer_at(200, B);
        sync.peer_at(150, A);
        // B relays a member's lower height: recorded as that member's, not B's.
        sync.heard(120, B, Some([7; 32]));
        assert_eq!(sync.next_request(start), Some((B, 11, 11 + SYNC_BATCH - 1)));
        assert_eq!(
            sync.status(start),
            SyncStatus {
                catching_up: true,
                highest_peer_height: 200,
                peer_heights: [(A, 150), (B, 200), ([7; 32], 120)].into(),
            }
        );
        sync.committed(199, start);
        assert_eq!(sync.next_request(start), None);
        sync.committed(200, start);
        assert!(!sync.status(start).catching_up);
    }

    /// A peer one height ahead means only that it committed first, until this member has
    /// been on that height for a while: then its votes are not arriving, and it syncs.
    #[test]
    fn a_peer_one_height_ahead_is_asked_only_after_a_stall() {
        let start = Instant::now();
        let mut sync = Catchup::new(10, start);
        sync.peer_at(11, A);
        assert_eq!(sync.next_request(start + Duration::from_secs(2)), None);
        let later = start + STALLED_AFTER + Duration::from_millis(1);
        assert_eq!(sync.next_request(later), Some((A, 11, 11)));
        // Committing restarts the clock.
        sync.committed(11, later);
        sync.peer_at(12, A);
        assert_eq!(sync.next_request(later + Duration::from_secs(1)), None);
    }

    /// A peer that fails or has nothing is forgotten; the next announcement picks a peer.
    #[test]
    fn a_failed_peer_is_forgotten_until_a_peer_announces_again() {
        let now = Instant::now();
        let mut sync = Catchup::new(10, now);
        sync.peer_at(100, A);
        sync.peer_failed();
        assert_eq!(sync.next_request(now), None);
        assert_eq!(sync.status(now).highest_peer_height, 10);
        sync.peer_at(90, B);
        assert_eq!(sync.next_request(now), Some((B, 11, 74)));
    }
}
