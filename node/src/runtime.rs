//! The runtime: starts a member node's parts and routes what arrives between them until
//! shutdown.
//!
//! | part | module | owns |
//! |---|---|---|
//! | consensus host | [`crate::host`] | the consensus state machine, the signer state, the status |
//! | height pipeline | [`crate::pipeline`] | bodies, building, validation, commit to the store |
//! | block sync | [`crate::block_sync`] | catching up from peers, fetching decided bodies |
//! | transaction intake | [`crate::intake`] | admission to the mempool, transaction gossip |
//! | API | [`crate::api`] | the HTTP API over [`crate::shared::Shared`] |
//! | network | [`crate::network`] | libp2p: gossip, requests, the member allow list |
//!
//! Network events go one way: transaction gossip to intake, consensus gossip and block
//! requests to the host. The host is the only writer of blocks to the store.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use caihong_chaincode::PublicKey;
use caihong_chaincode::members::members;
use caihong_consensus::{ChainId, Consensus, Ed25519Signer};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use crate::block_sync::{BlockSync, SyncEvent};
use crate::chain::{current_members, genesis_header};
use crate::config::Home;
use crate::host::{ConsensusHost, HostEvent, dial_list};
use crate::intake::IntakeQueue;
use crate::mempool::Mempool;
use crate::network::{self, NetworkConfig, NetworkEvent, NetworkHandle, Topic};
use crate::pipeline::{HeightPipeline, Proposer};
use crate::shared::{Shared, Status};
use crate::storage::Store;

/// How a node starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// With a store that holds only genesis, start from a peer's state snapshot
    /// ([`crate::state_sync`]) instead of replaying every block.
    pub state_sync: bool,
}

/// Runs a member node until `shutdown` resolves.
pub async fn run(
    home: Home,
    options: RunOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let chain_id = home.genesis.chain_id.clone();
    let node_key = PublicKey::from(&home.node_key.verifying_key());
    let store = open_store(&home)?;
    let (net, mut net_events) = start_network(&home, &store, node_key).await?;
    let mempool = Arc::new(Mutex::new(Mempool::new(
        home.config.mempool.capacity,
        home.config.mempool.per_signer,
    )));
    let arrived = Arc::new(tokio::sync::Notify::new());
    let intake = crate::intake::start(
        chain_id.clone(),
        store.clone(),
        mempool.clone(),
        net.clone(),
        arrived.clone(),
    )?;
    let shared = Shared {
        chain_id: chain_id.clone(),
        store: store.clone(),
        mempool: mempool.clone(),
        status: Arc::new(RwLock::new(Status {
            chain_id: chain_id.clone(),
            genesis_hash: crate::config::genesis_hash(&home.genesis).to_string(),
            member: home.config.member.clone(),
            node_key: node_key.to_hex(),
            ..Status::default()
        })),
        commits: broadcast::channel(4096).0,
        intake: intake.clone(),
        member: home.config.member.clone(),
        encryption_key: home
            .encryption_key
            .clone()
            .map(|k| Arc::new(crate::shared::EncryptionSecret(k))),
        arrived: arrived.clone(),
    };
    crate::retention::spawn(store.clone(), home.config.storage.keep_state_versions);
    let api = crate::api::serve(shared.clone(), &home.config.api, &home.dir).await?;
    info!(member = %home.config.member, api = %api, p2p = %home.config.p2p.listen, "node started");
    if options.state_sync {
        net_events = state_sync(&home, &store, &shared, &net, net_events, node_key).await?;
    }
    check_node_key(&store, &home, node_key)?;

    let consensus = start_consensus(&home, &store, &shared)?;
    let cfg = &home.config.consensus;
    let proposer = Proposer {
        chain_id,
        key: node_key,
        max_txs: cfg.max_block_txs,
        max_bytes: cfg.max_block_bytes.min(
            net.max_gossip_size()
                .saturating_sub(network::BLOCK_MESSAGE_OVERHEAD),
        ),
    };
    let pipeline = HeightPipeline::new(store, mempool, proposer)?;
    let (sync, sync_events) = BlockSync::spawn(net.clone(), pipeline.height() - 1);
    let (events, host_events) = mpsc::channel(1024);
    let mut host =
        ConsensusHost::new(home, shared, net.clone(), consensus, pipeline, sync, events)?;
    host.start().await?;
    let routed = route(
        &mut host,
        &intake,
        &arrived,
        Inbound {
            net: net_events,
            host: host_events,
            sync: sync_events,
        },
        shutdown,
    )
    .await;
    info!("shutting down");
    net.shutdown().await;
    routed
}

