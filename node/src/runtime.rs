//! The runtime: one task that hosts consensus over storage, the network and
//! the mempool, plus the HTTP API beside it.
//!
//! The core loop owns the [`Consensus`] state machine and is the only writer
//! of the store. It selects over network events, timer firings, API
//! submissions, a periodic status tick and shutdown, and carries out
//! consensus outputs in order (persist safety state before anything that
//! follows it leaves the node).
//!
//! # Design
//! - Consensus agrees on header hashes. A proposer executes its batch on a
//!   snapshot of committed state, computes the state root the writes would
//!   give, gossips the whole block, then proposes its hash. Validators
//!   re-execute the body and judge the value invalid on any difference.
//! - The validator set and the peer allow list of height `h` are the members
//!   in the state after `h - 1`, so a governance change takes effect on every
//!   node at the same height.
//! - Catch-up: every node gossips its committed height each second. A node
//!   that sees a peer ahead asks it for blocks with their commit
//!   certificates and feeds each certificate to consensus, which verifies it
//!   against the height's validator set and decides; the block is then
//!   re-executed and committed as any other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use caihong_chaincode::exec::{BlockContext, execute_block};
use caihong_chaincode::members::members;
use caihong_chaincode::state::{Overlay, StateReader, WriteSet};
use caihong_chaincode::{Hash, PublicKey, Receipt, SignedTransaction, VerifiedTx, codec};
use caihong_consensus::{
    ChainId, CommitCertificate, Consensus, Ed25519Signer, Input, Message, Output, SafetyState,
    Timeout, ValidatorSet,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use crate::block::{Block, Header, receipts_root, txs_root, validators_hash};
use crate::config::Home;
use crate::intake::{IntakeQueue, verify_each};
use crate::mempool::{AdmitError, Mempool};
use crate::network::{self, Acceptance, NetworkConfig, NetworkEvent, NetworkHandle, Topic};
use crate::storage::{PreparedState, Store};

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResponse {
    pub blocks: Vec<(Block, CommitCertificate)>,
}

/// Most next-height bodies kept while this height is decided (a few rounds' proposals; a
/// member that floods bodies cannot fill memory).
const MAX_NEXT_BODIES: usize = 8;

/// Most blocks answered per sync request (fewer when they would not fit one response).
const SYNC_BATCH: u64 = 64;

/// Transactions gossiped in one message, up to about this many bytes.
const TX_BATCH_BYTES: usize = 512 << 10;

/// Admitted transactions wait at most this long to be gossiped together.
const TX_GOSSIP_INTERVAL: Duration = Duration::from_millis(50);

/// What the API and metrics read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub chain_id: String,
    pub member: String,
    pub node_key: String,
    pub height: u64,
    pub latest_block_hash: String,
    pub latest_block_time_ms: u64,
    pub peers: Vec<String>,
    pub syncing: bool,
    pub validator: bool,
    pub consensus_round: u32,
    pub mempool_size: usize,
    pub committed_txs: u64,
    pub last_block_interval_ms: u64,
    pub highest_peer_height: u64,
    pub rounds_last_height: u32,
    /// Consensus-topic messages refused as forged, foreign or undecodable (each a strike
    /// against the member that relayed it).
    pub rejected_consensus_gossip: u64,
    /// The last `(height, round, step)` this node's key signed a consensus message for.
    pub last_signed: Option<(u64, u32, String)>,
}

impl Status {
    fn note_signed(&mut self, state: &SafetyState) {
        self.last_signed = state
            .last_signed
            .map(|(h, r, step)| (h, r, format!("{step:?}").to_lowercase()));
    }
}

/// A committed transaction, for clients waiting on it.
#[derive(Debug, Clone)]
pub struct Committed {
    pub height: u64,
    pub tx_hash: Hash,
    pub receipt: Receipt,
}

/// Shared with the API.
#[derive(Debug, Clone)]
pub struct Shared {
    pub chain_id: String,
    pub store: Arc<Store>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub status: Arc<RwLock<Status>>,
    pub commits: broadcast::Sender<Committed>,
    /// The intake thread, which verifies and admits what the API submits.
    pub intake: IntakeQueue,
}

impl Shared {
    /// Checks and admits a transaction and gossips it. Errors say why not.
    pub async fn admit(&self, tx: SignedTransaction) -> Result<Hash, AdmitError> {
        self.admit_batch(vec![tx])
            .await
            .pop()
            .expect("one result per transaction")
    }

    /// Checks and admits transactions on the intake thread (their signatures verified in one
    /// batch with whatever else is arriving) and gossips those admitted. One result per
    /// transaction, in order.
    pub async fn admit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, AdmitError>> {
        crate::intake::submit(&self.intake, txs).await
    }
}

pub(crate) fn next_block_context(store: &Store, chain_id: &str) -> anyhow::Result<BlockContext> {
    let parent = store.latest_header()?.context("store has no genesis")?;
    Ok(context_after(&parent, chain_id))
}

