//! Deterministic, seeded simulator: n consensus nodes over a faulty network, hosted exactly as
//! the crate docs tell a node to host [`Consensus`], with Byzantine validators, crashes and
//! validator set changes, and a checker that watches every run.
//!
//! One seed fixes everything (keys, delays, losses, partitions, crashes, Byzantine choices),
//! so one seed replays one run exactly; [`Report::fingerprint`] proves it.
//!
//! Shared by `tests/simulation.rs` and `examples/simulate.rs` (included by path).

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use caihong_consensus::{
    ChainId, CommitCertificate, CommitSig, Config, Consensus, Ed25519Signer, Hash, Height, Input,
    Message, Output, Proposal, PublicKey, Round, SafetyState, Signer, Step, Timeout, Validator,
    ValidatorSet, ValueId, Vote, VoteKind,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the Byzantine validators do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Send nothing at all.
    Silent,
    /// Equivocating proposer (different values to different nodes) and double voting (random
    /// different votes to different nodes), plus forged commit certificates.
    Equivocate,
    /// Vote for conflicting values in different partitions: echo to each partition group the
    /// value that group prevoted, at both prevote and precommit.
    SplitVote,
    /// Ignore the lock: prevote and precommit every proposal seen, every round.
    Amnesia,
    /// Each Byzantine validator gets one of the above, by seed.
    Mixed,
}

impl FromStr for Behavior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "silent" => Behavior::Silent,
            "equivocate" => Behavior::Equivocate,
            "split-vote" => Behavior::SplitVote,
            "amnesia" => Behavior::Amnesia,
            "mixed" => Behavior::Mixed,
            _ => {
                return Err(format!(
                    "unknown behaviour {s:?} (silent, equivocate, split-vote, amnesia, mixed)"
                ));
            }
        })
    }
}

impl Behavior {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Behavior::Silent => "silent",
            Behavior::Equivocate => "equivocate",
            Behavior::SplitVote => "split-vote",
            Behavior::Amnesia => "amnesia",
            Behavior::Mixed => "mixed",
        }
    }
}

/// One scenario; every field has a command-line flag in the `simulate` example.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Validators per height.
    pub validators: usize,
    /// Byzantine validators (always in the set, power 1 each).
    pub byzantine: usize,
    /// What they do.
    pub behavior: Behavior,
    /// Heights every honest node must decide.
    pub heights: u64,
    /// Probability a message is lost before GST.
    pub loss: f64,
    /// Probability a message is lost after GST. 0 by default: the partial synchrony model
    /// (every message arrives within `max_delay` after GST), under which termination within
    /// `round_bound` rounds is a guarantee rather than a likelihood.
    pub loss_after_gst: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Message delay range (ms); delays are drawn independently, so messages reorder.
    pub min_delay: u64,
    /// Upper end of the delay range (ms), after GST.
    pub max_delay: u64,
    /// Before GST delays go up to this many times `max_delay`.
    pub async_factor: u64,
    /// Random partitions of the honest nodes (changing every 0.3-1.5 s) until GST.
    pub partitions: bool,
    /// Global stabilization time (ms): partitions heal, delays are bounded by `max_delay`.
    pub gst: u64,
    /// Partitions last between `partition_min` and `partition_max` ms.
    pub partition_min: u64,
    /// See `partition_min`.
    pub partition_max: u64,
    /// Adversarial scheduler: before GST, cut off every node that decides from the others
    /// until the next partition change (so it cannot help them catch up).
    pub isolate_deciders: bool,
    /// Number of crashes (honest nodes, before GST); each restarts from persisted state.
    pub crashes: usize,
    /// Change the validator set every few heights (spare honest nodes join and leave).
    pub valset_changes: bool,
    /// Test-only: honest nodes ignore their lock.
    pub break_locking: bool,
    /// Every height started after stabilization must decide by this round.
    pub round_bound: Round,
}

impl SimConfig {
    /// Defaults for `n` validators of which `byzantine` misbehave: a benign network.
    pub fn new(validators: usize, byzantine: usize) -> Self {
        SimConfig {
            validators,
            byzantine,
            behavior: Behavior::Mixed,
            heights: 20,
            loss: 0.0,
            loss_after_gst: 0.0,
            duplicate: 0.0,
            min_delay: 5,
            max_delay: 50,
            async_factor: 1,
            partitions: false,
            gst: 0,
            partition_min: 300,
            partition_max: 1500,
            isolate_deciders: false,
            crashes: 0,
            valset_changes: false,
            break_locking: false,
            round_bound: validators as Round + 3,
        }
    }

    /// All faults on: loss, duplication, reordering, asynchrony and partitions until GST,
    /// crashes and validator set changes.
    pub fn faulty(validators: usize, byzantine: usize) -> Self {
        SimConfig {
            loss: 0.05,
            duplicate: 0.05,
            async_factor: 4,
            partitions: true,
            gst: 4000,
            crashes: 2,
            valset_changes: true,
            ..SimConfig::new(validators, byzantine)
        }
    }

