//! The consensus host: drives `caihong-consensus` for this member. It owns the [`Consensus`]
//! state machine and the [`HeightPipeline`], feeds consensus what arrives (votes, proposals,
//! bodies, timer firings, certificates from block sync), carries out its outputs in order, and
//! publishes the node's [`Status`](crate::shared::Status).
//!
//! The host contract of `caihong_consensus` (see that crate's docs) is kept here: the safety
//! state is made durable before any message it covers leaves the node, outputs are carried out
//! in the order given, and a decided value is committed before the next height starts.
//!
//! # Design
//! - The validator set and the peer allow list of height `h` are the members in the state
//!   after `h - 1` (the pipeline reads them at each commit), so a governance change takes
//!   effect on every node at the same height.
//! - A block decided before its body is here (a member restarted after it locked) is
//!   committed when the body arrives, from gossip or fetched by block sync; consensus waits,
//!   the loop does not.
//! - A height starts when there is something to order: a runnable transaction, chain work
//!   that counts blocks ([`caihong_chaincode::exec::block_work_pending`]), a peer's message
//!   or block for it, or `empty_block_interval_ms` after the last block (block 1 at once).
//!   The wait is before [`Input::StartHeight`], on every member alike, so no propose timer
//!   runs while the chain is idle; the first member to start carries the others along with
//!   its messages.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use caihong_chaincode::{Hash, PublicKey, codec};
use caihong_consensus::{
    ChainId, CommitCertificate, Consensus, Ed25519Signer, Input, Message, Output, Timeout,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::block::Block;
use crate::block_sync::{BlockSync, SyncEvent, body_fetch_span, serve_blocks};
use crate::chain::now_ms;
use crate::config::Home;
use crate::network::{Acceptance, NetworkHandle, NodeKey, Responder, Topic, Validation};
use crate::pipeline::{CommitReport, HeightPipeline};
use crate::shared::{Committed, Shared};
use crate::wire::{Envelope, SyncRequest, SyncResponse, WireMessage};

/// Timers the host set, coming back.
#[derive(Debug)]
pub enum HostEvent {
    Timeout(Timeout),
    BuildBlock {
        height: u64,
        round: u32,
    },
    /// The empty-block interval of a height waiting for something to order has run out.
    IdleOver {
        height: u64,
    },
}

/// How often an idle chain says so in the log (empty blocks are logged at DEBUG).
const IDLE_SUMMARY_EVERY: Duration = Duration::from_secs(600);

/// Empty blocks since the last block with transactions or the last idle summary.
struct Idle {
    empty_blocks: u64,
    since: Instant,
}

/// A block consensus decided before its body was here.
struct AwaitingBody {
    height: u64,
    hash: Hash,
    certificate: CommitCertificate,
}

/// See the module docs.
pub struct ConsensusHost {
    home: Home,
    shared: Shared,
    net: NetworkHandle,
    consensus: Consensus<Ed25519Signer>,
    node_key: PublicKey,
    pipeline: HeightPipeline,
    sync: BlockSync,
    /// Where the safety state is made durable before a signed message leaves
    /// ([`crate::signer_state`]).
    safety_path: PathBuf,
    #[cfg(feature = "byzantine")]
    byzantine: Option<crate::byzantine::Byzantine>,
    events: mpsc::Sender<HostEvent>,
    awaiting_body: Option<AwaitingBody>,
    /// The height that waits for something to order before it starts.
    waiting: Option<u64>,
    /// Bodies of this height already kept on disk by [`ConsensusHost::hold_bodies`].
    held_bodies: Vec<Hash>,
    idle: Idle,
    /// Serves peers' state sync requests, bounded.
    snapshots: crate::state_sync::Server,
    rounds_this_height: u32,
    committed_txs: u64,
}

impl std::fmt::Debug for ConsensusHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsensusHost")
            .field("height", &self.pipeline.height())
            .field("round", &self.consensus.round())
            .field(
                "awaiting_body",
                &self.awaiting_body.as_ref().map(|a| a.hash),
            )
            .finish_non_exhaustive()
    }
}

