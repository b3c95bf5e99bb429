//! State sync: a node whose store holds only genesis starts from a recent state snapshot its
//! peers serve, instead of replaying every block (`caihong start --state-sync`).
//!
//! The joining node verifies the chain's headers from genesis with the light client
//! ([`LightClient`]: every commit certificate against the validator set it trusts, every
//! validator change against the header that names it), takes the latest verified height as
//! the snapshot's, and fetches the state at that height in chunks, each checked against the
//! height's state root before it is written ([`SnapshotRestore`]). A peer whose chunk or
//! header does not verify is penalised and not asked again. Then the node stores the height's
//! block and certificate as its latest, and block sync and consensus go on from there.
//!
//! Serving is bounded: at most [`SERVING_SLOTS`] chunks are read at once, each of at most
//! [`CHUNK_BYTES`], and a slot is held after its answer long enough that the node serves
//! about [`SERVING_BYTES_PER_SECOND`] of snapshot in all; a peer that finds no free slot is
//! told to retry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use caihong_chaincode::codec;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::block::Block;
use crate::config::Home;
use crate::light::{self, LightBlock, LightClient};
use crate::network::{NetworkHandle, NodeKey, Responder};
use crate::storage::Store;
use crate::storage::snapshot::{SnapshotChunk, SnapshotRestore};
use crate::wire::{SnapshotAnswer, SyncRequest, SyncResponse};

/// Entries per chunk, by bytes: far below the network's response limit.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Chunks served at once.
pub const SERVING_SLOTS: usize = 2;

/// About how many bytes of snapshot a node serves per second, all peers together.
pub const SERVING_BYTES_PER_SECOND: usize = 16 << 20;

/// Light blocks asked for at once.
const LIGHT_BATCH: u64 = 500;

/// How long a joining node waits for its first peer.
const PEER_WAIT: Duration = Duration::from_secs(60);

/// What one state sync did.
#[derive(Debug, Clone)]
pub struct Report {
    pub height: u64,
    pub entries: u64,
    pub chunks: u64,
    pub headers_seconds: f64,
    pub state_seconds: f64,
    /// Peers refused for a chunk or header that did not verify, with why.
    pub refused: Vec<(String, String)>,
}

/// The serving side: bounded slots, each held for its share of the byte rate.
#[derive(Debug, Clone)]
pub struct Server {
    slots: Arc<Semaphore>,
    /// Test-only (`byzantine` feature): change a value in every chunk served.
    #[cfg(feature = "byzantine")]
    pub corrupt: bool,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            slots: Arc::new(Semaphore::new(SERVING_SLOTS)),
            #[cfg(feature = "byzantine")]
            corrupt: false,
        }
    }
}

impl Server {
    /// Answers a peer's state sync request off the caller's task; `false` when `request` is
    /// not one.
    pub fn serve(&self, store: &Arc<Store>, request: &SyncRequest, respond: Responder) -> bool {
        match *request {
            SyncRequest::Light { from, count } => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = respond.respond(light_answer(&store, from, count));
                });
            }
            SyncRequest::Snapshot {
                height,
                after,
                max_bytes,
            } => {
                let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                    let busy: SnapshotAnswer =
                        Err("busy serving other snapshot chunks; retry shortly".into());
                    let _ = respond.respond(codec::encode(&busy));
                    return true;
                };
                let store = store.clone();
                #[cfg(feature = "byzantine")]
                let corrupt = self.corrupt;
                tokio::task::spawn_blocking(move || {
                    #[allow(unused_mut)]
                    let mut answer: SnapshotAnswer = store
                        .snapshot_chunk(height, after, (max_bytes as usize).min(CHUNK_BYTES))
                        .map_err(|e| e.to_string());
                    #[cfg(feature = "byzantine")]
                    if let (true, Ok(chunk)) = (corrupt, &mut answer)
                        && let Some((_, value)) = chunk.entries.first_mut()
                    {
                        value.push(0xff);
                    }
                    let bytes = codec::encode(&answer);
                    let len = bytes.len();
                    let _ = respond.respond(bytes);
                    // The slot's share of the rate: SERVING_SLOTS slots serve about
                    // SERVING_BYTES_PER_SECOND together.
                    let share = SERVING_BYTES_PER_SECOND / SERVING_SLOTS;
                    std::thread::sleep(Duration::from_secs_f64(len as f64 / share as f64));
                    drop(slot);
                });
            }
            _ => return false,
        }
        true
    }
}