    /// Command-line flags that reproduce this scenario in the `simulate` example.
    pub fn args(&self) -> String {
        let mut s = format!(
            "--validators {} --byzantine {} --behavior {} --heights {} --loss {} --loss-after-gst {} --duplicate {} \
             --min-delay {} --max-delay {} --async-factor {} --gst {} --partition-min {} --partition-max {} \
             --crashes {} --round-bound {}",
            self.validators,
            self.byzantine,
            self.behavior.name(),
            self.heights,
            self.loss,
            self.loss_after_gst,
            self.duplicate,
            self.min_delay,
            self.max_delay,
            self.async_factor,
            self.gst,
            self.partition_min,
            self.partition_max,
            self.crashes,
            self.round_bound
        );
        if self.partitions {
            s.push_str(" --partitions");
        }
        if self.valset_changes {
            s.push_str(" --valset-changes");
        }
        if self.isolate_deciders {
            s.push_str(" --isolate-deciders");
        }
        if self.break_locking {
            s.push_str(" --break-locking");
        }
        s
    }

    /// The command that replays `seed` of this scenario.
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "cargo run -p caihong-consensus --release --example simulate -- {} --seed-start {seed} --seeds 1 --verbose",
            self.args()
        )
    }
}

/// Outcome of one run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Heights decided by every honest node.
    pub decided_heights: u64,
    /// Agreement, validity, double-signing, certificate or evidence violations.
    pub safety_violations: Vec<String>,
    /// Termination failures.
    pub liveness_failures: Vec<String>,
    /// Simulated time at the end (ms).
    pub sim_time: u64,
    /// Simulated time at which the last honest node decided the last height (ms).
    pub done_time: u64,
    /// Stabilization time: GST or the last restart, whichever is later (ms).
    pub stable_time: u64,
    /// Events processed.
    pub events: u64,
    /// Network messages delivered.
    pub delivered: u64,
    /// Evidence items emitted by honest nodes (all verified).
    pub evidence: u64,
    /// Crashes that happened.
    pub crashes: u64,
    /// Highest round an honest node was in when deciding a height started after stabilization.
    pub max_round_after_stable: Round,
    /// Highest round seen at a decision anywhere.
    pub max_round: Round,
    /// Digest of the run (decisions and event count): equal seeds give equal fingerprints.
    pub fingerprint: u64,
}

impl Report {
    /// True if nothing went wrong.
    pub fn ok(&self) -> bool {
        self.safety_violations.is_empty() && self.liveness_failures.is_empty()
    }
}

#[derive(Clone, Debug)]
enum Net {
    Consensus(Vec<u8>),
    CertRequest(Height),
    Certs(Vec<CommitCertificate>),
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        from: usize,
        msg: Net,
    },
    Timer {
        node: usize,
        inc: u32,
        t: Timeout,
    },
    Value {
        node: usize,
        inc: u32,
        height: Height,
        round: Round,
        value: ValueId,
    },
    Validated {
        node: usize,
        inc: u32,
        height: Height,
        value: ValueId,
        valid: bool,
    },
    Crash {
        node: usize,
        cut: bool,
    },
    Restart {
        node: usize,
    },
    Repartition,
}

struct Queued {
    time: u64,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(o.time, o.seq))
    }
}

struct Node {
    seed: [u8; 32],
    signer: Ed25519Signer,
    key: PublicKey,
    byz: Option<Behavior>,
    core: Option<Consensus<Ed25519Signer>>,
    inc: u32,
    // "Disk": survives crashes.
    safety: Option<SafetyState>,
    chain: Vec<CommitCertificate>,
    // Memory: lost on crash.
    pending_certs: BTreeMap<Height, CommitCertificate>,
    last_ask: Option<u64>,
    served: BTreeMap<usize, (Height, u64)>,
    crash_cut: bool,
    round_at_decide: Vec<Round>,
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    seed: u64,
    rng: ChaCha8Rng,
    chain_id: ChainId,
    core_config: Config,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    nodes: Vec<Node>,
    groups: Vec<u8>,
    partitioned: bool,
    valsets: BTreeMap<u64, ValidatorSet>,
    valid_values: BTreeSet<ValueId>,
    proposed: BTreeSet<ValueId>,
    proposals_at: BTreeMap<(Height, Round), Vec<ValueId>>,
    value_counter: u64,
    // Checker state.
    decisions: BTreeMap<Height, ValueId>,
    first_decide_time: BTreeMap<Height, u64>,
    signed: BTreeMap<(PublicKey, Height, Round, Step), Message>,
    byz_acted: BTreeSet<(usize, Height, Round, usize)>,
    report: Report,
    last_restart: u64,
    verbose: bool,
    log: Vec<String>,
    /// A checked invariant broke: end the run at this step.
    stop: bool,
}