/// The context of a block built now on `parent`.
fn context_after(parent: &Header, chain_id: &str) -> BlockContext {
    BlockContext {
        chain_id: chain_id.to_string(),
        height: parent.height + 1,
        time_ms: now_ms().max(parent.time_ms + 1),
        parent_hash: parent.hash(),
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What goes on the wire for a consensus message. Our own proposal is preceded by its block
/// body every time it is sent: first, proposed again in a later round (a locked value whose
/// first proposer may be gone) or rebroadcast in a stalled round. A member that missed the
/// body cannot vote for the block, and no one else sends it again.
fn outgoing(message: Message, me: PublicKey, bodies: &HashMap<Hash, Block>) -> Vec<WireMessage> {
    let body = match &message {
        Message::Proposal(p) if p.proposal.proposer.0 == me.0 => {
            bodies.get(&Hash(p.proposal.value.0)).cloned()
        }
        _ => None,
    };
    body.map(WireMessage::Block)
        .into_iter()
        .chain([WireMessage::Consensus(message)])
        .collect()
}

/// The genesis header of an alliance.
pub fn genesis_header(
    genesis: &caihong_chaincode::genesis::Genesis,
    writes: &WriteSet,
) -> anyhow::Result<Header> {
    let validators = validator_keys_of_writes(writes)?;
    Ok(Header {
        chain_id: genesis.chain_id.clone(),
        height: 0,
        time_ms: genesis.genesis_time_ms,
        parent_hash: crate::config::genesis_hash(genesis),
        proposer: PublicKey([0; 32]),
        txs_root: txs_root(&[]),
        receipts_root: receipts_root(&[]),
        state_root: crate::storage::genesis_state_root(writes),
        next_validators_hash: validators_hash(&validators),
    })
}

fn validator_keys_of_writes(writes: &WriteSet) -> anyhow::Result<Vec<PublicKey>> {
    let mut state = caihong_chaincode::MemState::new();
    state.apply(writes);
    Ok(members(&state).into_iter().map(|m| m.node_key).collect())
}

/// Members at the latest committed state: (node key, p2p address).
fn current_members(store: &Store) -> anyhow::Result<Vec<(PublicKey, String)>> {
    let view = store.state_view()?;
    Ok(members(&view)
        .into_iter()
        .map(|m| (m.node_key, m.p2p_address))
        .collect())
}

fn validator_set(keys: &[PublicKey]) -> anyhow::Result<ValidatorSet> {
    ValidatorSet::equal_power(keys.iter().map(|k| caihong_consensus::PublicKey(k.0)))
        .map_err(|e| anyhow::anyhow!("validator set: {e}"))
}

/// Milliseconds spent on one height, by phase (for the commit log line and tuning).
#[derive(Debug, Default, Clone, Copy)]
struct HeightTimings {
    /// Building our proposal: reaping, executing, the state root.
    build_ms: u64,
    /// Checking a received proposal: signatures, execution, the state root.
    validate_ms: u64,
    /// Writing the block to storage.
    store_ms: u64,
}

impl HeightTimings {
    fn since_start(start: Instant) -> u64 {
        start.elapsed().as_millis() as u64
    }
}

/// A block executed here: its writes, receipts and state tree update.
struct Executed {
    writes: WriteSet,
    receipts: Vec<Receipt>,
    prepared: PreparedState,
}

/// A block and its execution, built by [`build_on`].
struct Built {
    block: Block,
    executed: Executed,
}

/// Our round-0 proposal for `height`, being built on the parent `parent` (not committed yet).
struct BuildAhead {
    height: u64,
    parent: Hash,
    task: tokio::task::JoinHandle<anyhow::Result<Built>>,
}

/// What building a proposal needs besides the state: the proposer and the block limits.
#[derive(Clone)]
struct Proposer {
    chain_id: String,
    key: PublicKey,
    max_txs: usize,
    max_bytes: usize,
}

/// Builds the block after `parent` from the mempool: reaps what can run on `state` (the
/// parent's resulting state), executes it and computes the header's roots. `prepare` turns
/// the write set into the tree update (on the parent's committed view, or on top of the
/// parent's own update when the parent is not committed yet).
fn build_on(
    proposer: &Proposer,
    mempool: &Mutex<Mempool>,
    parent: &Header,
    state: &dyn StateReader,
    prepare: impl FnOnce(&WriteSet) -> anyhow::Result<PreparedState>,
) -> anyhow::Result<Built> {
    let ctx = context_after(parent, &proposer.chain_id);
    let txs = mempool
        .lock()
        .expect("mempool")
        .reap(state, proposer.max_txs, proposer.max_bytes);
    let (writes, receipts) = execute_block(state, &ctx, &txs);
    let prepared = prepare(&writes)?;
    let signed: Vec<SignedTransaction> = txs.iter().map(|t| t.signed().clone()).collect();
    let header = Header {
        chain_id: ctx.chain_id.clone(),
        height: ctx.height,
        time_ms: ctx.time_ms,
        parent_hash: ctx.parent_hash,
        proposer: proposer.key,
        txs_root: txs_root(&signed),
        receipts_root: receipts_root(&receipts),
        state_root: prepared.root(),
        next_validators_hash: validators_hash(&crate::storage::member_node_keys(state, &writes)),
    };
    Ok(Built {
        block: Block {
            header,
            txs: signed,
        },
        executed: Executed {
            writes,
            receipts,
            prepared,
        },
    })
}

enum CoreEvent {
    Timeout(Timeout),
    BuildBlock { height: u64, round: u32 },
}

struct Core {
    home: Home,
    shared: Shared,
    net: NetworkHandle,
    consensus: Consensus<Ed25519Signer>,
    node_key: PublicKey,
    height: u64,
    validators: ValidatorSet,
    validator_keys: Vec<PublicKey>,
    bodies: HashMap<Hash, Block>,
    /// Bodies proposed for the next height that arrived before we committed this one: its
    /// proposals are buffered by consensus, so their bodies are kept too (at most
    /// [`MAX_NEXT_BODIES`]).
    next_bodies: HashMap<Hash, Block>,
    /// Blocks of this height executed here (shared with a next block being built on one).
    executed: HashMap<Hash, Arc<Executed>>,
    /// Our proposal for the next height, being built on a block of this height that
    /// validated here, before that block is decided and stored.
    ahead: Option<BuildAhead>,
    pending_validation: HashSet<Hash>,
    /// Where the safety state is made durable before a signed message leaves
    /// ([`crate::signer_state`]).
    safety_path: std::path::PathBuf,
    #[cfg(feature = "byzantine")]
    byzantine: Option<crate::byzantine::Byzantine>,
    /// Admitted transactions waiting to be gossiped together, and their encoded size.
    outbox: Vec<SignedTransaction>,
    outbox_bytes: usize,
    events: mpsc::Sender<CoreEvent>,
    last_commit: Instant,
    height_started: Instant,
    /// When this height's block body was built or first arrived (or the height started, if
    /// it came early).
    body_seen: Option<Instant>,
    /// When the previous height's body was: the block interval runs from there.
    previous_body_seen: Instant,
    /// Where this height's time went, logged with its commit.
    timings: HeightTimings,
    rounds_this_height: u32,
    highest_peer: (u64, Option<[u8; 32]>),
    syncing: bool,
    committed_txs: u64,
}

/// Runs a member node until `shutdown` resolves.
pub async fn run(
    home: Home,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let chain_id = home.genesis.chain_id.clone();
    let store = Arc::new(
        Store::open(home.data_dir())
            .with_context(|| format!("opening {}", home.data_dir().display()))?,
    );
    let writes = home
        .genesis
        .initial_state()
        .map_err(|e| anyhow::anyhow!("genesis: {e}"))?;
    let header = genesis_header(&home.genesis, &writes)?;
    store.init_genesis(&writes, &header)?;

    let node_key = PublicKey::from(&home.node_key.verifying_key());
    check_node_key(&store, &home, node_key)?;
    let listen = home
        .config
        .p2p
        .listen
        .parse()
        .with_context(|| format!("p2p listen address {:?}", home.config.p2p.listen))?;
    let mut net_config = NetworkConfig::new(chain_id.clone(), home.node_key.to_bytes(), listen);
    let members_now = current_members(&store)?;
    net_config.allowed = members_now.iter().map(|(k, _)| k.0).collect();
    net_config.peers = dial_list(&home, &members_now, node_key);
    let (net, mut net_events) = network::spawn(net_config).await?;

    let mempool = Arc::new(Mutex::new(Mempool::new(
        home.config.mempool.capacity,
        home.config.mempool.per_signer,
    )));
    let (commits, _) = broadcast::channel(4096);
    let (gossip_tx, mut to_gossip) = mpsc::channel(1024);
    let intake = crate::intake::spawn(crate::intake::Admission {
        chain_id: chain_id.clone(),
        store: store.clone(),
        mempool: mempool.clone(),
        gossip: gossip_tx,
    })?;
    let shared = Shared {
        chain_id: chain_id.clone(),
        store: store.clone(),
        mempool,
        status: Arc::new(RwLock::new(Status {
            chain_id: chain_id.clone(),
            member: home.config.member.clone(),
            node_key: node_key.to_hex(),
            ..Status::default()
        })),
        commits,
        intake,
    };
    let api = crate::api::serve(shared.clone(), &home.config.api).await?;
    info!(member = %home.config.member, api = %api, p2p = %home.config.p2p.listen, "node started");

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
    let signer = Ed25519Signer::new(home.node_key.clone());
    let consensus = Consensus::new(
        home.config.consensus.consensus(),
        ChainId::new(chain_id.clone()),
        signer,
        safety,
    );
    let (events_tx, mut events_rx) = mpsc::channel(1024);
    let latest = store.latest_height()?.unwrap_or(0);
    let keys: Vec<PublicKey> = members_now.iter().map(|(k, _)| *k).collect();
    let mut core = Core {
        shared,
        net: net.clone(),
        consensus,
        node_key,
        height: latest + 1,
        validators: validator_set(&keys)?,
        validator_keys: keys,
        bodies: HashMap::new(),
        next_bodies: HashMap::new(),
        executed: HashMap::new(),
        ahead: None,
        pending_validation: HashSet::new(),
        safety_path,
        #[cfg(feature = "byzantine")]
        byzantine: crate::byzantine::Byzantine::from_env(&home.node_key, &chain_id, &home.dir)?,
        outbox: Vec::new(),
        outbox_bytes: 0,
        events: events_tx,
        last_commit: Instant::now(),
        height_started: Instant::now(),
        body_seen: None,
        previous_body_seen: Instant::now(),
        timings: HeightTimings::default(),
        rounds_this_height: 0,
        highest_peer: (latest, None),
        syncing: false,
        committed_txs: 0,
        home,
    };
    core.refresh_status().await;
    core.start_height().await?;

    let mut gossip_tick = tokio::time::interval(TX_GOSSIP_INTERVAL);
    gossip_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // A slow sync request must not be followed by a burst of missed ticks.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(event) = net_events.recv() => core.on_network(event).await?,
            Some(event) = events_rx.recv() => match event {
                CoreEvent::Timeout(t) => core.feed(Input::Timeout(t)).await?,
                CoreEvent::BuildBlock { height, round } => core.build_block(height, round).await?,
            },
            Some(txs) = to_gossip.recv() => core.queue_gossip(txs).await,
            _ = gossip_tick.tick() => core.flush_gossip().await,
            _ = tick.tick() => core.on_tick().await?,
        }
    }
    info!("shutting down");
    net.shutdown().await;
    Ok(())
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

fn dial_list(
    home: &Home,
    members: &[(PublicKey, String)],
    me: PublicKey,
) -> Vec<([u8; 32], libp2p::Multiaddr)> {
    let mut peers: Vec<([u8; 32], libp2p::Multiaddr)> = members
        .iter()
        .filter(|(k, _)| *k != me)
        .filter_map(|(k, addr)| addr.parse().ok().map(|a| (k.0, a)))
        .collect();
    for extra in &home.config.p2p.extra_peers {
        if let (Ok(k), Ok(a)) = (PublicKey::from_hex(&extra.key), extra.address.parse()) {
            peers.push((k.0, a));
        }
    }
    peers
}

impl Core {
    async fn start_height(&mut self) -> anyhow::Result<()> {
        let input = self.start_height_input();
        self.feed(input).await
    }

    /// The input that starts consensus at `self.height` (fed by the caller, so that a commit
    /// inside [`Core::feed`] queues it instead of recursing).
    fn start_height_input(&mut self) -> Input {
        self.height_started = Instant::now();
        self.previous_body_seen = self.body_seen.take().unwrap_or(self.height_started);
        self.timings = HeightTimings::default();
        self.rounds_this_height = 0;
        Input::StartHeight {
            height: self.height,
            validators: self.validators.clone(),
        }
    }

    /// Feeds one input and carries out every output, in order.
    async fn feed(&mut self, input: Input) -> anyhow::Result<()> {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            for output in self.consensus.handle(input) {
                if let Some(next) = self.carry_out(output).await? {
                    queue.push_back(next);
                }
            }
        }
        Ok(())
    }

    async fn carry_out(&mut self, output: Output) -> anyhow::Result<Option<Input>> {
        match output {
            Output::PersistSafetyState(state) => {
                crate::signer_state::save(&self.safety_path, &state).with_context(|| {
                    format!("saving the signer state {}", self.safety_path.display())
                })?;
                self.shared
                    .status
                    .write()
                    .expect("status")
                    .note_signed(&state);
                #[cfg(feature = "byzantine")]
                if let Some(b) = &self.byzantine {
                    b.crash_if_armed(&state);
                }
            }
            Output::Broadcast(message) => {
                #[cfg(feature = "byzantine")]
                let conflicting = self
                    .byzantine
                    .as_ref()
                    .map(|b| b.conflicting(&message))
                    .unwrap_or_default();
                for wire in outgoing(message, self.node_key, &self.bodies) {
                    self.publish(wire).await;
                }
                #[cfg(feature = "byzantine")]
                for m in conflicting {
                    self.publish(WireMessage::Consensus(m)).await;
                }
            }
            Output::ScheduleTimeout { timeout, after } => {
                if timeout.round > self.rounds_this_height {
                    self.rounds_this_height = timeout.round;
                }
                let events = self.events.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = events.send(CoreEvent::Timeout(timeout)).await;
                });
            }
            Output::GetValue { height, round } => {
                // Proposals at most once per block interval, counted from when the previous
                // block was proposed (its body built or first seen here), not from its
                // commit: a block that took longer than the interval to validate, agree on
                // and store has already gathered the next one's transactions, and waiting
                // again after it would leave the members idle.
                let interval = Duration::from_millis(self.home.config.consensus.block_interval_ms);
                let wait = interval.saturating_sub(self.previous_body_seen.elapsed());
                let events = self.events.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = events.send(CoreEvent::BuildBlock { height, round }).await;
                });
            }
            Output::ValidateValue { value, .. } => {
                let hash = Hash(value.0);
                if self.bodies.contains_key(&hash) {
                    let valid = self.validate(&hash);
                    return Ok(Some(Input::ValidationResult {
                        height: self.height,
                        value,
                        valid,
                    }));
                }
                self.pending_validation.insert(hash);
            }
            Output::Decide {
                height,
                value,
                certificate,
            } => {
                return self
                    .commit(height, Hash(value.0), certificate)
                    .await
                    .map(Some);
            }
            Output::Evidence(evidence) => {
                warn!(?evidence, "equivocation detected");
                self.shared.store.add_evidence(&evidence)?;
            }
        }
        Ok(None)
    }

    /// Whether a consensus-topic message is forwarded. A forged or foreign message is
    /// rejected (a strike against the member that relayed it, see network's ban), so junk a
    /// member injects goes no further than its direct peers; a message for another height
    /// whose signer we cannot judge yet is ignored (not forwarded, no strike). Consensus checks
    /// again what it takes.
    fn gossip_verdict(&self, message: &WireMessage) -> Acceptance {
        let is_validator = |key: [u8; 32]| self.validator_keys.iter().any(|k| k.0 == key);
        match message {
            WireMessage::Consensus(m) => {
                let chain = ChainId::new(self.shared.chain_id.clone());
                if !m.verify_signature(&chain) {
                    Acceptance::Reject
                } else if is_validator(m.signer().0) {
                    Acceptance::Accept
                } else if m.height() == self.height {
                    Acceptance::Reject
                } else {
                    Acceptance::Ignore
                }
            }
            WireMessage::Block(b) => {
                if b.header.chain_id != self.shared.chain_id {
                    Acceptance::Reject
                } else if b.header.height < self.height {
                    Acceptance::Ignore
                } else if is_validator(b.header.proposer.0) {
                    // Also ahead of our height: a member that lags still relays the body.
                    Acceptance::Accept
                } else if b.header.height == self.height {
                    Acceptance::Reject
                } else {
                    Acceptance::Ignore
                }
            }
            WireMessage::Status { .. } => Acceptance::Accept,
        }
    }

    /// Queues admitted transactions for gossip; sends at once when a message's worth is queued.
    async fn queue_gossip(&mut self, txs: Vec<SignedTransaction>) {
        for tx in txs {
            self.outbox_bytes += codec::encoded_len(&tx);
            self.outbox.push(tx);
            if self.outbox_bytes >= TX_BATCH_BYTES {
                self.flush_gossip().await;
            }
        }
    }

    /// Gossips what is queued as one message. Called every [`TX_GOSSIP_INTERVAL`]: many clients
    /// each sending one transaction still make few messages (each costs every receiver a
    /// libp2p signature check), at the price of that much delay.
    async fn flush_gossip(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        self.outbox_bytes = 0;
        let batch = std::mem::take(&mut self.outbox);
        self.publish_transactions(batch).await;
    }

    async fn publish_transactions(&self, batch: Vec<SignedTransaction>) {
        if let Err(e) = self
            .net
            .publish(Topic::Transactions, codec::encode(&batch))
            .await
        {
            debug!("gossiping {} transactions: {e}", batch.len());
        }
    }

    async fn publish(&self, message: WireMessage) {
        let envelope = Envelope {
            sent_ms: now_ms(),
            message,
        };
        if let Err(e) = self
            .net
            .publish(Topic::Consensus, codec::encode(&envelope))
            .await
        {
            debug!("publish: {e}");
        }
    }

    async fn build_block(&mut self, height: u64, round: u32) -> anyhow::Result<()> {
        if height != self.height {
            return Ok(());
        }
        let started = Instant::now();
        let store = self.shared.store.clone();
        let parent = store.latest_header()?.context("store has no genesis")?;
        let built = match self.ahead.take() {
            Some(ahead)
                if ahead.height == height && round == 0 && ahead.parent == parent.hash() =>
            {
                match ahead.task.await {
                    // An empty block built ahead is not proposed: transactions that came
                    // since would wait a height more, and building at this load is cheap.
                    Ok(Ok(built)) if !built.block.txs.is_empty() => Some(built),
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => {
                        debug!(height, "the block built ahead is not usable: {e:#}");
                        None
                    }
                    Err(e) => {
                        warn!(height, "building ahead failed: {e}");
                        None
                    }
                }
            }
            _ => None,
        };
        let ahead = built.is_some();
        let Built { block, executed } = match built {
            Some(built) => built,
            None => {
                let view = store.state_view()?;
                build_on(
                    &self.proposer(),
                    &self.shared.mempool,
                    &parent,
                    &view,
                    |writes| Ok(view.prepare(writes)?),
                )?
            }
        };
        #[cfg(feature = "byzantine")]
        let block = {
            let mut block = block;
            if let Some(b) = &self.byzantine {
                b.corrupt_header(&mut block.header);
            }
            block
        };
        let hash = block.hash();
        self.timings.build_ms += HeightTimings::since_start(started);
        self.body_seen.get_or_insert_with(Instant::now);
        debug!(height, round, txs = block.txs.len(), %hash, ahead, "proposing");
        // Published with the proposal (carry_out).
        self.bodies.insert(hash, block);
        self.executed.insert(hash, Arc::new(executed));
        self.build_ahead(&hash);
        self.feed(Input::ProposeValue {
            height,
            round,
            value: caihong_consensus::Hash(hash.0),
        })
        .await
    }

    fn proposer(&self) -> Proposer {
        let cfg = &self.home.config.consensus;
        Proposer {
            chain_id: self.shared.chain_id.clone(),
            key: self.node_key,
            max_txs: cfg.max_block_txs,
            max_bytes: cfg.max_block_bytes.min(
                self.net
                    .max_gossip_size()
                    .saturating_sub(network::BLOCK_MESSAGE_OVERHEAD),
            ),
        }
    }

    /// If we propose first at the next height, starts building that proposal now, on the
    /// block `parent` of this height that just validated here: executing and computing its
    /// state root then overlaps with this height's votes and commit, instead of following
    /// them while every other member waits for the body. Only for the first block of a
    /// height that validates, and not when the block changes the validator set (who proposes
    /// next is then not known yet). If another block is decided, the result is dropped.
    fn build_ahead(&mut self, parent: &Hash) {
        let next = self.height + 1;
        // One at a time: one for the next height is under way, or ours for this height is
        // not proposed yet. One for an earlier height is stale and replaced.
        if self.syncing || self.ahead.as_ref().is_some_and(|a| a.height >= self.height) {
            return;
        }
        let (Some(block), Some(executed)) = (self.bodies.get(parent), self.executed.get(parent))
        else {
            return;
        };
        let next_proposer = self.validators.proposer(next, 0).public_key;
        if next_proposer.0 != self.node_key.0
            || block.header.next_validators_hash != validators_hash(&self.validator_keys)
        {
            return;
        }
        let store = self.shared.store.clone();
        let mempool = self.shared.mempool.clone();
        let proposer = self.proposer();
        let header = block.header.clone();
        let executed = executed.clone();
        let task = tokio::task::spawn_blocking(move || {
            let view = store.state_view()?;
            if view.height() != Some(header.height - 1) {
                anyhow::bail!("the store is no longer at the parent's parent");
            }
            let mut state = Overlay::new(&view);
            state.apply(executed.writes.clone());
            build_on(&proposer, &mempool, &header, &state, |writes| {
                Ok(view.prepare_on(&executed.prepared, writes)?)
            })
        });
        self.ahead = Some(BuildAhead {
            height: next,
            parent: *parent,
            task,
        });
    }

    /// Re-executes a proposed block and compares every root with its header.
    fn validate(&mut self, hash: &Hash) -> bool {
        match self.check_block(hash) {
            Ok(()) => true,
            Err(reason) => {
                warn!(%hash, "invalid block: {reason}");
                false
            }
        }
    }

    fn check_block(&mut self, hash: &Hash) -> Result<(), String> {
        if self.executed.contains_key(hash) {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.check_block_body(hash);
        self.timings.validate_ms += HeightTimings::since_start(started);
        result
    }

    fn check_block_body(&mut self, hash: &Hash) -> Result<(), String> {
        let block = self.bodies.get(hash).ok_or("no body")?;
        let store = self.shared.store.clone();
        let h = &block.header;
        let parent = store
            .latest_header()
            .map_err(|e| e.to_string())?
            .ok_or("no parent")?;
        let latest = parent.height;
        if h.chain_id != self.shared.chain_id
            || h.height != latest + 1
            || h.parent_hash != parent.hash()
        {
            return Err(format!(
                "header does not extend our chain at height {latest}"
            ));
        }
        if h.time_ms <= parent.time_ms || h.time_ms > now_ms() + 10_000 {
            return Err(format!(
                "block time {} is not after its parent or too far ahead",
                h.time_ms
            ));
        }
        let hashes: Vec<Hash> = block.txs.iter().map(|t| t.hash()).collect();
        if crate::block::merkle_root(&hashes) != h.txs_root {
            return Err("transactions do not match txs_root".into());
        }
        let verified = verify_block_txs(
            &block.txs,
            &hashes,
            &self.shared.chain_id,
            &self.shared.mempool,
        )?;
        let view = store.state_view().map_err(|e| e.to_string())?;
        let ctx = BlockContext {
            chain_id: h.chain_id.clone(),
            height: h.height,
            time_ms: h.time_ms,
            parent_hash: h.parent_hash,
        };
        let (writes, receipts) = execute_block(&view, &ctx, &verified);
        if receipts_root(&receipts) != h.receipts_root {
            return Err("receipts differ".into());
        }
        if h.next_validators_hash
            != validators_hash(&crate::storage::member_node_keys(&view, &writes))
        {
            return Err("next validators hash differs from the members after the block".into());
        }
        let prepared = view.prepare(&writes).map_err(|e| e.to_string())?;
        let root = prepared.root();
        if root != h.state_root {
            return Err(format!(
                "state root {root} differs from header {}",
                h.state_root
            ));
        }
        self.executed.insert(
            *hash,
            Arc::new(Executed {
                writes,
                receipts,
                prepared,
            }),
        );
        self.build_ahead(hash);
        Ok(())
    }

    /// Commits a decided block and returns the input that starts the next height.
    async fn commit(
        &mut self,
        height: u64,
        hash: Hash,
        certificate: CommitCertificate,
    ) -> anyhow::Result<Input> {
        if !self.bodies.contains_key(&hash) {
            self.fetch_decided_body(height, hash).await?;
        }
        if let Err(reason) = self.check_block(&hash) {
            anyhow::bail!(
                "decided block {hash} at height {height} does not execute to its header: {reason}"
            );
        }
        let block = self.bodies.remove(&hash).context("decided block body")?;
        let executed = self.executed.remove(&hash).context("executed block")?;
        if self.ahead.as_ref().is_some_and(|a| a.parent != hash) {
            // Built on a block that was not decided.
            self.ahead = None;
        }
        let Executed {
            writes,
            receipts,
            prepared,
        } = &*executed;
        let (state_writes, tree_nodes) = (writes.len(), prepared.new_tree_nodes());
        let started = Instant::now();
        self.shared
            .store
            .commit_prepared(&block, &certificate, writes, receipts, prepared)?;
        self.timings.store_ms = HeightTimings::since_start(started);
        self.bodies = std::mem::take(&mut self.next_bodies);
        self.executed.clear();
        self.pending_validation.clear();
        self.committed_txs += block.txs.len() as u64;
        let interval = self.last_commit.elapsed();
        self.last_commit = Instant::now();
        {
            let store = self.shared.store.clone();
            let view = store.state_view()?;
            let ctx = next_block_context(&store, &self.shared.chain_id)?;
            // Each receipt names its transaction's hash (the store checked them): no rehashing.
            let mut pool = self.shared.mempool.lock().expect("mempool");
            for receipt in receipts {
                pool.remove(&receipt.tx_hash);
            }
            pool.recheck(&view, &ctx);
        }
        for receipt in receipts {
            let _ = self.shared.commits.send(Committed {
                height,
                tx_hash: receipt.tx_hash,
                receipt: receipt.clone(),
            });
        }
        let t = self.timings;
        // From the start of the height until a body for it was here (built or received).
        let body_at_ms = self.body_seen.map_or(0, |seen| {
            seen.duration_since(self.height_started).as_millis() as u64
        });
        info!(
            height,
            txs = block.txs.len(),
            hash = %hash,
            interval_ms = interval.as_millis() as u64,
            rounds = self.rounds_this_height + 1,
            body_at_ms,
            build_ms = t.build_ms,
            validate_ms = t.validate_ms,
            store_ms = t.store_ms,
            state_writes,
            tree_nodes,
            "committed"
        );
        // The next height's validators and peers come from the new state.
        let members_now = current_members(&self.shared.store)?;
        let keys: Vec<PublicKey> = members_now.iter().map(|(k, _)| *k).collect();
        if keys != self.validator_keys {
            info!(validators = keys.len(), "membership changed");
            let _ = self
                .net
                .set_allowed(keys.iter().map(|k| k.0).collect())
                .await;
            let _ = self
                .net
                .set_peers(dial_list(&self.home, &members_now, self.node_key))
                .await;
            self.validators = validator_set(&keys)?;
            self.validator_keys = keys;
        }
        self.height = height + 1;
        {
            let mut s = self.shared.status.write().expect("status");
            s.last_block_interval_ms = interval.as_millis() as u64;
            s.rounds_last_height = self.rounds_this_height + 1;
        }
        self.refresh_status().await;
        let input = self.start_height_input();
        if !self.bodies.is_empty() {
            self.body_seen = Some(Instant::now());
        }
        Ok(input)
    }

    /// Asks peers for the block at `height` (we decided it without its body).
    async fn fetch_block(&mut self, height: u64) -> anyhow::Result<()> {
        for peer in self.net.peers().await {
            if let Ok(blocks) = self.request_blocks(peer, height, height).await {
                for (block, _) in blocks {
                    self.bodies.insert(block.hash(), block);
                }
                return Ok(());
            }
        }
        anyhow::bail!("no peer could send block {height}")
    }

    /// Gets the body of the decided block `hash` from peers: a committed block, or one a peer
    /// holds uncommitted. Tries for a while (peers that were cut off or are restarting may
    /// answer later) before giving up, which stops the node with the reason.
    async fn fetch_decided_body(&mut self, height: u64, hash: Hash) -> anyhow::Result<()> {
        const ATTEMPTS: u32 = 20;
        for attempt in 1..=ATTEMPTS {
            // Peers of an older version answer only the request for committed blocks.
            if self.fetch_body(height, hash).await
                || (self.fetch_block(height).await.is_ok() && self.bodies.contains_key(&hash))
            {
                if attempt > 1 {
                    info!(height, %hash, attempt, "fetched the body of a decided block");
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::bail!(
            "decided block {hash} at height {height}: no peer sent its body in {ATTEMPTS} \
             attempts over about {} s; restart the node when its peers are reachable",
            ATTEMPTS / 2
        )
    }

    /// Asks every peer at once for the body of block `hash` at `height` and keeps the first
    /// that matches; false if none had it.
    async fn fetch_body(&mut self, height: u64, hash: Hash) -> bool {
        use futures::StreamExt;
        let request = codec::encode(&SyncRequest::Body { height, hash });
        let mut asks: futures::stream::FuturesUnordered<_> = self
            .net
            .peers()
            .await
            .into_iter()
            .map(|peer| {
                let (net, request) = (self.net.clone(), request.clone());
                async move { net.request(peer, request).await }
            })
            .collect();
        while let Some(answer) = asks.next().await {
            let body = answer
                .ok()
                .and_then(|bytes| codec::decode::<Option<Block>>(&bytes).ok().flatten());
            if let Some(block) = body.filter(|b| b.hash() == hash) {
                self.bodies.insert(hash, block);
                return true;
            }
        }
        false
    }

    async fn request_blocks(
        &self,
        peer: [u8; 32],
        from: u64,
        to: u64,
    ) -> anyhow::Result<Vec<(Block, CommitCertificate)>> {
        let request = codec::encode(&SyncRequest::Blocks { from, to });
        let bytes = self.net.request(peer, request).await?;
        let response: SyncResponse = codec::decode(&bytes)?;
        Ok(response.blocks)
    }

    async fn on_network(&mut self, event: NetworkEvent) -> anyhow::Result<()> {
        match event {
            NetworkEvent::Gossip {
                topic: Topic::Transactions,
                data,
                validation,
                ..
            } => {
                // Verified and admitted on the intake thread, off the consensus loop.
                crate::intake::offer_gossip(&self.shared.intake, data, validation);
            }
            NetworkEvent::Gossip {
                topic: Topic::Consensus,
                data,
                from,
                validation,
                ..
            } => {
                let verdict = match codec::decode::<Envelope>(&data) {
                    Ok(envelope) => (self.gossip_verdict(&envelope.message), Some(envelope)),
                    Err(_) => (Acceptance::Reject, None),
                };
                let (verdict, message) = (verdict.0, verdict.1.map(|e| e.message));
                validation.report(verdict);
                if verdict == Acceptance::Reject {
                    self.shared
                        .status
                        .write()
                        .expect("status")
                        .rejected_consensus_gossip += 1;
                }
                let Some(message) = message else {
                    return Ok(());
                };
                if verdict != Acceptance::Accept {
                    debug!(?verdict, from = %hex::encode(from), "consensus gossip not taken");
                    return Ok(());
                }
                match message {
                    WireMessage::Consensus(m) => self.feed(Input::from(m)).await?,
                    WireMessage::Block(block) => {
                        let hash = block.hash();
                        if block.header.height == self.height {
                            self.body_seen.get_or_insert_with(Instant::now);
                            self.bodies.insert(hash, block);
                            if self.pending_validation.remove(&hash) {
                                let valid = self.validate(&hash);
                                self.feed(Input::ValidationResult {
                                    height: self.height,
                                    value: caihong_consensus::Hash(hash.0),
                                    valid,
                                })
                                .await?;
                            }
                        } else if block.header.height == self.height + 1
                            && self.next_bodies.len() < MAX_NEXT_BODIES
                        {
                            self.next_bodies.insert(hash, block);
                        }
                    }
                    WireMessage::Status { height } => {
                        if height > self.highest_peer.0 {
                            self.highest_peer = (height, Some(from));
                        }
                    }
                }
            }
            NetworkEvent::Request { data, respond, .. } => {
                let answer = match codec::decode::<SyncRequest>(&data) {
                    Ok(SyncRequest::Blocks { from, to }) => {
                        codec::encode(&self.serve_blocks(from, to))
                    }
                    Ok(SyncRequest::Body { height, hash }) => {
                        codec::encode(&self.serve_body(height, &hash))
                    }
                    Err(_) => codec::encode(&SyncResponse { blocks: vec![] }),
                };
                let _ = respond.respond(answer);
            }
            NetworkEvent::PeerConnected(key) => debug!(peer = %hex::encode(key), "peer connected"),
            NetworkEvent::PeerDisconnected(key) => {
                debug!(peer = %hex::encode(key), "peer disconnected")
            }
        }
        Ok(())
    }

    /// The body of block `hash` at `height` if this member holds it, committed or not.
    fn serve_body(&self, height: u64, hash: &Hash) -> Option<Block> {
        let held = self.bodies.get(hash).or_else(|| self.next_bodies.get(hash));
        held.cloned().or_else(|| {
            let stored = self.shared.store.block(height).ok().flatten();
            stored.filter(|b| b.hash() == *hash)
        })
    }

    fn serve_blocks(&self, from: u64, to: u64) -> SyncResponse {
        let to = to.min(from.saturating_add(SYNC_BATCH - 1));
        // The response is one encoded value: keep it under the codec's and the network's limit
        // (a single block always fits; see config::MAX_BLOCK_BYTES_LIMIT).
        let limit = (caihong_chaincode::codec::MAX_ENCODED_LEN as usize)
            .min(self.net.max_response_size())
            - network::BLOCK_MESSAGE_OVERHEAD;
        let mut blocks = Vec::new();
        let mut bytes = 0;
        for h in from.max(1)..=to {
            match (
                self.shared.store.block(h),
                self.shared.store.commit_certificate(h),
            ) {
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

    async fn on_tick(&mut self) -> anyhow::Result<()> {
        let latest = self.height - 1;
        self.publish(WireMessage::Status { height: latest }).await;
        // A peer ahead of us by more than the height in progress: catch up by certificate.
        let (peer_height, peer) = self.highest_peer;
        self.syncing = peer_height > latest + 1
            || (peer_height > latest && self.height_started.elapsed() > Duration::from_secs(3));
        if self.syncing
            && let Some(peer) = peer
        {
            match self
                .request_blocks(
                    peer,
                    self.height,
                    peer_height.min(self.height + SYNC_BATCH - 1),
                )
                .await
            {
                Ok(blocks) => {
                    if blocks.is_empty() {
                        self.highest_peer = (latest, None);
                    }
                    for (block, certificate) in blocks {
                        if block.header.height != self.height {
                            break;
                        }
                        let height = self.height;
                        self.bodies.insert(block.hash(), block);
                        self.feed(Input::CommitCertificate(certificate)).await?;
                        if self.height == height {
                            // The certificate did not decide (invalid): stop and penalise.
                            self.net.penalize(peer).await;
                            break;
                        }
                    }
                }
                Err(e) => {
                    // Forget that peer (it may be gone): the next status from a live peer
                    // ahead of us picks whom to ask, instead of asking a dead one every tick.
                    debug!("sync from peer failed: {e}");
                    self.highest_peer = (latest, None);
                }
            }
        }
        self.refresh_status().await;
        Ok(())
    }

    async fn refresh_status(&mut self) {
        let peers = self.net.peers().await;
        let header = self.shared.store.latest_header().ok().flatten();
        let mempool_size = self.shared.mempool.lock().map(|m| m.len()).unwrap_or(0);
        let mut s = self.shared.status.write().expect("status");
        if let Some(h) = header {
            s.height = h.height;
            s.latest_block_hash = h.hash().to_hex();
            s.latest_block_time_ms = h.time_ms;
        }
        s.peers = peers.iter().map(hex::encode).collect();
        s.syncing = self.syncing;
        s.validator = self.validator_keys.contains(&self.node_key);
        s.consensus_round = self.consensus.round();
        s.mempool_size = mempool_size;
        s.committed_txs = self.committed_txs;
        s.highest_peer_height = self.highest_peer.0;
    }
}

/// The block's transactions (with their hashes, in order), verified: those in our mempool were
/// verified on admission and are taken from there; the rest are checked in one signature batch. Any bad one fails the
/// block.
fn verify_block_txs(
    txs: &[SignedTransaction],
    hashes: &[Hash],
    chain_id: &str,
    mempool: &Mutex<Mempool>,
) -> Result<Vec<VerifiedTx>, String> {
    let mut out: Vec<Option<VerifiedTx>> = {
        let pool = mempool.lock().expect("mempool");
        hashes.iter().map(|h| pool.get(h).cloned()).collect()
    };
    let unknown: Vec<SignedTransaction> = txs
        .iter()
        .zip(&out)
        .filter(|(_, known)| known.is_none())
        .map(|(t, _)| t.clone())
        .collect();
    let mut checked = verify_each(unknown, chain_id).into_iter();
    for slot in out.iter_mut().filter(|s| s.is_none()) {
        match checked.next().expect("one result per unknown transaction") {
            Ok(tx) => *slot = Some(tx),
            Err(e) => return Err(format!("a transaction does not verify: {e}")),
        }
    }
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use caihong_chaincode::sandbox::{key, public};

    /// Our own proposal leaves with its body, whether first sent or proposed again with a POL
    /// round; another member's proposal and votes leave alone.
    #[test]
    fn own_proposals_carry_their_body() {
        let chain = ChainId::new("c".to_string());
        let me = key("me");
        let other = key("other");
        let block = Block {
            header: Header {
                chain_id: "c".into(),
                height: 5,
                time_ms: 1,
                parent_hash: Hash::ZERO,
                proposer: public(&me),
                txs_root: Hash::ZERO,
                receipts_root: Hash::ZERO,
                state_root: Hash::ZERO,
                next_validators_hash: Hash::ZERO,
            },
            txs: vec![],
        };
        let hash = block.hash();
        let bodies = HashMap::from([(hash, block.clone())]);
        let proposal = |signer: &ed25519_dalek::SigningKey, pol_round| {
            Message::Proposal(
                caihong_consensus::Proposal {
                    height: 5,
                    round: 2,
                    value: caihong_consensus::Hash(hash.0),
                    pol_round,
                    proposer: caihong_consensus::PublicKey(public(signer).0),
                }
                .sign(&chain, &Ed25519Signer::new(signer.clone())),
            )
        };
        for pol_round in [None, Some(1)] {
            let wire = outgoing(proposal(&me, pol_round), public(&me), &bodies);
            assert!(
                matches!(&wire[..], [WireMessage::Block(b), WireMessage::Consensus(_)] if *b == block),
                "{wire:?}"
            );
        }
        let wire = outgoing(proposal(&other, Some(1)), public(&me), &bodies);
        assert!(matches!(&wire[..], [WireMessage::Consensus(_)]), "{wire:?}");
        // Without the body (lost in a restart) the proposal still goes.
        let wire = outgoing(proposal(&me, None), public(&me), &HashMap::new());
        assert!(matches!(&wire[..], [WireMessage::Consensus(_)]), "{wire:?}");
    }
}
