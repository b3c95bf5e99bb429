//! The height pipeline: everything about the blocks of the height in progress. It keeps the
//! proposed bodies and their execution results, builds this member's proposal (and the next
//! height's ahead of time), validates proposals by re-executing them, and commits the decided
//! block to the store. It also holds the members and validator set the committed state gives
//! the height.
//!
//! A plain struct over the [`Store`] and the mempool: it does no networking and keeps no
//! timers, so tests drive it directly. The consensus host ([`crate::host`]) decides what to
//! call when.
//!
//! # Design
//! - Consensus agrees on header hashes. A proposer executes its batch on a snapshot of
//!   committed state, computes the state root the writes would give, and proposes the hash of
//!   the header; validators re-execute the body and judge the value invalid on any difference.
//! - A validated block's execution is kept: committing it writes what validation computed.
//! - Building ahead: when this member proposes first at the next height, its proposal is built
//!   on the first block of this height that validates, while this height's votes go on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use caihong_chaincode::exec::{BlockContext, execute_block};
use caihong_chaincode::state::{Overlay, StateReader, WriteSet};
use caihong_chaincode::{Hash, PublicKey, Receipt, SignedTransaction, VerifiedTx};
use caihong_consensus::{CommitCertificate, ValidatorSet};
use tracing::{debug, warn};

use crate::block::{Block, BlockError, Header, receipts_root, txs_root, validators_hash};
use crate::chain::{context_after, current_members, now_ms, validator_set};
use crate::mempool::Mempool;
use crate::sigbatch::verify_each;
use crate::storage::{PreparedState, Store, member_node_keys};

/// Most next-height bodies kept while this height is decided (a few rounds' proposals; a
/// member that floods bodies cannot fill memory).
const MAX_NEXT_BODIES: usize = 8;

/// What building a proposal needs besides the state: the proposer and the block limits.
#[derive(Debug, Clone)]
pub struct Proposer {
    pub chain_id: String,
    pub key: PublicKey,
    pub max_txs: usize,
    pub max_bytes: usize,
}

/// Why a proposed block is not valid here.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("no body")]
    NoBody,
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("a transaction does not verify: {0}")]
    Transaction(caihong_chaincode::TxCheckError),
    #[error("{0:#}")]
    Store(#[from] crate::storage::error::StorageError),
}

/// Milliseconds spent on one height, by phase (for the commit log line and tuning).
#[derive(Debug, Default, Clone, Copy)]
pub struct HeightTimings {
    /// Building our proposal: reaping, executing, the state root.
    pub build_ms: u64,
    /// Checking a received proposal: signatures, execution, the state root.
    pub validate_ms: u64,
    /// Writing the block to storage.
    pub store_ms: u64,
    /// From the start of the height until a body for it was here (built or received).
    pub body_at_ms: u64,
}

fn elapsed_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
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

/// What committing a block did, for the host to report and pass on.
#[derive(Debug)]
pub struct CommitReport {
    pub height: u64,
    pub hash: Hash,
    pub txs: usize,
    pub receipts: Vec<Receipt>,
    pub timings: HeightTimings,
    /// Since the previous commit.
    pub interval: Duration,
    pub state_writes: usize,
    pub tree_nodes: usize,
    /// The members after the block, when they changed: the next height's validators and peers.
    pub new_members: Option<Vec<(PublicKey, String)>>,
}

/// The blocks of the height in progress (see the module docs).
pub struct HeightPipeline {
    store: Arc<Store>,
    mempool: Arc<Mutex<Mempool>>,
    proposer: Proposer,
    height: u64,
    members: Vec<(PublicKey, String)>,
    validator_keys: Vec<PublicKey>,
    validators: ValidatorSet,
    bodies: HashMap<Hash, Block>,
    /// Bodies proposed for the next height that arrived before this one was committed: its
    /// proposals are buffered by consensus, so their bodies are kept too (at most
    /// [`MAX_NEXT_BODIES`]).
    next_bodies: HashMap<Hash, Block>,
    /// Blocks of this height executed here (shared with a next block being built on one).
    executed: HashMap<Hash, Arc<Executed>>,
    /// Our proposal for the next height, being built on a block of this height that
    /// validated here, before that block is decided and stored.
    ahead: Option<BuildAhead>,
    /// Proposals consensus asked to validate before their body was here.
    pending_validation: HashSet<Hash>,
    /// While block sync catches up, nothing is built ahead (the blocks come decided).
    catching_up: bool,
    last_commit: Instant,
    height_started: Instant,
    /// When this height's block body was built or first arrived (or the height started, if
    /// it came early).
    body_seen: Option<Instant>,
    /// When the previous height's body was: the block interval runs from there.
    previous_body_seen: Instant,
    timings: HeightTimings,
}