/// Why `(locked, valid)` breaks "locked implies valid with validRound >= lockedRound", if it does.
fn lock_without_valid(
    locked: Option<(Round, ValueId)>,
    valid: Option<(Round, ValueId)>,
) -> Option<String> {
    match (locked, valid) {
        (Some((lr, lv)), None) => Some(format!("locked on {lv:?} in r{lr} with no valid value")),
        (Some((lr, lv)), Some((vr, v))) if vr < lr => Some(format!(
            "locked on {lv:?} in r{lr}, valid value {v:?} from the older r{vr}"
        )),
        _ => None,
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Timeouts scaled to the simulated network (delays of tens of ms).
pub fn sim_core_config() -> Config {
    Config {
        timeout_propose: Duration::from_millis(300),
        timeout_propose_delta: Duration::from_millis(100),
        timeout_prevote: Duration::from_millis(150),
        timeout_prevote_delta: Duration::from_millis(100),
        timeout_precommit: Duration::from_millis(150),
        timeout_precommit_delta: Duration::from_millis(100),
        rebroadcast: Duration::from_millis(400),
        rebroadcast_delta: Duration::from_millis(100),
        ..Config::default()
    }
}

/// Run one seed of a scenario.
pub fn run(seed: u64, cfg: &SimConfig) -> Report {
    run_inner(seed, cfg, false).0
}

/// Run one seed and also return a log of notable events (for `--verbose` replays).
pub fn run_verbose(seed: u64, cfg: &SimConfig) -> (Report, Vec<String>) {
    run_inner(seed, cfg, true)
}

fn run_inner(seed: u64, cfg: &SimConfig, verbose: bool) -> (Report, Vec<String>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let spares = if cfg.valset_changes { 2 } else { 0 };
    let total = cfg.validators + spares;
    let mut nodes = Vec::with_capacity(total);
    let behaviors = [
        Behavior::Equivocate,
        Behavior::SplitVote,
        Behavior::Amnesia,
        Behavior::Silent,
    ];
    let offset = rng.gen_range(0..behaviors.len());
    for i in 0..total {
        let seed: [u8; 32] = rng.r#gen();
        let signer = Ed25519Signer::from_seed(seed);
        let byz = (i < cfg.byzantine).then(|| match cfg.behavior {
            Behavior::Mixed => behaviors[(i + offset) % behaviors.len()],
            b => b,
        });
        nodes.push(Node {
            seed,
            key: signer.public_key(),
            signer,
            byz,
            core: None,
            inc: 0,
            safety: None,
            chain: Vec::new(),
            pending_certs: BTreeMap::new(),
            last_ask: None,
            served: BTreeMap::new(),
            crash_cut: false,
            round_at_decide: Vec::new(),
        });
    }
    let mut core_config = sim_core_config();
    // The tests and examples always build the crate with `fault-injection` (dev-dependency).
    core_config.break_locking = cfg.break_locking;
    let mut sim = Sim {
        cfg,
        seed,
        rng,
        chain_id: ChainId::new(format!("caihong-sim-{seed}")),
        core_config,
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        groups: vec![0; total],
        partitioned: false,
        nodes,
        valsets: BTreeMap::new(),
        valid_values: BTreeSet::new(),
        proposed: BTreeSet::new(),
        proposals_at: BTreeMap::new(),
        value_counter: 0,
        decisions: BTreeMap::new(),
        first_decide_time: BTreeMap::new(),
        signed: BTreeMap::new(),
        byz_acted: BTreeSet::new(),
        report: Report {
            seed,
            ..Report::default()
        },
        last_restart: 0,
        verbose,
        log: Vec::new(),
        stop: false,
    };
    sim.main_loop();
    let log = std::mem::take(&mut sim.log);
    (sim.report, log)
}

impl Sim<'_> {
    fn push(&mut self, delay: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            time: self.now + delay,
            seq: self.seq,
            ev,
        }));
    }

    fn note(&mut self, s: impl FnOnce() -> String) {
        if self.verbose {
            let line = format!("[{:>7}ms] {}", self.now, s());
            self.log.push(line);
        }
    }

    fn honest(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].byz.is_none())
    }

    fn valset(&mut self, h: Height) -> ValidatorSet {
        let epoch = if self.cfg.valset_changes {
            (h.max(1) - 1) / 5
        } else {
            0
        };
        if let Some(s) = self.valsets.get(&epoch) {
            return s.clone();
        }
        let cfg = self.cfg;
        let mut vals: Vec<Validator> = Vec::new();
        if cfg.valset_changes {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.seed ^ (epoch.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let mut pool: Vec<usize> = (cfg.byzantine..self.nodes.len()).collect();
            pool.shuffle(&mut rng);
            for i in 0..cfg.byzantine {
                vals.push(Validator {
                    public_key: self.nodes[i].key,
                    power: 1,
                });
            }
            for &i in pool.iter().take(cfg.validators - cfg.byzantine) {
                vals.push(Validator {
                    public_key: self.nodes[i].key,
                    power: rng.gen_range(1..=2),
                });
            }
        } else {
            for i in 0..cfg.validators {
                vals.push(Validator {
                    public_key: self.nodes[i].key,
                    power: 1,
                });
            }
        }
        let set = ValidatorSet::new(vals).expect("simulated validator set");
        self.valsets.insert(epoch, set.clone());
        set
    }

    fn violation(&mut self, s: String) {
        self.note(|| format!("SAFETY VIOLATION: {s}"));
        if self.report.safety_violations.len() < 20 {
            self.report.safety_violations.push(s);
        }
    }

    fn main_loop(&mut self) {
        let cfg = self.cfg;
        // Start every node.
        for i in 0..self.nodes.len() {
            if self.nodes[i].byz.is_none() {
                self.boot(i);
            }
        }
        if cfg.partitions && cfg.gst > 0 {
            self.push(0, Ev::Repartition);
        }
        for _ in 0..cfg.crashes {
            let honest: Vec<usize> = self.honest().collect();
            let node = honest[self.rng.gen_range(0..honest.len())];
            let at = self.rng.gen_range(0..cfg.gst.max(1000));
            let cut = self.rng.gen_bool(0.5);
            self.push(at, Ev::Crash { node, cut });
        }
        let deadline_base = cfg.gst.max(1000) + 30_000 + cfg.heights * 3_000;
        while let Some(Reverse(q)) = self.queue.pop() {
            let deadline = deadline_base.max(self.last_restart + 30_000 + cfg.heights * 3_000);
            if q.time > deadline {
                break;
            }
            self.now = q.time;
            self.report.events += 1;
            self.dispatch(q.ev);
            if self.all_done() {
                break;
            }
            if self.report.safety_violations.len() >= 20 || self.stop {
                break;
            }
        }
        self.finish();
    }

    fn all_done(&self) -> bool {
        let h = self.cfg.heights as usize;
        self.honest().all(|i| self.nodes[i].chain.len() >= h)
    }

    fn finish(&mut self) {
        self.report.sim_time = self.now;
        self.report.stable_time = self.cfg.gst.max(self.last_restart);
        let decided = self
            .honest()
            .map(|i| self.nodes[i].chain.len())
            .min()
            .unwrap_or(0) as u64;
        self.report.decided_heights = decided.min(self.cfg.heights);
        if self.all_done() {
            self.report.done_time = self.now;
        } else {
            let mut s = format!(
                "not every honest node decided {} heights by {} ms:",
                self.cfg.heights, self.now
            );
            for i in self.honest().collect::<Vec<_>>() {
                let n = &self.nodes[i];
                let (h, r) = n.core.as_ref().map_or((0, 0), |c| (c.height(), c.round()));
                let role = match &n.core {
                    None => "down".to_string(),
                    Some(c) => format!(
                        "{:?}{}",
                        c.step(),
                        if c.is_validator() { "" } else { " follower" }
                    ),
                };
                let _ = write!(
                    s,
                    " node{i}(decided {}, at h{h} r{r} {role})",
                    n.chain.len()
                );
            }
            self.report.liveness_failures.push(s);
        }
        // Termination within a bounded number of rounds after stabilization.
        let stable = self.report.stable_time;
        let mut over = Vec::new();
        for i in self.honest().collect::<Vec<_>>() {
            for (idx, &r) in self.nodes[i].round_at_decide.iter().enumerate() {
                let h = idx as u64 + 1;
                self.report.max_round = self.report.max_round.max(r);
                let started_after = h > 1
                    && self
                        .first_decide_time
                        .get(&(h - 1))
                        .is_some_and(|&t| t >= stable);
                if started_after {
                    self.report.max_round_after_stable = self.report.max_round_after_stable.max(r);
                    if r > self.cfg.round_bound {
                        over.push(format!("node{i} h{h} r{r}"));
                    }
                }
            }
        }
        if !over.is_empty() {
            self.report.liveness_failures.push(format!(
                "heights started after stabilization ({stable} ms) needed more than {} rounds: {}",
                self.cfg.round_bound,
                over.join(", ")
            ));
        }
        let mut fp: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |x: u64| {
            fp ^= x;
            fp = fp.wrapping_mul(0x100_0000_01b3);
        };
        for (h, v) in &self.decisions {
            mix(*h);
            mix(u64::from_le_bytes(v.0[..8].try_into().unwrap()));
        }
        mix(self.report.events);
        mix(self.report.delivered);
        mix(self.now);
        self.report.fingerprint = fp;
    }

    // ----- honest hosts ------------------------------------------------------------------

    fn boot(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let signer = Ed25519Signer::from_seed(n.seed);
        n.core = Some(Consensus::new(
            self.core_config.clone(),
            self.chain_id.clone(),
            signer,
            n.safety.clone(),
        ));
        let h = n.chain.len() as u64 + 1;
        let validators = self.valset(h);
        self.step(
            i,
            Input::StartHeight {
                height: h,
                validators,
            },
        );
    }

    /// Feed one input to node `i` and carry out the outputs in order, like a node's ready loop.
    fn step(&mut self, i: usize, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let Some(core) = self.nodes[i].core.as_mut() else {
                return;
            };
            let mut outputs = core.handle(input);
            let (locked, valid) = (core.locked(), core.valid());
            if let Some(broken) = lock_without_valid(locked, valid) {
                self.broke_invariant(format!("node{i} in memory: {broken}"));
            }
            let mut crash_after = false;
            if self.nodes[i].crash_cut && !outputs.is_empty() {
                // Crash in the middle of carrying out the outputs: the rest is lost.
                let keep = self.rng.gen_range(0..outputs.len());
                outputs.truncate(keep);
                crash_after = true;
            }
            for o in outputs {
                self.apply(i, o, &mut inputs);
            }
            if crash_after {
                self.crash_now(i);
                return;
            }
        }
    }

    fn apply(&mut self, i: usize, o: Output, inputs: &mut VecDeque<Input>) {
        let inc = self.nodes[i].inc;
        match o {
            Output::PersistSafetyState(s) => {
                self.check_persisted_lock(i, &s);
                self.nodes[i].safety = Some(*s);
            }
            Output::Broadcast(m) => {
                let relay = if m.signer() == self.nodes[i].key {
                    "sends"
                } else {
                    "relays"
                };
                let lock = self.nodes[i].core.as_ref().map(|c| (c.locked(), c.valid()));
                self.note(|| {
                    format!(
                        "node{i} {relay} {} h{} r{} {:?} {:?}",
                        match &m {
                            Message::Proposal(_) => "proposal",
                            Message::Vote(v) if v.vote.kind == VoteKind::Prevote => "prevote",
                            _ => "precommit",
                        },
                        m.height(),
                        m.round(),
                        m.step(),
                        m.value()
                    ) + &format!(" lock/valid {lock:?}")
                });
                if m.signer() == self.nodes[i].key {
                    self.check_signed(i, &m);
                } else if !m.verify_signature(&self.chain_id) {
                    self.violation(format!("node{i} relayed a message with a bad signature"));
                }
                self.record_proposal(&m);
                let bytes = bincode::serialize(&m).expect("encode message");
                for k in 0..self.nodes.len() {
                    if k != i {
                        self.send(i, k, Net::Consensus(bytes.clone()));
                    }
                }
            }
            Output::ScheduleTimeout { timeout, after } => self.push(
                ms(after),
                Ev::Timer {
                    node: i,
                    inc,
                    t: timeout,
                },
            ),
            Output::GetValue { height, round } => {
                self.value_counter += 1;
                let value = Hash::digest(
                    &bincode::serialize(&(self.seed, i, height, round, self.value_counter))
                        .unwrap(),
                );
                self.valid_values.insert(value);
                let d = self.rng.gen_range(0..=10);
                self.push(
                    d,
                    Ev::Value {
                        node: i,
                        inc,
                        height,
                        round,
                        value,
                    },
                );
            }
            Output::ValidateValue { height, value, .. } => {
                let valid = self.valid_values.contains(&value);
                let d = self.rng.gen_range(0..=10);
                self.push(
                    d,
                    Ev::Validated {
                        node: i,
                        inc,
                        height,
                        value,
                        valid,
                    },
                );
            }
            Output::Decide {
                height,
                value,
                certificate,
            } => {
                self.check_decision(i, height, value, &certificate);
                let round = self.nodes[i].core.as_ref().map_or(0, |c| c.round());
                let n = &mut self.nodes[i];
                if height == n.chain.len() as u64 + 1 {
                    n.chain.push(certificate);
                    n.round_at_decide.push(round);
                }
                let next = n.chain.len() as u64 + 1;
                let validators = self.valset(next);
                inputs.push_back(Input::StartHeight {
                    height: next,
                    validators,
                });
                if let Some(c) = self.nodes[i].pending_certs.remove(&next) {
                    inputs.push_back(Input::CommitCertificate(c));
                }
                self.nodes[i].pending_certs.retain(|h, _| *h > next);
            }
            Output::Evidence(e) => match e.verify(&self.chain_id) {
                Ok(offender)
                    if self
                        .nodes
                        .iter()
                        .any(|n| n.key == offender && n.byz.is_some()) =>
                {
                    self.report.evidence += 1;
                }
                Ok(offender) => self.violation(format!(
                    "node{i} produced valid evidence against honest {offender:?}"
                )),
                Err(err) => self.violation(format!(
                    "node{i} produced evidence that does not verify: {err}"
                )),
            },
        }
    }

    fn on_net(&mut self, to: usize, from: usize, msg: Net) {
        if self.nodes[to].byz.is_some() {
            if let Net::Consensus(bytes) = msg
                && let Ok(m) = bincode::deserialize::<Message>(&bytes)
            {
                self.byz_react(to, from, &m);
            }
            return;
        }
        if self.nodes[to].core.is_none() {
            return;
        }
        match msg {
            Net::Consensus(bytes) => {
                let Ok(m) = bincode::deserialize::<Message>(&bytes) else {
                    self.violation(format!("node{to} got an undecodable message"));
                    return;
                };
                let my_height = self.nodes[to].chain.len() as u64 + 1;
                if m.height() < my_height && m.height() >= 1 {
                    // The peer is behind (it may have lost the precommits, or the nodes
                    // ahead of it may be followers now): send it the certificates it misses.
                    let last = self.nodes[to].served.get(&from).copied();
                    if last.is_none_or(|(h, t)| h != m.height() || self.now >= t + 200) {
                        self.nodes[to].served.insert(from, (m.height(), self.now));
                        let chain = &self.nodes[to].chain;
                        let first = m.height() as usize - 1;
                        let certs = chain[first..chain.len().min(first + 10)].to_vec();
                        self.send(to, from, Net::Certs(certs));
                    }
                }
                if m.height() > my_height {
                    let ask = self.nodes[to].last_ask.is_none_or(|t| self.now >= t + 200);
                    if ask {
                        self.nodes[to].last_ask = Some(self.now);
                        self.send(to, from, Net::CertRequest(my_height));
                    }
                }
                self.step(to, Input::from(m));
            }
            Net::CertRequest(h) => {
                let chain = &self.nodes[to].chain;
                if h >= 1 && (h as usize) <= chain.len() {
                    let certs: Vec<_> =
                        chain[h as usize - 1..chain.len().min(h as usize - 1 + 10)].to_vec();
                    self.send(to, from, Net::Certs(certs));
                }
            }
            Net::Certs(certs) => {
                let next = self.nodes[to].chain.len() as u64 + 1;
                for c in certs {
                    if c.height >= next {
                        self.nodes[to].pending_certs.entry(c.height).or_insert(c);
                    }
                }
                if let Some(c) = self.nodes[to].pending_certs.remove(&next) {
                    self.step(to, Input::CommitCertificate(c));
                }
            }
        }
    }

    fn crash_now(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if n.core.is_none() {
            return;
        }
        n.core = None;
        n.inc += 1;
        n.pending_certs.clear();
        n.last_ask = None;
        n.crash_cut = false;
        self.report.crashes += 1;
        let d = self.rng.gen_range(200..=2000);
        self.note(|| format!("node{i} crashed; restarts in {d} ms"));
        self.push(d, Ev::Restart { node: i });
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { to, from, msg } => {
                self.report.delivered += 1;
                self.on_net(to, from, msg);
            }
            Ev::Timer { node, inc, t } => {
                if self.nodes[node].inc == inc {
                    self.step(node, Input::Timeout(t));
                }
            }
            Ev::Value {
                node,
                inc,
                height,
                round,
                value,
            } => {
                if self.nodes[node].inc == inc {
                    self.step(
                        node,
                        Input::ProposeValue {
                            height,
                            round,
                            value,
                        },
                    );
                }
            }
            Ev::Validated {
                node,
                inc,
                height,
                value,
                valid,
            } => {
                if self.nodes[node].inc == inc {
                    self.step(
                        node,
                        Input::ValidationResult {
                            height,
                            value,
                            valid,
                        },
                    );
                }
            }
            Ev::Crash { node, cut } => {
                if cut {
                    // Crash while carrying out the outputs of its next input.
                    self.nodes[node].crash_cut = true;
                } else {
                    self.crash_now(node);
                }
            }
            Ev::Restart { node } => {
                self.last_restart = self.last_restart.max(self.now);
                self.note(|| format!("node{node} restarts"));
                self.boot(node);
            }
            Ev::Repartition => {
                if self.now >= self.cfg.gst {
                    self.partitioned = false;
                    self.groups.iter_mut().for_each(|g| *g = 0);
                    self.note(|| "GST: partitions healed".to_string());
                } else {
                    self.partitioned = true;
                    for g in self.groups.iter_mut() {
                        *g = self.rng.gen_range(0..2);
                    }
                    let next = self
                        .rng
                        .gen_range(self.cfg.partition_min..=self.cfg.partition_max)
                        .min(self.cfg.gst - self.now);
                    let groups = self.groups.clone();
                    self.note(|| format!("partition {groups:?}"));
                    self.push(next, Ev::Repartition);
                }
            }
        }
    }

    // ----- network -----------------------------------------------------------------------

    fn send(&mut self, from: usize, to: usize, msg: Net) {
        let before_gst = self.now < self.cfg.gst;
        let byz_link = self.nodes[from].byz.is_some() || self.nodes[to].byz.is_some();
        if self.partitioned && before_gst && !byz_link && self.groups[from] != self.groups[to] {
            return;
        }
        let loss = if before_gst {
            self.cfg.loss
        } else {
            self.cfg.loss_after_gst
        };
        if self.rng.gen_bool(loss) {
            return;
        }
        let max = if before_gst {
            self.cfg.max_delay * self.cfg.async_factor
        } else {
            self.cfg.max_delay
        };
        let copies = if self.rng.gen_bool(self.cfg.duplicate) {
            2
        } else {
            1
        };
        for c in 0..copies {
            let d = self
                .rng
                .gen_range(self.cfg.min_delay..=max.max(self.cfg.min_delay));
            let _ = c;
            self.push(
                d,
                Ev::Deliver {
                    to,
                    from,
                    msg: msg.clone(),
                },
            );
        }
    }

    // ----- checker -----------------------------------------------------------------------

    /// The liveness invariant: a lock always comes with a valid value at least as recent, and a
    /// persisted valid value with the 2f+1 prevotes that let peers accept its re-proposal after
    /// a restart. Broken, it stalls a height much later (issue 28); the run stops here instead.
    fn check_persisted_lock(&mut self, i: usize, s: &SafetyState) {
        if let Some(broken) = lock_without_valid(s.locked, s.valid) {
            self.broke_invariant(format!("node{i} persisted: {broken}"));
            return;
        }
        let (Some((h, _, _)), Some((vr, v))) = (s.last_signed, s.valid) else {
            return;
        };
        if let Some(before) = &self.nodes[i].safety
            && (before.valid, &before.valid_pol) == (s.valid, &s.valid_pol)
        {
            return; // checked when it was first persisted
        }
        let set = self.valset(h);
        let voters: BTreeSet<PublicKey> = s
            .valid_pol
            .iter()
            .filter(|sv| {
                sv.vote.kind == VoteKind::Prevote
                    && (sv.vote.height, sv.vote.round, sv.vote.value) == (h, vr, Some(v))
                    && sv.verify_signature(&self.chain_id)
            })
            .map(|sv| sv.vote.validator)
            .collect();
        let power: u64 = voters.iter().map(|k| set.power_of(k)).sum();
        if !set.is_quorum(power) {
            self.broke_invariant(format!(
                "node{i} persisted valid value {v:?} of h{h} r{vr} with prevotes of power {power} of {}, not a proof-of-lock",
                set.total_power()
            ));
        }
    }

    fn broke_invariant(&mut self, s: String) {
        let s = format!("lock invariant: {s}");
        self.note(|| s.clone());
        if self.report.liveness_failures.is_empty() {
            self.report.liveness_failures.push(s);
        }
        self.stop = true;
    }

    fn record_proposal(&mut self, m: &Message) {
        if let Message::Proposal(p) = m {
            let p = &p.proposal;
            self.proposed.insert(p.value);
            let list = self.proposals_at.entry((p.height, p.round)).or_default();
            if !list.contains(&p.value) {
                list.push(p.value);
            }
        }
    }

    /// No honest node signs two different messages for one (height, round, step), across
    /// restarts too, and it signs only with its own key.
    fn check_signed(&mut self, i: usize, m: &Message) {
        if !m.verify_signature(&self.chain_id) {
            self.violation(format!("node{i} broadcast a message with a bad signature"));
        }
        let key = (m.signer(), m.height(), m.round(), m.step());
        match self.signed.get(&key) {
            Some(prev) if prev != m => {
                let prev = prev.clone();
                self.violation(format!(
                    "honest node{i} signed conflicting messages at h{} r{} {:?}: {:?} then {:?}",
                    key.1,
                    key.2,
                    key.3,
                    prev.value(),
                    m.value()
                ));
            }
            Some(_) => {}
            None => {
                self.signed.insert(key, m.clone());
            }
        }
    }

    fn check_decision(
        &mut self,
        i: usize,
        height: Height,
        value: ValueId,
        cert: &CommitCertificate,
    ) {
        let set = self.valset(height);
        if let Err(e) = cert.verify(&set, &self.chain_id) {
            self.violation(format!(
                "node{i} decided h{height} with a certificate that does not verify: {e}"
            ));
        }
        if cert.height != height || cert.value != value {
            self.violation(format!(
                "node{i} decided h{height} {value:?} with a certificate for another decision"
            ));
        }
        let expected = self.nodes[i].chain.len() as u64 + 1;
        if height != expected {
            self.violation(format!(
                "node{i} decided h{height} while expecting h{expected}"
            ));
        }
        match self.decisions.get(&height) {
            Some(v) if *v != value => {
                let v = *v;
                self.violation(format!("agreement: node{i} decided {value:?} at h{height}, another honest node decided {v:?}"));
            }
            Some(_) => {}
            None => {
                self.decisions.insert(height, value);
                self.first_decide_time.insert(height, self.now);
            }
        }
        if !self.valid_values.contains(&value) || !self.proposed.contains(&value) {
            self.violation(format!("validity: node{i} decided {value:?} at h{height}, which was not a proposed valid value"));
        }
        if self.cfg.isolate_deciders && self.cfg.partitions && self.now < self.cfg.gst {
            for (k, g) in self.groups.iter_mut().enumerate() {
                *g = u8::from(k == i);
            }
            self.partitioned = true;
        }
        let round = self.nodes[i].core.as_ref().map_or(0, |c| c.round());
        self.note(|| {
            format!(
                "node{i} decided h{height} {value:?} (cert round {}, at round {round})",
                cert.round
            )
        });
    }

    // ----- Byzantine validators ------------------------------------------------------------

    fn byz_send(&mut self, b: usize, to: usize, m: Message) {
        self.record_proposal(&m);
        let bytes = bincode::serialize(&m).expect("encode message");
        self.send(b, to, Net::Consensus(bytes));
    }

    fn byz_vote(
        &mut self,
        b: usize,
        kind: VoteKind,
        h: Height,
        r: Round,
        value: Option<ValueId>,
    ) -> Message {
        let n = &self.nodes[b];
        Message::Vote(
            Vote {
                kind,
                height: h,
                round: r,
                value,
                validator: n.key,
            }
            .sign(&self.chain_id, &n.signer),
        )
    }

    fn fresh_value(&mut self, b: usize, h: Height, r: Round, valid: bool) -> ValueId {
        self.value_counter += 1;
        let v = Hash::digest(
            &bincode::serialize(&(self.seed, b, h, r, self.value_counter, "byz")).unwrap(),
        );
        if valid {
            self.valid_values.insert(v);
        }
        v
    }

    fn byz_react(&mut self, b: usize, from: usize, m: &Message) {
        let Some(beh) = self.nodes[b].byz else { return };
        if beh == Behavior::Silent || self.nodes[from].byz.is_some() {
            return;
        }
        let (h, r) = (m.height(), m.round());
        let set = self.valset(h);
        let key = self.nodes[b].key;
        if set.get(&key).is_none() {
            return;
        }
        let all: Vec<usize> = (0..self.nodes.len()).filter(|&k| k != b).collect();
        // Proposer duty: for this round, the next one and the next height's first round, so
        // the proposal is there when honest nodes enter the round.
        for (hh, rr) in [(h, r), (h, r + 1), (h + 1, 0)] {
            let set = self.valset(hh);
            if set.proposer(hh, rr).public_key == key
                && self.byz_acted.insert((b, hh, rr, usize::MAX))
            {
                self.byz_propose(b, beh, hh, rr, &all);
            }
        }
        match beh {
            Behavior::Equivocate => {
                if !self.byz_acted.insert((b, h, r, usize::MAX - 1)) {
                    return;
                }
                let mut options: Vec<Option<ValueId>> = vec![None];
                options.extend(
                    self.proposals_at
                        .get(&(h, r))
                        .into_iter()
                        .flatten()
                        .map(|v| Some(*v)),
                );
                let junk = self.fresh_value(b, h, r, false);
                options.push(Some(junk));
                for &k in &all {
                    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                        let v = options[self.rng.gen_range(0..options.len())];
                        let m = self.byz_vote(b, kind, h, r, v);
                        self.byz_send(b, k, m);
                    }
                }
                // A forged certificate from the Byzantine validators alone (< 1/3 power).
                if self.rng.gen_bool(0.2) {
                    let value = self.fresh_value(b, h, r, false);
                    let mut signatures = Vec::new();
                    for n in self.nodes.iter().filter(|n| n.byz.is_some()) {
                        let vote = Vote {
                            kind: VoteKind::Precommit,
                            height: h,
                            round: r,
                            value: Some(value),
                            validator: n.key,
                        };
                        let sv = vote.sign(&self.chain_id, &n.signer);
                        signatures.push(CommitSig {
                            validator: n.key,
                            signature: sv.signature,
                        });
                    }
                    let cert = CommitCertificate {
                        height: h,
                        round: r,
                        value,
                        signatures,
                    };
                    self.send(b, from, Net::Certs(vec![cert]));
                }
            }
            Behavior::SplitVote => {
                // Echo each honest prevote back to its sender's partition group, as a prevote
                // and a precommit: each group sees the Byzantine validators agree with it.
                if let Message::Vote(v) = m
                    && v.vote.kind == VoteKind::Prevote
                {
                    let value = v.vote.value;
                    let targets: Vec<usize> = if self.partitioned {
                        self.honest()
                            .filter(|&k| self.groups[k] == self.groups[from])
                            .collect()
                    } else {
                        vec![from]
                    };
                    for k in targets {
                        if self.byz_acted.insert((b, h, r, k)) {
                            let pv = self.byz_vote(b, VoteKind::Prevote, h, r, value);
                            self.byz_send(b, k, pv);
                        }
                    }
                    // The precommit goes to one node per group only (the first prevoter): it
                    // can decide while the others stay undecided, maximizing the damage a
                    // broken lock can do (with correct locks it does none).
                    // The others get a nil precommit, so they can time out of the round
                    // without deciding.
                    let group = usize::MAX - 2 - self.groups[from] as usize;
                    let first = self.byz_acted.insert((b, h, r, group));
                    if self.byz_acted.insert((b, h, r, usize::MAX / 2 + from)) {
                        let value = if first { value } else { None };
                        let pc = self.byz_vote(b, VoteKind::Precommit, h, r, value);
                        self.byz_send(b, from, pc);
                    }
                }
            }
            Behavior::Amnesia => {
                if let Message::Proposal(p) = m
                    && self.byz_acted.insert((b, h, r, usize::MAX - 1))
                {
                    let value = Some(p.proposal.value);
                    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                        let v = self.byz_vote(b, kind, h, r, value);
                        for &k in &all {
                            self.byz_send(b, k, v.clone());
                        }
                    }
                }
            }
            Behavior::Silent | Behavior::Mixed => {}
        }
    }

    fn byz_propose(&mut self, b: usize, beh: Behavior, h: Height, r: Round, all: &[usize]) {
        match beh {
            Behavior::Amnesia => {
                let v = self.fresh_value(b, h, r, true);
                let p = self.byz_proposal(b, h, r, v);
                for &k in all {
                    self.byz_send(b, k, p.clone());
                }
            }
            _ => {
                let a = self.fresh_value(b, h, r, true);
                let invalid = beh == Behavior::Equivocate && self.rng.gen_bool(0.25);
                let c = self.fresh_value(b, h, r, !invalid);
                let pa = self.byz_proposal(b, h, r, a);
                let pc = self.byz_proposal(b, h, r, c);
                for &k in all {
                    let side = if beh == Behavior::SplitVote && self.partitioned {
                        self.groups[k] == 0
                    } else {
                        self.rng.gen_bool(0.5)
                    };
                    self.byz_send(b, k, if side { pa.clone() } else { pc.clone() });
                }
            }
        }
    }

    fn byz_proposal(&mut self, b: usize, h: Height, r: Round, value: ValueId) -> Message {
        let n = &self.nodes[b];
        let p = Proposal {
            height: h,
            round: r,
            value,
            pol_round: None,
            proposer: n.key,
        };
        Message::Proposal(p.sign(&self.chain_id, &n.signer))
    }
}