/// `--state-sync`: a store with only genesis starts from a peer's snapshot; what arrives from
/// the network meanwhile is dropped (peers resend what matters, and block sync catches up).
async fn state_sync(
    home: &Home,
    store: &Store,
    shared: &Shared,
    net: &NetworkHandle,
    mut events: mpsc::Receiver<NetworkEvent>,
    node_key: PublicKey,
) -> anyhow::Result<mpsc::Receiver<NetworkEvent>> {
    let height = store.latest_height()?.unwrap_or(0);
    if height > 0 {
        info!(
            height,
            "--state-sync: the store already holds the chain; going on from it"
        );
        return Ok(events);
    }
    shared.status.write().expect("status").syncing = true;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let drain = tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return events,
                event = events.recv() => if event.is_none() { return events },
            }
        }
    });
    let synced = crate::state_sync::run(home, store, net).await;
    let _ = stop.send(());
    let events = drain.await.context("state sync's network drain")?;
    let report = synced?;
    info!(
        height = report.height,
        entries = report.entries,
        headers_seconds = report.headers_seconds,
        state_seconds = report.state_seconds,
        refused_peers = report.refused.len(),
        "started from a state snapshot"
    );
    let members = current_members(store)?;
    let _ = net
        .set_allowed(members.iter().map(|(k, _)| k.0).collect())
        .await;
    let _ = net.set_peers(dial_list(home, &members, node_key)).await;
    Ok(events)
}

/// Opens the store and puts the genesis block in a new one.
fn open_store(home: &Home) -> anyhow::Result<Arc<Store>> {
    // Every StorageError names the data directory.
    let store = Store::open(home.data_dir())?;
    let writes = home
        .genesis
        .initial_state()
        .map_err(|e| anyhow::anyhow!("genesis: {e}"))?;
    store.init_genesis(&writes, &genesis_header(&home.genesis, &writes))?;
    Ok(Arc::new(store))
}

/// Starts libp2p, admitting and dialling the members of the latest committed state.
async fn start_network(
    home: &Home,
    store: &Store,
    node_key: PublicKey,
) -> anyhow::Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>)> {
    let listen = home
        .config
        .p2p
        .listen
        .parse()
        .with_context(|| format!("p2p listen address {:?}", home.config.p2p.listen))?;
    let mut config = NetworkConfig::new(
        home.genesis.chain_id.clone(),
        home.node_key.to_bytes(),
        listen,
    );
    let members_now = current_members(store)?;
    config.allowed = members_now.iter().map(|(k, _)| k.0).collect();
    config.peers = dial_list(home, &members_now, node_key);
    Ok(network::spawn(config).await?)
}

/// The consensus state machine, resumed from what the node key signed last.
fn start_consensus(
    home: &Home,
    store: &Store,
    shared: &Shared,
) -> anyhow::Result<Consensus<Ed25519Signer>> {
    // The later of what RocksDB holds (homes from before the file) and the signer-state file,
    // which a restored `data/` does not roll back.
    let safety_path = crate::signer_state::path(&home.dir);
    let safety = crate::signer_state::later(
        store.load_safety_state()?,
        crate::signer_state::load(&safety_path)?,
    );
    if let Some(state) = &safety {
        shared.status.write().expect("status").note_signed(state);
    }
    let consensus = Consensus::new(
        home.config.consensus.consensus(),
        ChainId::new(home.genesis.chain_id.clone()),
        Ed25519Signer::new(home.node_key.clone()),
        safety,
    );
    Ok(consensus)
}

/// What arrives for the node's parts.
struct Inbound {
    net: mpsc::Receiver<NetworkEvent>,
    host: mpsc::Receiver<HostEvent>,
    sync: mpsc::Receiver<SyncEvent>,
}

/// Routes what arrives to its owner until `shutdown` (or an error that stops the node).
async fn route(
    host: &mut ConsensusHost,
    intake: &IntakeQueue,
    arrived: &tokio::sync::Notify,
    mut inbound: Inbound,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            Some(event) = inbound.net.recv() => match event {
                NetworkEvent::Gossip { topic: Topic::Transactions, data, validation, .. } => {
                    crate::intake::offer_gossip(intake, data, validation);
                }
                NetworkEvent::Gossip { topic: Topic::Consensus, data, from, origin, validation } => {
                    host.on_gossip(data, from, origin, validation).await?;
                }
                NetworkEvent::Request { data, respond, .. } => host.on_request(data, respond),
                NetworkEvent::PeerConnected(key) => {
                    debug!(peer = %hex::encode(key), "peer connected");
                }
                NetworkEvent::PeerDisconnected(key) => {
                    debug!(peer = %hex::encode(key), "peer disconnected");
                }
            },
            Some(event) = inbound.host.recv() => host.on_event(event).await?,
            _ = arrived.notified() => host.on_transactions().await?,
            Some(event) = inbound.sync.recv() => host.on_sync(event).await?,
            _ = tick.tick() => host.tick().await?,
        }
    }
}

/// A member's node key is what governance last set: genesis, then any rotation. A node whose key
/// is not its member's key in the local state still starts, as a follower that syncs and
/// signs nothing, since its state may predate a rotation to this key; the log says so, and
/// `caihong status` shows `validator: false`.
fn check_node_key(store: &Store, home: &Home, node_key: PublicKey) -> anyhow::Result<()> {
    let view = store.state_view()?;
    let height = view.height().unwrap_or(0);
    let member = &home.config.member;
    match members(&view).into_iter().find(|m| m.id.as_str() == member) {
        Some(m) if m.node_key == node_key => {}
        Some(m) => warn!(
            "node key {node_key} is not member {member}'s node key {} at height {height}: \
             running as a follower until the chain says this key is {member}'s (after a \
             rotation by governance); if it never does, install the right key in {}",
            m.node_key,
            Home::node_key_path(&home.dir).display()
        ),
        None => warn!(
            "{member} is not a member at height {height}: running as a follower until \
             governance adds it"
        ),
    }
    Ok(())
}