impl std::fmt::Debug for HeightPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeightPipeline")
            .field("height", &self.height)
            .field("bodies", &self.bodies.keys().collect::<Vec<_>>())
            .field("executed", &self.executed.keys().collect::<Vec<_>>())
            .field("pending_validation", &self.pending_validation)
            .finish_non_exhaustive()
    }
}

impl HeightPipeline {
    /// The pipeline at the height after the store's latest block.
    pub fn new(
        store: Arc<Store>,
        mempool: Arc<Mutex<Mempool>>,
        proposer: Proposer,
    ) -> anyhow::Result<Self> {
        let latest = store.latest_height()?.context("the store has no genesis")?;
        // Bodies this node locked on or kept as valid before a restart (see Store::hold_body).
        store.release_bodies_through(latest)?;
        let bodies: HashMap<Hash, Block> = store
            .held_bodies(latest + 1)?
            .into_iter()
            .map(|b| (b.hash(), b))
            .collect();
        let members = current_members(&store)?;
        let validator_keys: Vec<PublicKey> = members.iter().map(|(k, _)| *k).collect();
        let now = Instant::now();
        Ok(HeightPipeline {
            store,
            mempool,
            proposer,
            height: latest + 1,
            validators: validator_set(&validator_keys).context("the members' validator set")?,
            validator_keys,
            members,
            bodies,
            next_bodies: HashMap::new(),
            executed: HashMap::new(),
            ahead: None,
            pending_validation: HashSet::new(),
            catching_up: false,
            last_commit: now,
            height_started: now,
            body_seen: None,
            previous_body_seen: now,
            timings: HeightTimings::default(),
        })
    }

    /// The height in progress.
    pub fn height(&self) -> u64 {
        self.height
    }

    pub fn chain_id(&self) -> &str {
        &self.proposer.chain_id
    }

    /// This height's validator set (the members after the previous block).
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    pub fn is_validator(&self, key: &PublicKey) -> bool {
        self.validator_keys.contains(key)
    }

    /// This height's members: (node key, p2p address).
    pub fn members(&self) -> &[(PublicKey, String)] {
        &self.members
    }

    /// When this height started (its first input to consensus).
    pub fn height_started(&self) -> Instant {
        self.height_started
    }

    /// How long to wait before building a proposal: proposals come at most once per
    /// `interval`, counted from when the previous block was proposed (its body built or first
    /// seen here), not from its commit. A block that took longer than the interval to
    /// validate, agree on and store has already gathered the next one's transactions, and
    /// waiting again after it would leave the members idle.
    pub fn proposal_wait(&self, interval: Duration) -> Duration {
        interval.saturating_sub(self.previous_body_seen.elapsed())
    }

    pub fn set_catching_up(&mut self, catching_up: bool) {
        self.catching_up = catching_up;
    }

    /// Marks the start of the height in progress (for its timings).
    pub fn start_height(&mut self) {
        self.height_started = Instant::now();
        self.previous_body_seen = self.body_seen.take().unwrap_or(self.height_started);
        self.timings = HeightTimings::default();
        if !self.bodies.is_empty() {
            // Bodies that came early: the height's body was here from its start.
            self.body_seen = Some(self.height_started);
        }
    }

    /// The body of block `hash` of this height, if it is here.
    pub fn body(&self, hash: &Hash) -> Option<&Block> {
        self.bodies.get(hash)
    }