impl ConsensusHost {
    /// The host of a node whose parts [`crate::runtime::run`] started; timers it sets come
    /// back through `events`.
    pub fn new(
        home: Home,
        shared: Shared,
        net: NetworkHandle,
        consensus: Consensus<Ed25519Signer>,
        pipeline: HeightPipeline,
        sync: BlockSync,
        events: mpsc::Sender<HostEvent>,
    ) -> anyhow::Result<Self> {
        #[cfg(feature = "byzantine")]
        let byzantine =
            crate::byzantine::Byzantine::from_env(&home.node_key, &shared.chain_id, &home.dir)?;
        #[allow(unused_mut)]
        let mut snapshots = crate::state_sync::Server::default();
        #[cfg(feature = "byzantine")]
        {
            snapshots.corrupt = byzantine.as_ref().is_some_and(|b| b.corrupts_snapshots());
        }
        Ok(ConsensusHost {
            node_key: PublicKey::from(&home.node_key.verifying_key()),
            safety_path: crate::signer_state::path(&home.dir),
            home,
            shared,
            net,
            consensus,
            pipeline,
            sync,
            #[cfg(feature = "byzantine")]
            byzantine,
            events,
            awaiting_body: None,
            waiting: None,
            held_bodies: Vec::new(),
            idle: Idle {
                empty_blocks: 0,
                since: Instant::now(),
            },
            snapshots,
            rounds_this_height: 0,
            committed_txs: 0,
        })
    }