/// Headers-only light blocks from `from`: nothing (an empty answer) when this store does not
/// hold them.
fn light_answer(store: &Store, from: u64, count: u64) -> Vec<u8> {
    let blocks = (|| -> Result<Vec<LightBlock>, crate::storage::StorageError> {
        let latest = store.latest_height()?.unwrap_or(0);
        if from == 0 || from < store.first_block()? || from > latest {
            return Ok(Vec::new());
        }
        let last = latest.min(from + count.clamp(1, LIGHT_BATCH) - 1);
        light::serve(store, from, last, |_| Ok(None))
    })();
    light::encode_light(&blocks.unwrap_or_default())
}

/// The chunk size a joining node asks for: [`CHUNK_BYTES`], or in the test-only `byzantine`
/// build `CAIHONG_STATE_SYNC_CHUNK_BYTES` (small chunks, so that every peer serves some).
fn chunk_bytes() -> u32 {
    #[cfg(feature = "byzantine")]
    if let Some(n) = std::env::var("CAIHONG_STATE_SYNC_CHUNK_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    CHUNK_BYTES as u32
}

/// The peers a joining node asks, in turn; those that sent something false are dropped.
struct Peers {
    net: NetworkHandle,
    good: Vec<NodeKey>,
    refused: Vec<(String, String)>,
    next: usize,
}

impl Peers {
    async fn connect(net: &NetworkHandle) -> anyhow::Result<Peers> {
        let started = Instant::now();
        loop {
            let peers = net.peers().await;
            if !peers.is_empty() {
                return Ok(Peers {
                    net: net.clone(),
                    good: peers,
                    refused: Vec::new(),
                    next: 0,
                });
            }
            if started.elapsed() > PEER_WAIT {
                bail!(
                    "state sync: no member's node reachable in {} s; check the p2p addresses \
                     and that this city's node key is a member's",
                    PEER_WAIT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The next peer to ask (new connections join the turn).
    async fn pick(&mut self) -> anyhow::Result<NodeKey> {
        for peer in self.net.peers().await {
            let refused = self.refused.iter().any(|(k, _)| *k == hex::encode(peer));
            if !refused && !self.good.contains(&peer) {
                self.good.push(peer);
            }
        }
        if self.good.is_empty() {
            bail!(
                "state sync: every peer sent data that does not verify ({}); start again when an \
                 honest member's node is reachable",
                self.refused
                    .iter()
                    .map(|(k, why)| format!("{}…: {why}", &k[..12]))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        self.next = (self.next + 1) % self.good.len();
        Ok(self.good[self.next])
    }

    async fn refuse(&mut self, peer: NodeKey, why: String) {
        warn!(peer = %hex::encode(peer), "state sync: {why}; not asked again");
        self.net.penalize(peer).await;
        self.good.retain(|p| *p != peer);
        self.refused.push((hex::encode(peer), why));
    }

    /// Asks the next peer; `None` (after a pause) when it did not answer.
    async fn ask_next(
        &mut self,
        request: &SyncRequest,
    ) -> anyhow::Result<Option<(NodeKey, Vec<u8>)>> {
        let peer = self.pick().await?;
        match self.net.request(peer, codec::encode(request)).await {
            Ok(bytes) => Ok(Some((peer, bytes))),
            Err(e) => {
                warn!(peer = %hex::encode(peer), "state sync: {e:#}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(None)
            }
        }
    }
}

/// Starts `store` (which holds only genesis) from a snapshot its peers serve.
pub async fn run(home: &Home, store: &Store, net: &NetworkHandle) -> anyhow::Result<Report> {
    let mut peers = Peers::connect(net).await?;
    let started = Instant::now();
    let (client, tip) = verify_headers(home, &mut peers).await?;
    let headers_seconds = started.elapsed().as_secs_f64();
    let height = client.height();
    if height == 0 {
        bail!(
            "state sync: the alliance has no block after genesis yet; start without --state-sync"
        );
    }
    info!(
        height,
        seconds = headers_seconds,
        "state sync: headers verified from genesis"
    );
    let block = fetch_block(&mut peers, &tip).await?;
    let started = Instant::now();
    let mut restore = SnapshotRestore::new(store, height, tip.header.state_root)?;
    let chunk_bytes = chunk_bytes();
    let mut chunks = 0;
    let mut logged = Instant::now();
    while !restore.is_done() {
        let request = SyncRequest::Snapshot {
            height,
            after: restore.after(),
            max_bytes: chunk_bytes,
        };
        let Some((peer, bytes)) = peers.ask_next(&request).await? else {
            continue;
        };
        let answer = codec::decode::<SnapshotAnswer>(&bytes)
            .map_err(|e| format!("its snapshot answer does not decode: {e}"));
        let chunk: SnapshotChunk = match answer {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(why)) => {
                // Busy, or this height is not kept there: ask another.
                info!(peer = %hex::encode(peer), "state sync: {why}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(why) => {
                peers.refuse(peer, why).await;
                continue;
            }
        };
        if let Err(e) = restore.add(chunk) {
            peers
                .refuse(peer, format!("a snapshot chunk at height {height} {e}"))
                .await;
            continue;
        }
        chunks += 1;
        if logged.elapsed() > Duration::from_secs(10) {
            info!(
                height,
                entries = restore.entries,
                chunks,
                "state sync: restoring"
            );
            logged = Instant::now();
        }
    }
    let entries = restore.entries;
    restore
        .finish(&block, &tip.certificate)
        .context("state sync: storing the snapshot's block")?;
    let state_seconds = started.elapsed().as_secs_f64();
    info!(
        height,
        entries,
        chunks,
        seconds = state_seconds,
        "state sync: state restored and checked"
    );
    Ok(Report {
        height,
        entries,
        chunks,
        headers_seconds,
        state_seconds,
        refused: peers.refused,
    })
}

/// Verifies light blocks from genesis up to a peer's tip; returns the client and the last
/// verified light block.
async fn verify_headers(
    home: &Home,
    peers: &mut Peers,
) -> anyhow::Result<(LightClient, LightBlock)> {
    let mut client = LightClient::from_genesis(&home.genesis)?;
    let mut last = None;
    loop {
        let from = client.height() + 1;
        let request = SyncRequest::Light {
            from,
            count: LIGHT_BATCH,
        };
        let Some((peer, bytes)) = peers.ask_next(&request).await? else {
            continue;
        };
        let blocks = match light::decode_light(&bytes) {
            Ok(blocks) => blocks,
            Err(why) => {
                peers.refuse(peer, why).await;
                continue;
            }
        };
        let count = blocks.len() as u64;
        let mut failed = None;
        for block in blocks {
            if let Err(e) = client.verify(&block) {
                failed = Some(e.to_string());
                break;
            }
            last = Some(block);
        }
        if let Some(why) = failed {
            peers
                .refuse(peer, format!("a header that does not verify: {why}"))
                .await;
            continue;
        }
        // A short answer is that peer's tip.
        if count < LIGHT_BATCH {
            if let Some(last) = last {
                return Ok((client, last));
            }
            if count == 0 && client.height() == 0 {
                bail!(
                    "state sync: the alliance has no block after genesis yet; start without --state-sync"
                );
            }
        }
    }
}

/// The snapshot height's block, checked against its verified header.
async fn fetch_block(peers: &mut Peers, tip: &LightBlock) -> anyhow::Result<Block> {
    let height = tip.header.height;
    loop {
        let request = SyncRequest::Blocks {
            from: height,
            to: height,
        };
        let Some((peer, bytes)) = peers.ask_next(&request).await? else {
            continue;
        };
        let block = codec::decode::<SyncResponse>(&bytes)
            .ok()
            .and_then(|r| r.blocks.into_iter().next())
            .map(|(block, _)| block);
        match block {
            Some(block) if block.hash() == tip.header.hash() => {
                block
                    .check_txs()
                    .map_err(|e| anyhow::anyhow!("block {height}: {e}"))?;
                return Ok(block);
            }
            Some(_) => {
                peers
                    .refuse(peer, format!("block {height} is not the verified one"))
                    .await
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