    /// The body of block `hash` at `height` if this member holds it, committed or not.
    pub fn body_for_peer(&self, height: u64, hash: &Hash) -> Option<Block> {
        let held = self.bodies.get(hash).or_else(|| self.next_bodies.get(hash));
        held.cloned().or_else(|| {
            let stored = self.store.block(height).ok().flatten();
            stored.filter(|b| b.hash() == *hash)
        })
    }

    /// Takes a block body (gossiped or fetched). If consensus was waiting to validate it,
    /// returns the verdict. Bodies of the next height are kept for later; older ones dropped.
    pub fn add_body(&mut self, block: Block) -> Option<(Hash, bool)> {
        let hash = block.hash();
        if block.header.height == self.height {
            self.body_seen.get_or_insert_with(Instant::now);
            self.bodies.insert(hash, block);
            if self.pending_validation.remove(&hash) {
                return Some((hash, self.validate(&hash)));
            }
        } else if block.header.height == self.height + 1 && self.next_bodies.len() < MAX_NEXT_BODIES
        {
            self.next_bodies.insert(hash, block);
        }
        None
    }

    /// Consensus asks whether block `hash` of this height is valid: the verdict if its body is
    /// here, or `None` and the verdict comes from [`HeightPipeline::add_body`].
    pub fn validate_value(&mut self, hash: &Hash) -> Option<bool> {
        if self.bodies.contains_key(hash) {
            return Some(self.validate(hash));
        }
        self.pending_validation.insert(*hash);
        None
    }