    /// Starts consensus at the height after the store's latest block (or waits for something
    /// to order).
    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.refresh_status().await;
        match self.next_height() {
            Some(input) => self.feed(input).await,
            None => Ok(()),
        }
    }

    /// The input that starts the pipeline's height now, or `None` when it waits for
    /// something to order (then a timer, a transaction or a peer starts it).
    fn next_height(&mut self) -> Option<Input> {
        let Some(wait) = self.idle_wait() else {
            self.waiting = None;
            return Some(self.start_height_input());
        };
        let height = self.pipeline.height();
        if self.waiting != Some(height) {
            self.waiting = Some(height);
            self.after(wait, HostEvent::IdleOver { height });
        }
        None
    }

    /// How long the next height still waits for something to order; `None` to start now.
    fn idle_wait(&self) -> Option<Duration> {
        let interval = self.home.config.consensus.empty_block_interval_ms;
        if interval == 0 || self.sync.status().catching_up {
            return None;
        }
        // A store that cannot be read is not a reason to stall: the height starts and
        // the error surfaces where the height needs the store.
        let view = self.shared.store.state_view().ok()?;
        // After every commit under load: the mempool answers first, without the prefix scans.
        if self
            .shared
            .mempool
            .lock()
            .expect("mempool")
            .has_runnable(&view)
            || caihong_chaincode::exec::block_work_pending(&view)
        {
            return None;
        }
        let last = self.shared.store.latest_header().ok().flatten()?;
        if last.height == 0 {
            // A new chain makes its first block at once: the members see they agree.
            return None;
        }
        let due = last.time_ms.saturating_add(interval);
        let now = now_ms();
        (due > now).then(|| Duration::from_millis(due - now))
    }

    /// Starts the waiting height, if one waits.
    async fn start_waiting_height(&mut self) -> anyhow::Result<()> {
        if self.waiting.take().is_none() {
            return Ok(());
        }
        let input = self.start_height_input();
        self.feed(input).await
    }

    /// Intake admitted transactions: a waiting height starts if they are runnable.
    pub async fn on_transactions(&mut self) -> anyhow::Result<()> {
        if self.waiting.is_some() && self.idle_wait().is_none() {
            self.start_waiting_height().await?;
        }
        Ok(())
    }

    /// Each second: the status, and a waiting height whose wait is over.
    pub async fn tick(&mut self) -> anyhow::Result<()> {
        self.refresh_status().await;
        self.on_transactions().await
    }

    /// The input that starts consensus at the pipeline's height (fed by the caller, so that a
    /// commit inside [`ConsensusHost::feed`] queues it instead of recursing).
    fn start_height_input(&mut self) -> Input {
        self.pipeline.start_height();
        self.rounds_this_height = 0;
        Input::StartHeight {
            height: self.pipeline.height(),
            validators: self.pipeline.validators().clone(),
        }
    }

    /// Feeds one input and carries out every output, in order.
    async fn feed(&mut self, input: Input) -> anyhow::Result<()> {
        let mut queue = VecDeque::from([input]);
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
                self.hold_bodies(&state)?;
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
            Output::Broadcast(message) => self.broadcast(message).await,
            Output::ScheduleTimeout { timeout, after } => {
                self.rounds_this_height = self.rounds_this_height.max(timeout.round);
                self.after(after, HostEvent::Timeout(timeout));
            }
            Output::GetValue { height, round } => {
                let interval = Duration::from_millis(self.home.config.consensus.block_interval_ms);
                let wait = self.pipeline.proposal_wait(interval);
                self.after(wait, HostEvent::BuildBlock { height, round });
            }
            Output::ValidateValue { value, .. } => {
                if let Some(valid) = self.pipeline.validate_value(&Hash(value.0)) {
                    return Ok(Some(Input::ValidationResult {
                        height: self.pipeline.height(),
                        value,
                        valid,
                    }));
                }
            }
            Output::Decide {
                height,
                value,
                certificate,
            } => {
                let hash = Hash(value.0);
                if self.pipeline.body(&hash).is_some() {
                    return self.commit(height, hash, certificate).await;
                }
                self.sync.fetch_body(height, hash);
                self.awaiting_body = Some(AwaitingBody {
                    height,
                    hash,
                    certificate,
                });
            }
            Output::Evidence(evidence) => {
                warn!(?evidence, "equivocation detected");
                self.shared.store.add_evidence(&evidence)?;
            }
        }
        Ok(None)
    }

    /// Keeps on disk the bodies of the values the safety state refers to (its lock and its
    /// valid value), before the state that names them is saved: after a crash consensus may
    /// decide or re-propose them, and in an alliance whose members all crashed at once (a
    /// local one on one machine, a one-member one) no peer has them to send.
    fn hold_bodies(&mut self, state: &caihong_consensus::SafetyState) -> anyhow::Result<()> {
        for (_, value) in [state.locked, state.valid].into_iter().flatten() {
            let hash = Hash(value.0);
            if self.held_bodies.contains(&hash) {
                continue;
            }
            if let Some(block) = self.pipeline.body(&hash) {
                self.shared.store.hold_body(block)?;
                self.held_bodies.push(hash);
            }
        }
        Ok(())
    }

    /// Sends `event` back to the host after `after`.
    fn after(&self, after: Duration, event: HostEvent) {
        let events = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = events.send(event).await;
        });
    }

    async fn broadcast(&mut self, message: Message) {
        #[cfg(feature = "byzantine")]
        let conflicting = self
            .byzantine
            .as_ref()
            .map(|b| b.conflicting(&message))
            .unwrap_or_default();
        for wire in outgoing(message, self.node_key, |hash| self.pipeline.body(hash)) {
            self.publish(wire).await;
        }
        #[cfg(feature = "byzantine")]
        for m in conflicting {
            self.publish(WireMessage::Consensus(m)).await;
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

    /// A timer set earlier fired.
    pub async fn on_event(&mut self, event: HostEvent) -> anyhow::Result<()> {
        match event {
            HostEvent::Timeout(t) => self.feed(Input::Timeout(t)).await,
            HostEvent::IdleOver { height } if self.waiting == Some(height) => {
                self.start_waiting_height().await
            }
            HostEvent::IdleOver { .. } => Ok(()),
            HostEvent::BuildBlock { height, round } => {
                if self.awaiting_body.is_some() {
                    return Ok(());
                }
                #[cfg(feature = "byzantine")]
                let byzantine = self.byzantine.as_ref();
                let tamper = |_header: &mut crate::block::Header| {
                    #[cfg(feature = "byzantine")]
                    if let Some(b) = byzantine {
                        b.corrupt_header(_header);
                    }
                };
                let Some(hash) = self.pipeline.build(height, round, tamper).await? else {
                    return Ok(());
                };
                // The body is published with the proposal (broadcast).
                self.feed(Input::ProposeValue {
                    height,
                    round,
                    value: caihong_consensus::Hash(hash.0),
                })
                .await
            }
        }
    }

    /// Whether a consensus-topic message is forwarded. A forged or foreign message is
    /// rejected (a strike against the member that relayed it, see network's ban), so junk a
    /// member injects goes no further than its direct peers; a message for another height
    /// whose signer we cannot judge yet is ignored (not forwarded, no strike). Consensus checks
    /// again what it takes.
    fn gossip_verdict(&self, message: &WireMessage) -> Acceptance {
        let is_validator = |key: [u8; 32]| self.pipeline.is_validator(&PublicKey(key));
        let height = self.pipeline.height();
        match message {
            WireMessage::Consensus(m) => {
                let chain = ChainId::new(self.shared.chain_id.clone());
                if !m.verify_signature(&chain) {
                    Acceptance::Reject
                } else if is_validator(m.signer().0) {
                    Acceptance::Accept
                } else if m.height() == height {
                    Acceptance::Reject
                } else {
                    Acceptance::Ignore
                }
            }
            WireMessage::Block(b) => {
                if b.header.chain_id != self.shared.chain_id {
                    Acceptance::Reject
                } else if b.header.height < height {
                    Acceptance::Ignore
                } else if is_validator(b.header.proposer.0) {
                    // Also ahead of our height: a member that lags still relays the body.
                    Acceptance::Accept
                } else if b.header.height == height {
                    Acceptance::Reject
                } else {
                    Acceptance::Ignore
                }
            }
            WireMessage::Status { .. } => Acceptance::Accept,
        }
    }

    /// A consensus-topic gossip message from peer `from` (which may have relayed it; `origin`
    /// is the member that published it, from the message's signature): judged for
    /// forwarding, then taken.
    pub async fn on_gossip(
        &mut self,
        data: Vec<u8>,
        from: NodeKey,
        origin: Option<NodeKey>,
        validation: Validation,
    ) -> anyhow::Result<()> {
        let (verdict, message) = match codec::decode::<Envelope>(&data) {
            Ok(envelope) => (
                self.gossip_verdict(&envelope.message),
                Some(envelope.message),
            ),
            Err(_) => (Acceptance::Reject, None),
        };
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
        let for_height = match &message {
            WireMessage::Consensus(m) => Some(m.height()),
            WireMessage::Block(b) => Some(b.header.height),
            WireMessage::Status { .. } => None,
        };
        if for_height == Some(self.pipeline.height()) {
            // A peer started the height: so does this member.
            self.start_waiting_height().await?;
        }
        match message {
            WireMessage::Consensus(m) => self.feed(Input::from(m)).await,
            WireMessage::Block(block) => self.take_body(block).await,
            WireMessage::Status { height } => {
                self.sync.peer_at(height, from, origin);
                Ok(())
            }
        }
    }

    /// A block body, gossiped or fetched: validated if consensus was waiting for it, committed
    /// if consensus decided it without it.
    async fn take_body(&mut self, block: Block) -> anyhow::Result<()> {
        if let Some((hash, valid)) = self.pipeline.add_body(block) {
            self.feed(Input::ValidationResult {
                height: self.pipeline.height(),
                value: caihong_consensus::Hash(hash.0),
                valid,
            })
            .await?;
        }
        let arrived = self
            .awaiting_body
            .as_ref()
            .is_some_and(|a| self.pipeline.body(&a.hash).is_some());
        if arrived {
            let AwaitingBody {
                height,
                hash,
                certificate,
            } = self.awaiting_body.take().expect("checked above");
            if let Some(next) = self.commit(height, hash, certificate).await? {
                self.feed(next).await?;
            }
        }
        Ok(())
    }

    /// A peer's block sync request: bodies from the pipeline (or the store), committed blocks
    /// from the store off the consensus loop.
    pub fn on_request(&self, data: Vec<u8>, respond: Responder) {
        match codec::decode::<SyncRequest>(&data) {
            Ok(SyncRequest::Body { height, hash }) => {
                let body = self.pipeline.body_for_peer(height, &hash);
                let _ = respond.respond(codec::encode(&body));
            }
            Ok(SyncRequest::Blocks { from, to }) => {
                let store = self.shared.store.clone();
                let limit = self.net.max_response_size();
                tokio::task::spawn_blocking(move || {
                    let answer = serve_blocks(&store, limit, from, to);
                    let _ = respond.respond(codec::encode(&answer));
                });
            }
            Ok(other) => {
                let served = self.snapshots.serve(&self.shared.store, &other, respond);
                debug_assert!(served, "every other request is state sync's");
            }
            Err(_) => {
                let _ = respond.respond(codec::encode(&SyncResponse { blocks: vec![] }));
            }
        }
    }

    /// What block sync brought.
    pub async fn on_sync(&mut self, event: SyncEvent) -> anyhow::Result<()> {
        match event {
            SyncEvent::Blocks { peer, blocks } => {
                for (block, certificate) in blocks {
                    let height = self.pipeline.height();
                    match block.header.height.cmp(&height) {
                        std::cmp::Ordering::Less => continue,
                        std::cmp::Ordering::Greater => break,
                        std::cmp::Ordering::Equal => {}
                    }
                    // Consensus takes a certificate only for a height it has started.
                    self.start_waiting_height().await?;
                    let was_awaiting = self.awaiting_body.is_some();
                    self.take_body(block).await?;
                    if was_awaiting {
                        // Decided already: this was the body it waited for, or the next
                        // block is past a height not committed yet and is skipped.
                        continue;
                    }
                    self.feed(Input::CommitCertificate(certificate)).await?;
                    if self.pipeline.height() == height && self.awaiting_body.is_none() {
                        // The certificate did not decide (invalid): stop and penalise.
                        self.net.penalize(peer).await;
                        break;
                    }
                }
                Ok(())
            }
            SyncEvent::Body {
                height,
                hash,
                block,
            } => match block {
                Some(block) => self.take_body(*block).await,
                None if self.awaiting_body.as_ref().is_some_and(|a| a.hash == hash) => {
                    let (attempts, seconds) = body_fetch_span();
                    anyhow::bail!(
                        "decided block {hash} at height {height}: no peer sent its body in \
                         {attempts} attempts over about {seconds} s; restart the node when its \
                         peers are reachable"
                    )
                }
                None => Ok(()),
            },
        }
    }

    /// Commits a decided block and returns the input that starts the next height, unless
    /// that height waits for something to order.
    async fn commit(
        &mut self,
        height: u64,
        hash: Hash,
        certificate: CommitCertificate,
    ) -> anyhow::Result<Option<Input>> {
        let report = self.pipeline.commit(height, hash, &certificate)?;
        self.committed_txs += report.txs as u64;
        if !self.held_bodies.is_empty() {
            self.held_bodies.clear();
            self.shared.store.release_bodies_through(height)?;
        }
        // Queued before the API's waiters hear of the commit, so a client that sends its next
        // transaction at once finds the mempool rechecked.
        crate::intake::committed(&self.shared.intake);
        for receipt in &report.receipts {
            let _ = self.shared.commits.send(Committed {
                height,
                tx_hash: receipt.tx_hash,
                receipt: receipt.clone(),
            });
        }
        self.log_commit(&report);
        if let Some(members) = &report.new_members {
            info!(validators = members.len(), "membership changed");
            let _ = self
                .net
                .set_allowed(members.iter().map(|(k, _)| k.0).collect())
                .await;
            let _ = self
                .net
                .set_peers(dial_list(&self.home, members, self.node_key))
                .await;
        }
        self.sync.committed(height);
        {
            let mut s = self.shared.status.write().expect("status");
            s.last_block_interval_ms = report.interval.as_millis() as u64;
            s.rounds_last_height = self.rounds_this_height + 1;
        }
        self.refresh_status().await;
        Ok(self.next_height())
    }

    /// One INFO line per block with transactions; empty blocks at DEBUG, with an INFO summary
    /// every [`IDLE_SUMMARY_EVERY`] of idleness.
    fn log_commit(&mut self, report: &CommitReport) {
        if report.txs == 0 {
            debug!(height = report.height, hash = %report.hash, "committed an empty block");
            self.idle.empty_blocks += 1;
            if self.idle.since.elapsed() >= IDLE_SUMMARY_EVERY {
                info!(
                    height = report.height,
                    empty_blocks = self.idle.empty_blocks,
                    minutes = self.idle.since.elapsed().as_secs() / 60,
                    "idle: no transactions"
                );
                self.idle = Idle {
                    empty_blocks: 0,
                    since: Instant::now(),
                };
            }
            return;
        }
        self.idle = Idle {
            empty_blocks: 0,
            since: Instant::now(),
        };
        let t = report.timings;
        info!(
            height = report.height,
            txs = report.txs,
            hash = %report.hash,
            interval_ms = report.interval.as_millis() as u64,
            rounds = self.rounds_this_height + 1,
            body_at_ms = t.body_at_ms,
            build_ms = t.build_ms,
            validate_ms = t.validate_ms,
            store_ms = t.store_ms,
            state_writes = report.state_writes,
            tree_nodes = report.tree_nodes,
            "committed"
        );
    }

    /// Publishes the node's status (each second and after each commit) and tells the pipeline
    /// whether block sync is catching up.
    pub async fn refresh_status(&mut self) {
        let sync = self.sync.status();
        self.pipeline.set_catching_up(sync.catching_up);
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
        s.syncing = sync.catching_up;
        s.validator = self.pipeline.is_validator(&self.node_key);
        s.consensus_round = self.consensus.round();
        s.mempool_size = mempool_size;
        s.committed_txs = self.committed_txs;
        s.highest_peer_height = sync.highest_peer_height;
        s.peer_heights = sync
            .peer_heights
            .iter()
            .map(|(k, h)| (hex::encode(k), *h))
            .collect();
    }
}

/// What goes on the wire for a consensus message. Our own proposal is preceded by its block
/// body every time it is sent: first, proposed again in a later round (a locked value whose
/// first proposer may be gone) or rebroadcast in a stalled round. A member that missed the
/// body cannot vote for the block, and no one else sends it again.
fn outgoing<'a>(
    message: Message,
    me: PublicKey,
    body: impl Fn(&Hash) -> Option<&'a Block>,
) -> Vec<WireMessage> {
    let own_body = match &message {
        Message::Proposal(p) if p.proposal.proposer.0 == me.0 => {
            body(&Hash(p.proposal.value.0)).cloned()
        }
        _ => None,
    };
    own_body
        .map(WireMessage::Block)
        .into_iter()
        .chain([WireMessage::Consensus(message)])
        .collect()
}

/// The members to dial (all but this one) and the configured extra peers.
pub fn dial_list(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Header;
    use caihong_chaincode::sandbox::{key, public};
    use std::collections::HashMap;

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
        let none: HashMap<Hash, Block> = HashMap::new();
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
            let wire = outgoing(proposal(&me, pol_round), public(&me), |h| bodies.get(h));
            assert!(
                matches!(&wire[..], [WireMessage::Block(b), WireMessage::Consensus(_)] if *b == block),
                "{wire:?}"
            );
        }
        let wire = outgoing(proposal(&other, Some(1)), public(&me), |h| bodies.get(h));
        assert!(matches!(&wire[..], [WireMessage::Consensus(_)]), "{wire:?}");
        // Without the body (lost in a restart) the proposal still goes.
        let wire = outgoing(proposal(&me, None), public(&me), |h| none.get(h));
        assert!(matches!(&wire[..], [WireMessage::Consensus(_)]), "{wire:?}");
    }
}