    /// Builds this member's proposal for `height` and keeps its body, returning its hash; `None`
    /// if the height is no longer in progress. Uses the block built ahead for round 0 when it
    /// was built on the latest block and holds transactions. `tamper` sees the header before
    /// it is hashed (the fault lab's corrupt proposer; a no-op otherwise).
    pub async fn build(
        &mut self,
        height: u64,
        round: u32,
        tamper: impl FnOnce(&mut Header),
    ) -> anyhow::Result<Option<Hash>> {
        if height != self.height {
            return Ok(None);
        }
        let started = Instant::now();
        let parent = self
            .store
            .latest_header()?
            .context("store has no genesis")?;
        let ahead = match self.ahead.take() {
            Some(ahead)
                if ahead.height == height && round == 0 && ahead.parent == parent.hash() =>
            {
                usable_ahead(height, ahead.task.await)
            }
            _ => None,
        };
        let from_ahead = ahead.is_some();
        let Built {
            mut block,
            executed,
        } = match ahead {
            Some(built) => built,
            None => {
                let view = self.store.state_view()?;
                build_on(&self.proposer, &self.mempool, &parent, &view, |writes| {
                    Ok(view.prepare(writes)?)
                })?
            }
        };
        tamper(&mut block.header);
        let hash = block.hash();
        self.timings.build_ms += elapsed_ms(started);
        self.body_seen.get_or_insert_with(Instant::now);
        debug!(height, round, txs = block.txs.len(), %hash, from_ahead, "proposing");
        self.bodies.insert(hash, block);
        self.executed.insert(hash, Arc::new(executed));
        self.build_ahead(&hash);
        Ok(Some(hash))
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
        if self.catching_up || self.ahead.as_ref().is_some_and(|a| a.height >= self.height) {
            return;
        }
        let (Some(block), Some(executed)) = (self.bodies.get(parent), self.executed.get(parent))
        else {
            return;
        };
        let next_proposer = self.validators.proposer(next, 0).public_key;
        if next_proposer.0 != self.proposer.key.0
            || block.header.next_validators_hash != validators_hash(&self.validator_keys)
        {
            return;
        }
        let store = self.store.clone();
        let mempool = self.mempool.clone();
        let proposer = self.proposer.clone();
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

    fn check_block(&mut self, hash: &Hash) -> Result<(), Invalid> {
        if self.executed.contains_key(hash) {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.execute_body(hash);
        self.timings.validate_ms += elapsed_ms(started);
        let executed = result?;
        self.executed.insert(*hash, Arc::new(executed));
        self.build_ahead(hash);
        Ok(())
    }

    /// The checks only a member that executes can make, after the block's own
    /// ([`Header::check_extends`], [`Header::check_time`], [`Block::check_txs`]).
    fn execute_body(&self, hash: &Hash) -> Result<Executed, Invalid> {
        let block = self.bodies.get(hash).ok_or(Invalid::NoBody)?;
        let h = &block.header;
        let parent = self
            .store
            .latest_header()?
            .ok_or(crate::storage::error::StorageError::NoGenesis)?;
        h.check_extends(self.chain_id(), parent.height, parent.hash())?;
        h.check_time(parent.time_ms, now_ms())?;
        let hashes = block.check_txs()?;
        let verified = verify_block_txs(&block.txs, &hashes, self.chain_id(), &self.mempool)?;
        let view = self.store.state_view()?;
        let ctx = BlockContext {
            chain_id: h.chain_id.clone(),
            height: h.height,
            time_ms: h.time_ms,
            parent_hash: h.parent_hash,
        };
        let (writes, receipts) = execute_block(&view, &ctx, &verified);
        h.check_receipts(&hashes, &receipts)?;
        if h.next_validators_hash != validators_hash(&member_node_keys(&view, &writes)) {
            return Err(BlockError::NextValidators.into());
        }
        let prepared = view.prepare(&writes)?;
        h.check_state_root(prepared.root())?;
        Ok(Executed {
            writes,
            receipts,
            prepared,
        })
    }

    /// Commits the decided block `hash`, whose body must be here, and moves to the next height.
    pub fn commit(
        &mut self,
        height: u64,
        hash: Hash,
        certificate: &CommitCertificate,
    ) -> anyhow::Result<CommitReport> {
        anyhow::ensure!(
            height == self.height,
            "decided height {height} is not the height in progress {}",
            self.height
        );
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
        let started = Instant::now();
        self.store.commit_prepared(
            &block,
            certificate,
            &executed.writes,
            &executed.receipts,
            &executed.prepared,
        )?;
        self.timings.store_ms = elapsed_ms(started);
        self.timings.body_at_ms = self.body_seen.map_or(0, |seen| {
            seen.duration_since(self.height_started).as_millis() as u64
        });
        self.bodies = std::mem::take(&mut self.next_bodies);
        self.executed.clear();
        self.pending_validation.clear();
        let interval = self.last_commit.elapsed();
        self.last_commit = Instant::now();
        let members = current_members(&self.store)?;
        let keys: Vec<PublicKey> = members.iter().map(|(k, _)| *k).collect();
        let new_members = (keys != self.validator_keys).then(|| members.clone());
        if new_members.is_some() {
            self.validators = validator_set(&keys).context("the new members' validator set")?;
            self.validator_keys = keys;
            self.members = members;
        }
        self.height = height + 1;
        Ok(CommitReport {
            height,
            hash,
            txs: block.txs.len(),
            receipts: executed.receipts.clone(),
            timings: self.timings,
            interval,
            state_writes: executed.writes.len(),
            tree_nodes: executed.prepared.new_tree_nodes(),
            new_members,
        })
    }
}

/// The block built ahead, if it can be proposed. An empty one is not: transactions that came
/// since would wait a height more, and building at this load is cheap.
fn usable_ahead(
    height: u64,
    joined: Result<anyhow::Result<Built>, tokio::task::JoinError>,
) -> Option<Built> {
    match joined {
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
        next_validators_hash: validators_hash(&member_node_keys(state, &writes)),
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

/// The block's transactions (with their hashes, in order), verified: those in our mempool were
/// verified on admission and are taken from there; the rest are checked in one signature
/// batch. Any bad one fails the block.
fn verify_block_txs(
    txs: &[SignedTransaction],
    hashes: &[Hash],
    chain_id: &str,
    mempool: &Mutex<Mempool>,
) -> Result<Vec<VerifiedTx>, Invalid> {
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
            Err(e) => return Err(Invalid::Transaction(e)),
        }
    }
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockError;
    use caihong_chaincode::members::{OperatorAction, Role};
    use caihong_chaincode::sandbox::{SANDBOX_GENESIS_TIME_MS, Sandbox, key, public};
    use caihong_chaincode::{Action, Transaction};
    use caihong_consensus::{ChainId, Ed25519Signer, Signer, Vote, VoteKind};

    /// A member's pipeline over its own store holding the sandbox genesis, proposing as
    /// `member`'s node key.
    struct Member {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        mempool: Arc<Mutex<Mempool>>,
        pipeline: HeightPipeline,
    }

    fn member(sb: &Sandbox, name: &str) -> Member {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
        let writes = sb.state_writes();
        let genesis = crate::chain::initial_header(
            &sb.chain_id,
            SANDBOX_GENESIS_TIME_MS,
            Hash::ZERO,
            &writes,
        );
        store.init_genesis(&writes, &genesis).unwrap();
        let mempool = Arc::new(Mutex::new(Mempool::new(100, 10)));
        let proposer = Proposer {
            chain_id: sb.chain_id.clone(),
            key: public(&Sandbox::node_key(name)),
            max_txs: 100,
            max_bytes: 1 << 20,
        };
        let pipeline = HeightPipeline::new(store.clone(), mempool.clone(), proposer).unwrap();
        Member {
            _dir: dir,
            store,
            mempool,
            pipeline,
        }
    }

    /// Admits a registration of a new operator by `city`'s admin into `m`'s mempool.
    fn admit_registration(sb: &Sandbox, m: &Member, city: &str, label: &str) -> Hash {
        let admin = Sandbox::admin_key(city);
        let tx = Transaction {
            chain_id: sb.chain_id.clone(),
            signer: public(&admin),
            nonce: 0,
            action: Action::Operator(OperatorAction::Register {
                key: public(&key(label)),
                name: label.into(),
                roles: [Role::Registrar].into(),
            }),
        }
        .sign(&admin);
        let hash = tx.hash();
        let view = m.store.state_view().unwrap();
        let ctx = crate::chain::next_block_context(&m.store, &sb.chain_id).unwrap();
        let verified = verify_each(vec![tx], &sb.chain_id).pop().unwrap().unwrap();
        m.mempool
            .lock()
            .unwrap()
            .admit(verified, &view, &ctx)
            .unwrap();
        hash
    }

    /// A certificate for `block` signed by every validator of the sandbox alliance.
    fn certificate(sb: &Sandbox, cities: &[&str], block: &Block) -> CommitCertificate {
        let value = caihong_consensus::Hash(block.hash().0);
        let votes: Vec<_> = cities
            .iter()
            .map(|city| {
                let signer = Ed25519Signer::new(Sandbox::node_key(city));
                Vote {
                    kind: VoteKind::Precommit,
                    height: block.header.height,
                    round: 0,
                    value: Some(value),
                    validator: signer.public_key(),
                }
                .sign(&ChainId::new(sb.chain_id.clone()), &signer)
            })
            .collect();
        CommitCertificate::from_precommits(block.header.height, 0, value, votes.iter())
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    const CITIES: [&str; 4] = ["hohhot", "baotou", "ordos", "yinchuan"];

    /// One member builds a block from its mempool; another takes the body, validates it by
    /// re-executing it, and both commit it to the same state root and move to the next height
    /// with the transaction's receipt.
    #[test]
    fn a_block_built_by_one_member_validates_and_commits_on_another() {
        let sb = Sandbox::new(4);
        let mut proposer = member(&sb, "hohhot");
        let mut validator = member(&sb, "baotou");
        let tx = admit_registration(&sb, &proposer, "ordos", "clerk");
        let hash = runtime()
            .block_on(proposer.pipeline.build(1, 0, |_| {}))
            .unwrap()
            .expect("height 1 is in progress");
        let block = proposer.pipeline.body(&hash).unwrap().clone();
        assert_eq!(block.txs.len(), 1);
        assert_eq!(proposer.pipeline.validate_value(&hash), Some(true));

        assert_eq!(
            validator.pipeline.validate_value(&hash),
            None,
            "no body yet"
        );
        assert_eq!(
            validator.pipeline.add_body(block.clone()),
            Some((hash, true))
        );

        let cert = certificate(&sb, &CITIES, &block);
        for m in [&mut proposer, &mut validator] {
            let report = m.pipeline.commit(1, hash, &cert).unwrap();
            assert_eq!(report.txs, 1);
            assert_eq!(report.receipts[0].tx_hash, tx);
            assert!(report.receipts[0].is_success(), "{:?}", report.receipts);
            assert!(report.new_members.is_none());
            assert_eq!(m.pipeline.height(), 2);
            assert_eq!(m.store.latest_header().unwrap().unwrap().hash(), hash);
        }
        // The decided block's body is served from the store once committed.
        assert_eq!(validator.pipeline.body_for_peer(1, &hash), Some(block));
    }

    /// A block whose header does not match what its body executes to is invalid, whether the
    /// body was here when consensus asked or came after; committing it anyway (a decision
    /// this member cannot reproduce) fails and writes nothing.
    #[test]
    fn a_block_that_does_not_execute_to_its_header_is_invalid() {
        let sb = Sandbox::new(4);
        let mut proposer = member(&sb, "hohhot");
        admit_registration(&sb, &proposer, "ordos", "clerk");
        let hash = runtime()
            .block_on(proposer.pipeline.build(1, 0, |h| h.state_root = Hash::ZERO))
            .unwrap()
            .unwrap();
        let block = proposer.pipeline.body(&hash).unwrap().clone();

        let mut early = member(&sb, "baotou");
        assert_eq!(early.pipeline.add_body(block.clone()), None);
        assert_eq!(early.pipeline.validate_value(&hash), Some(false));
        let mut late = member(&sb, "ordos");
        assert_eq!(late.pipeline.validate_value(&hash), None);
        assert_eq!(late.pipeline.add_body(block.clone()), Some((hash, false)));

        let err = late
            .pipeline
            .commit(1, hash, &certificate(&sb, &CITIES, &block))
            .unwrap_err();
        assert!(err.to_string().contains("state root"), "{err:#}");
        assert_eq!(late.store.latest_height().unwrap(), Some(0));
        assert_eq!(late.pipeline.height(), 1);
    }

    /// The block checks every reader makes: another chain, a wrong parent, a time from the
    /// future, or transactions that are not the header's are each refused with their reason.
    #[test]
    fn a_block_that_does_not_extend_this_chain_is_invalid_with_its_reason() {
        let sb = Sandbox::new(4);
        let mut proposer = member(&sb, "hohhot");
        let hash = runtime()
            .block_on(proposer.pipeline.build(1, 0, |_| {}))
            .unwrap()
            .unwrap();
        let good = proposer.pipeline.body(&hash).unwrap().clone();
        let check = |tamper: &dyn Fn(&mut Block)| {
            let mut block = good.clone();
            tamper(&mut block);
            let mut v = member(&sb, "baotou");
            let hash = block.hash();
            v.pipeline.add_body(block);
            match v.pipeline.check_block(&hash) {
                Err(Invalid::Block(e)) => e,
                other => panic!("expected a block error, got {other:?}"),
            }
        };
        assert!(matches!(
            check(&|b| b.header.chain_id = "other".into()),
            BlockError::ChainId { .. }
        ));
        assert!(matches!(
            check(&|b| b.header.parent_hash = Hash::ZERO),
            BlockError::Parent { .. }
        ));
        assert!(matches!(
            check(&|b| b.header.time_ms = now_ms() + 60_000),
            BlockError::Time { .. }
        ));
        let stray = Transaction {
            chain_id: sb.chain_id.clone(),
            signer: public(&key("stray")),
            nonce: 0,
            action: Action::Operator(OperatorAction::Deactivate {
                key: public(&key("stray")),
            }),
        }
        .sign(&key("stray"));
        assert!(matches!(
            check(&|b| b.txs.push(stray.clone())),
            BlockError::TxsRoot
        ));
        // A commit certificate for another block is refused by the store.
        let other = Block {
            header: Header {
                time_ms: good.header.time_ms + 1,
                ..good.header.clone()
            },
            txs: vec![],
        };
        let err = proposer
            .pipeline
            .commit(1, hash, &certificate(&sb, &CITIES, &other))
            .unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err:#}");
    }
}
