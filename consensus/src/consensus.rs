//! The Tendermint state machine of one validator: Algorithm 1 of Buchman, Kwon, Milosevic,
//! "The latest gossip on BFT consensus" (2018), plus the liveness helpers real deployments need.
//!
//! # Design
//! [`Consensus::handle`] takes one [`Input`] and returns the [`Output`]s it causes, in the
//! order the host must carry them out. Nothing inside reads a clock, a socket or a disk.
//!
//! The paper's `upon` rules are written as guards over the current state (votes, proposals,
//! step, once-flags) and re-evaluated after every input until none fires ([`Consensus::
//! run_rules`]). This is the paper's own execution model, so each rule below reads like its
//! line in the paper; the once-flags (`L34`, `L36`, `L47` "for the first time") and the step
//! guards make every rule fire at most once per round.
//!
//! Deviations from the paper, each for a reason:
//! - L49 decides on >2/3 precommits for `id(v)` without needing the proposal itself: values
//!   are opaque ids the host fetches, and >2/3 precommits mean more than 1/3 honest validators
//!   judged `v` valid. This is also what lets a commit certificate decide a lagging node.
//! - The proposer schedules `timeoutPropose` too, so a host that never answers
//!   [`Output::GetValue`] costs a round, not the height.
//! - Rebroadcast, growing timeouts, catch-up by certificate and buffering of next-height
//!   messages (see the crate docs).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::certificate::CommitCertificate;
use crate::crypto::Signer;
use crate::evidence::Evidence;
use crate::messages::{Message, Proposal, SignedProposal, SignedVote, Vote};
use crate::safety::SafetyState;
use crate::types::{ChainId, Height, PublicKey, Round, Step, ValueId, VoteKind};
use crate::validators::ValidatorSet;
use crate::vote_keeper::{AddVote, VoteKeeper};

/// Timeouts and resource bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `timeoutPropose(r) = propose + r * propose_delta`.
    pub timeout_propose: Duration,
    /// Growth of the propose timeout per round.
    pub timeout_propose_delta: Duration,
    /// `timeoutPrevote(r) = prevote + r * prevote_delta`.
    pub timeout_prevote: Duration,
    /// Growth of the prevote timeout per round.
    pub timeout_prevote_delta: Duration,
    /// `timeoutPrecommit(r) = precommit + r * precommit_delta`.
    pub timeout_precommit: Duration,
    /// Growth of the precommit timeout per round.
    pub timeout_precommit_delta: Duration,
    /// Rebroadcast own latest messages when a round has not moved for this long (grows with
    /// the round like the other timeouts, by `rebroadcast_delta`).
    pub rebroadcast: Duration,
    /// Growth of the rebroadcast interval per round.
    pub rebroadcast_delta: Duration,
    /// Messages for rounds further than this ahead of ours are ignored (bounds memory).
    pub max_future_rounds: Round,
    /// At most this many next-height messages are buffered until the height starts.
    pub max_buffered_messages: usize,
    /// At most this many distinct proposals per round are kept (an equivocating proposer
    /// cannot fill memory).
    pub max_proposals_per_round: usize,
    /// Test-only fault injection: ignore the lock when prevoting (L23, L29) and never
    /// re-propose `validValue` (L15). Breaks agreement; exists so the simulator can show that
    /// its checker finds the violation.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub break_locking: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout_propose: Duration::from_millis(3000),
            timeout_propose_delta: Duration::from_millis(500),
            timeout_prevote: Duration::from_millis(1000),
            timeout_prevote_delta: Duration::from_millis(500),
            timeout_precommit: Duration::from_millis(1000),
            timeout_precommit_delta: Duration::from_millis(500),
            rebroadcast: Duration::from_millis(2000),
            rebroadcast_delta: Duration::from_millis(500),
            max_future_rounds: 1000,
            max_buffered_messages: 4096,
            max_proposals_per_round: 4,
            #[cfg(feature = "fault-injection")]
            break_locking: false,
        }
    }
}

impl Config {
    /// The duration of timeout `kind` in `round`.
    pub fn timeout(&self, kind: TimeoutKind, round: Round) -> Duration {
        let (base, delta) = match kind {
            TimeoutKind::Propose => (self.timeout_propose, self.timeout_propose_delta),
            TimeoutKind::Prevote => (self.timeout_prevote, self.timeout_prevote_delta),
            TimeoutKind::Precommit => (self.timeout_precommit, self.timeout_precommit_delta),
            TimeoutKind::Rebroadcast => (self.rebroadcast, self.rebroadcast_delta),
        };
        base + delta * round
    }

    fn breaks_locking(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.break_locking
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }
}

/// The kinds of timeouts consensus asks the host to schedule.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum TimeoutKind {
    /// `timeoutPropose` (L21, L57).
    Propose,
    /// `timeoutPrevote` (L35, L61).
    Prevote,
    /// `timeoutPrecommit` (L48, L65).
    Precommit,
    /// The round stalled: rebroadcast own latest messages and relay the votes that justify
    /// the current round, so peers in earlier rounds can follow.
    Rebroadcast,
}

/// A timeout, identified by height, round and kind. The host hands it back unchanged in
/// [`Input::Timeout`] when it fires; stale timeouts are ignored, so the host never needs to
/// cancel any.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timeout {
    /// Height it was scheduled at.
    pub height: Height,
    /// Round it was scheduled at.
    pub round: Round,
    /// Which timeout.
    pub kind: TimeoutKind,
}

/// Everything that can happen to consensus.
#[derive(Clone, Debug)]
pub enum Input {
    /// Start `height` with its validator set. The first input after [`Consensus::new`], and
    /// the host's answer to every [`Output::Decide`] (with the next height and its set).
    StartHeight {
        /// The height to start.
        height: Height,
        /// Its validators.
        validators: ValidatorSet,
    },
    /// A proposal received from the network (unverified; consensus checks it).
    Proposal(SignedProposal),
    /// A vote received from the network (unverified; consensus checks it).
    Vote(SignedVote),
    /// A timeout from an earlier [`Output::ScheduleTimeout`] fired.
    Timeout(Timeout),
    /// Answer to [`Output::GetValue`]: the value this node proposes.
    ProposeValue {
        /// Height asked for.
        height: Height,
        /// Round asked for.
        round: Round,
        /// Id of the value (the host keeps and disseminates the value itself).
        value: ValueId,
    },
    /// Answer to [`Output::ValidateValue`].
    ValidationResult {
        /// Height of the value.
        height: Height,
        /// The value judged.
        value: ValueId,
        /// The paper's `valid(v)`.
        valid: bool,
    },
    /// A commit certificate for the current height, obtained from a peer while catching up.
    /// Verified against the height's validator set before use.
    CommitCertificate(CommitCertificate),
}

impl From<Message> for Input {
    fn from(m: Message) -> Self {
        match m {
            Message::Proposal(p) => Input::Proposal(p),
            Message::Vote(v) => Input::Vote(v),
        }
    }
}

/// What consensus asks the host to do, in order.
#[must_use = "every output is an obligation of the host: persist, send, schedule, answer, or store"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this state durable *before* carrying out any later output. Always precedes the
    /// broadcast of a newly signed message; also comes alone when the valid value changes
    /// with nothing to sign (a restart must find it).
    PersistSafetyState(Box<SafetyState>),
    /// Send to all validators (and followers). Consensus has already counted its own message;
    /// do not loop it back. Mostly messages this node just signed; when a round stalls, also
    /// its earlier messages and others' votes it relays (see [`TimeoutKind::Rebroadcast`]).
    Broadcast(Message),
    /// Feed [`Input::Timeout`] with `timeout` after `after` has elapsed.
    ScheduleTimeout {
        /// The timeout to hand back.
        timeout: Timeout,
        /// How long to wait.
        after: Duration,
    },
    /// This node proposes at `(height, round)`: answer with [`Input::ProposeValue`].
    GetValue {
        /// Height.
        height: Height,
        /// Round.
        round: Round,
    },
    /// Check the value (get its body if needed, execute it): answer with
    /// [`Input::ValidationResult`]. Asked once per value per height.
    ValidateValue {
        /// Height.
        height: Height,
        /// Round of the proposal that carried it.
        round: Round,
        /// The value to judge.
        value: ValueId,
    },
    /// `value` is decided at `height`. Store the block with `certificate`, then answer with
    /// [`Input::StartHeight`] for the next height.
    Decide {
        /// Decided height.
        height: Height,
        /// Decided value.
        value: ValueId,
        /// Proof of the decision, checkable with [`CommitCertificate::verify`].
        certificate: CommitCertificate,
    },
    /// A validator equivocated; keep and gossip the evidence.
    Evidence(Evidence),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Created; waiting for the first [`Input::StartHeight`].
    Idle,
    /// Running rounds of `height`.
    Running,
    /// Decided `height`; waiting for [`Input::StartHeight`] of a later height.
    Decided,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Once {
    L34,
    L36,
    L47,
}

/// One validator's (or follower's) consensus state. See the crate docs for how to host it.
pub struct Consensus<S: Signer> {
    config: Config,
    chain_id: ChainId,
    signer: S,
    me: PublicKey,
    safety: SafetyState,

    phase: Phase,
    height: Height,
    validators: Option<Arc<ValidatorSet>>,
    round: Round,
    step: Step,
    locked: Option<(Round, ValueId)>,
    valid: Option<(Round, ValueId)>,
    decision: Option<CommitCertificate>,

    votes: VoteKeeper,
    /// Proposals from the right proposer, per round, in arrival order.
    proposals: BTreeMap<Round, Vec<SignedProposal>>,
    /// Host judgments `valid(v)` for this height.
    validity: BTreeMap<ValueId, bool>,
    /// Values we asked the host to validate this height.
    asked: BTreeSet<ValueId>,
    /// Round for which [`Output::GetValue`] is outstanding.
    value_requested: Option<Round>,
    fired: BTreeSet<(Round, Once)>,
    equivocating_proposers: BTreeSet<Round>,
    /// Messages for the next height, unverified until it starts.
    future: Vec<Message>,

    out: Vec<Output>,
}

impl<S: Signer> std::fmt::Debug for Consensus<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consensus")
            .field("me", &self.me)
            .field("phase", &self.phase)
            .field("height", &self.height)
            .field("round", &self.round)
            .field("step", &self.step)
            .field("locked", &self.locked)
            .field("valid", &self.valid)
            .finish_non_exhaustive()
    }
}

impl<S: Signer> Consensus<S> {
    /// Create consensus for the validator holding `signer`'s key (or a follower, if the key is
    /// not in a height's set: it then decides from others' votes and signs nothing).
    ///
    /// `restored` is the last [`SafetyState`] the host persisted (`None` on first start).
    /// Nothing happens until [`Input::StartHeight`].
    pub fn new(
        config: Config,
        chain_id: ChainId,
        signer: S,
        restored: Option<SafetyState>,
    ) -> Self {
        let me = signer.public_key();
        Consensus {
            config,
            chain_id,
            signer,
            me,
            safety: restored.unwrap_or_default(),
            phase: Phase::Idle,
            height: 0,
            validators: None,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            decision: None,
            votes: VoteKeeper::default(),
            proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            asked: BTreeSet::new(),
            value_requested: None,
            fired: BTreeSet::new(),
            equivocating_proposers: BTreeSet::new(),
            future: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Apply one input; returns what the host must do, in order.
    #[must_use = "the outputs are the host's obligations"]
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::StartHeight { height, validators } => self.start_height(height, validators),
            Input::Proposal(p) => self.on_proposal(p),
            Input::Vote(v) => self.on_vote(v),
            Input::Timeout(t) => self.on_timeout(t),
            Input::ProposeValue {
                height,
                round,
                value,
            } => self.on_value(height, round, value),
            Input::ValidationResult {
                height,
                value,
                valid,
            } => {
                if self.phase == Phase::Running && height == self.height {
                    self.validity.insert(value, valid);
                }
            }
            Input::CommitCertificate(cert) => self.on_certificate(cert),
        }
        self.run_rules();
        debug_assert!(
            Self::lock_implies_valid(self.locked, self.valid)
                && Self::lock_implies_valid(self.safety.locked, self.safety.valid),
            "locked implies valid with validRound >= lockedRound: {self:?}, persisted {:?}/{:?}",
            self.safety.locked,
            self.safety.valid,
        );
        std::mem::take(&mut self.out)
    }

    // ----- accessors ---------------------------------------------------------------------

    /// This node's key.
    pub fn public_key(&self) -> PublicKey {
        self.me
    }
    /// Current height (0 before the first [`Input::StartHeight`]).
    pub fn height(&self) -> Height {
        self.height
    }
    /// Current round.
    pub fn round(&self) -> Round {
        self.round
    }
    /// Current step.
    pub fn step(&self) -> Step {
        self.step
    }
    /// `(lockedRound, lockedValue)`.
    pub fn locked(&self) -> Option<(Round, ValueId)> {
        self.locked
    }
    /// `(validRound, validValue)`.
    pub fn valid(&self) -> Option<(Round, ValueId)> {
        self.valid
    }
    /// The certificate of the current height, once decided.
    pub fn decision(&self) -> Option<&CommitCertificate> {
        self.decision.as_ref()
    }
    /// The safety state as last emitted for persistence.
    pub fn safety_state(&self) -> &SafetyState {
        &self.safety
    }
    /// The current height's validator set.
    pub fn validators(&self) -> Option<&ValidatorSet> {
        self.validators.as_deref()
    }
    /// True if this node is a validator of the current height.
    pub fn is_validator(&self) -> bool {
        self.validators
            .as_ref()
            .is_some_and(|v| v.get(&self.me).is_some())
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- heights and rounds --------------------------------------------------------------

    fn start_height(&mut self, height: Height, validators: ValidatorSet) {
        let later = match self.phase {
            Phase::Idle => true,
            Phase::Running | Phase::Decided => height > self.height,
        };
        if !later {
            return;
        }
        self.phase = Phase::Running;
        self.height = height;
        self.validators = Some(Arc::new(validators));
        self.round = 0;
        self.step = Step::Propose;
        self.locked = None;
        self.valid = None;
        self.decision = None;
        self.votes = VoteKeeper::default();
        self.proposals.clear();
        self.validity.clear();
        self.asked.clear();
        self.value_requested = None;
        self.fired.clear();
        self.equivocating_proposers.clear();

        // Resume a height we had signed in before a restart: same round, lock and step.
        let mut resume_step = Step::Propose;
        if let Some((h, r, step)) = self.safety.last_signed
            && h == height
        {
            self.round = r;
            self.restore_round_state();
            resume_step = step;
        }
        self.start_round(self.round);
        if resume_step > self.step {
            self.step = resume_step;
        }
        if resume_step > Step::Propose {
            self.rebroadcast_own();
        }

        let buffered = std::mem::take(&mut self.future);
        for m in buffered {
            if m.height() == height {
                match m {
                    Message::Proposal(p) => self.on_proposal(p),
                    Message::Vote(v) => self.on_vote(v),
                }
            }
        }
    }

    /// After a restart in the height last signed in: take back the lock, the valid value and
    /// the votes persisted with them, so the node can still re-propose its valid value with a
    /// proof-of-lock that peers can check (L15-L16, L28), and counts its own votes again.
    ///
    /// A state written before the valid value was persisted with the lock may hold a lock with
    /// an older or no valid value; the lock itself is a valid value of its round (L36 needs
    /// the proposal and 2f+1 prevotes for it), so it stands in.
    fn restore_round_state(&mut self) {
        self.locked = self.safety.locked;
        self.valid = self.safety.valid;
        if let Some((lr, lv)) = self.locked
            && self.valid.is_none_or(|(vr, _)| vr < lr)
        {
            self.valid = Some((lr, lv));
            self.safety.valid = self.valid; // persisted with the next signature
        }
        let valid = self.valid;
        let s = &self.safety;
        let pol = s.valid_pol.iter().filter(|sv| {
            valid.is_some_and(|(vr, v)| {
                sv.vote.kind == VoteKind::Prevote && sv.vote.round == vr && sv.vote.value == Some(v)
            })
        });
        let own = [&s.last_prevote, &s.last_precommit].into_iter().flatten();
        let restored: Vec<SignedVote> = pol
            .chain(own)
            .filter(|sv| sv.vote.height == self.height)
            .cloned()
            .collect();
        for sv in restored {
            let power = self.set().power_of(&sv.vote.validator);
            if power > 0 && sv.verify_signature(&self.chain_id) {
                let _ = self.votes.add(sv, power, true);
            }
        }
    }

    /// L11 StartRound(round).
    fn start_round(&mut self, round: Round) {
        let h = self.height;
        self.round = round; // L12
        self.step = Step::Propose; // L13
        self.value_requested = None;
        self.schedule(TimeoutKind::Rebroadcast, round);
        let proposer = self.set().proposer(h, round).public_key;
        if proposer == self.me {
            // L14: we propose.
            let already = self.safety.last_proposal.clone().filter(|p| {
                let p = &p.proposal;
                p.height == h && p.round == round
            });
            if let Some(p) = already {
                // Signed before a restart: send the same proposal again, never a new one.
                self.validity.insert(p.proposal.value, true);
                self.store_proposal(p.clone());
                self.out.push(Output::Broadcast(Message::Proposal(p)));
            } else if let Some((vr, v)) = self.valid.filter(|_| !self.config.breaks_locking()) {
                // L15-L16: re-propose validValue with its POL round.
                self.send_proposal(v, Some(vr));
            } else {
                // L17-L18: getValue(); the answer comes as Input::ProposeValue.
                self.value_requested = Some(round);
                self.out.push(Output::GetValue { height: h, round });
            }
        }
        // L21 (and, as a deviation, for the proposer too: see module docs).
        self.schedule(TimeoutKind::Propose, round);
    }

    fn on_value(&mut self, height: Height, round: Round, value: ValueId) {
        if self.phase != Phase::Running
            || height != self.height
            || round != self.round
            || self.step != Step::Propose
            || self.value_requested != Some(round)
        {
            return;
        }
        self.value_requested = None;
        self.send_proposal(value, None); // L19
    }

    fn send_proposal(&mut self, value: ValueId, pol_round: Option<Round>) {
        let (h, r) = (self.height, self.round);
        if !self.is_validator() || !self.safety.may_sign(h, r, Step::Propose) {
            return;
        }
        let p = Proposal {
            height: h,
            round: r,
            value,
            pol_round,
            proposer: self.me,
        }
        .sign(&self.chain_id, &self.signer);
        self.safety.last_signed = Some((h, r, Step::Propose));
        self.safety.last_proposal = Some(p.clone());
        self.snapshot_safety();
        self.validity.insert(value, true);
        self.store_proposal(p.clone());
        self.out.push(Output::Broadcast(Message::Proposal(p)));
        if let Some(vr) = pol_round {
            // The POL (L28 needs it): peers that missed round vr's prevotes get them now.
            self.relay_pol(vr, value);
        }
    }

    /// Relay the prevotes for `value` in round `vr` that justify a proposal's POL round.
    fn relay_pol(&mut self, vr: Round, value: ValueId) {
        let pol: Vec<Output> = self
            .votes
            .votes(vr, VoteKind::Prevote)
            .filter(|v| v.vote.value == Some(value))
            .map(|v| Output::Broadcast(Message::Vote(v.clone())))
            .collect();
        self.out.extend(pol);
    }

    fn send_vote(&mut self, kind: VoteKind, value: Option<ValueId>) {
        let (h, r) = (self.height, self.round);
        let power = self.set().power_of(&self.me);
        if power == 0 || !self.safety.may_sign(h, r, kind.step()) {
            return;
        }
        let v = Vote {
            kind,
            height: h,
            round: r,
            value,
            validator: self.me,
        }
        .sign(&self.chain_id, &self.signer);
        self.safety.last_signed = Some((h, r, kind.step()));
        match kind {
            VoteKind::Prevote => self.safety.last_prevote = Some(v.clone()),
            VoteKind::Precommit => self.safety.last_precommit = Some(v.clone()),
        }
        self.snapshot_safety();
        let _ = self.votes.add(v.clone(), power, true);
        self.out.push(Output::Broadcast(Message::Vote(v)));
    }

    /// Copy lock, valid value and the valid value's proof-of-lock into the safety state and
    /// ask the host to persist it.
    fn snapshot_safety(&mut self) {
        self.safety.locked = self.locked;
        self.safety.valid = self.valid;
        self.safety.valid_pol = match self.valid {
            Some((vr, v)) => self
                .votes
                .votes(vr, VoteKind::Prevote)
                .filter(|sv| sv.vote.value == Some(v))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        self.out
            .push(Output::PersistSafetyState(Box::new(self.safety.clone())));
    }

    /// The invariant the liveness argument rests on (paper, Lemma 5 and L36-L43): a lock is
    /// always a valid value, and the valid value is at least as recent as the lock. A node that
    /// breaks it, locked with no valid value to re-propose, prevotes nil against every fresh
    /// proposal while nobody can unlock it. Checked in memory and in what was last persisted.
    fn lock_implies_valid(
        locked: Option<(Round, ValueId)>,
        valid: Option<(Round, ValueId)>,
    ) -> bool {
        match (locked, valid) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((lr, _)), Some((vr, _))) => vr >= lr,
        }
    }

    fn schedule(&mut self, kind: TimeoutKind, round: Round) {
        let timeout = Timeout {
            height: self.height,
            round,
            kind,
        };
        self.out.push(Output::ScheduleTimeout {
            timeout,
            after: self.config.timeout(kind, round),
        });
    }

    fn set(&self) -> &ValidatorSet {
        self.validators
            .as_ref()
            .expect("validator set present while running")
    }

    // ----- messages ------------------------------------------------------------------------

    /// Common checks; returns false if the message must be dropped (or was buffered).
    fn admit(&mut self, m: &Message) -> bool {
        let h = m.height();
        if self.phase == Phase::Idle {
            return false;
        }
        if h == self.height + 1 {
            if self.future.len() < self.config.max_buffered_messages && !self.future.contains(m) {
                self.future.push(m.clone());
            }
            return false;
        }
        if self.phase != Phase::Running || h != self.height {
            return false;
        }
        m.round() <= self.round.saturating_add(self.config.max_future_rounds)
    }

    fn on_proposal(&mut self, sp: SignedProposal) {
        let msg = Message::Proposal(sp);
        if !self.admit(&msg) {
            return;
        }
        let Message::Proposal(sp) = msg else {
            unreachable!()
        };
        let p = &sp.proposal;
        let r = p.round;
        if p.pol_round.is_some_and(|vr| vr >= r) {
            return; // malformed: a POL must come from an earlier round
        }
        let proposer = *self.set().proposer(p.height, r);
        if proposer.public_key != p.proposer {
            return;
        }
        let known = self.proposals.get(&r).map(|v| v.as_slice()).unwrap_or(&[]);
        if known.contains(&sp) {
            return; // duplicate
        }
        if !sp.verify_signature(&self.chain_id) {
            return;
        }
        if let Some(first) = known.first()
            && self.equivocating_proposers.insert(r)
        {
            let ev = Evidence::ConflictingProposals {
                first: first.clone(),
                second: sp.clone(),
            };
            self.out.push(Output::Evidence(ev));
        }
        self.votes
            .note_sender(r, proposer.public_key, proposer.power);
        let value = p.value;
        self.store_proposal(sp);
        if !self.validity.contains_key(&value) && self.asked.insert(value) {
            self.out.push(Output::ValidateValue {
                height: self.height,
                round: r,
                value,
            });
        }
    }

    fn store_proposal(&mut self, sp: SignedProposal) {
        let list = self.proposals.entry(sp.proposal.round).or_default();
        if list.len() < self.config.max_proposals_per_round && !list.contains(&sp) {
            list.push(sp);
        }
    }

    fn on_vote(&mut self, sv: SignedVote) {
        let msg = Message::Vote(sv);
        if !self.admit(&msg) {
            return;
        }
        let Message::Vote(sv) = msg else {
            unreachable!()
        };
        let power = self.set().power_of(&sv.vote.validator);
        if power == 0 || self.votes.has(&sv) || !sv.verify_signature(&self.chain_id) {
            return;
        }
        let of_interest = sv.vote.value.is_none_or(|v| {
            self.proposals
                .values()
                .any(|ps| ps.iter().any(|p| p.proposal.value == v))
        });
        if let AddVote::Conflict(Some(ev)) = self.votes.add(sv, power, of_interest) {
            self.out.push(Output::Evidence(*ev));
        }
    }

    fn on_certificate(&mut self, cert: CommitCertificate) {
        if self.phase != Phase::Running || cert.height != self.height {
            return;
        }
        if cert.verify(self.set(), &self.chain_id).is_ok() {
            self.decide(cert);
        }
    }

    fn on_timeout(&mut self, t: Timeout) {
        if self.phase != Phase::Running || t.height != self.height || t.round != self.round {
            return;
        }
        match t.kind {
            TimeoutKind::Propose => {
                // L57-L60
                if self.step == Step::Propose {
                    self.send_vote(VoteKind::Prevote, None);
                    self.step = Step::Prevote;
                }
            }
            TimeoutKind::Prevote => {
                // L61-L64
                if self.step == Step::Prevote {
                    self.send_vote(VoteKind::Precommit, None);
                    self.step = Step::Precommit;
                }
            }
            TimeoutKind::Precommit => {
                // L65-L67
                self.start_round(self.round + 1);
            }
            TimeoutKind::Rebroadcast => {
                self.rebroadcast();
                self.schedule(TimeoutKind::Rebroadcast, self.round);
            }
        }
    }

    /// Send again this height's latest own proposal (current round) and votes, so peers that
    /// lost them (or restarted) can count them.
    fn rebroadcast_own(&mut self) {
        let (h, r) = (self.height, self.round);
        let s = &self.safety;
        let mut msgs = Vec::new();
        if let Some(p) = s
            .last_proposal
            .as_ref()
            .filter(|p| p.proposal.height == h && p.proposal.round == r)
        {
            msgs.push(Message::Proposal(p.clone()));
        }
        for v in [&s.last_prevote, &s.last_precommit].into_iter().flatten() {
            if v.vote.height == h {
                msgs.push(Message::Vote(v.clone()));
            }
        }
        self.out.extend(msgs.into_iter().map(Output::Broadcast));
    }

    /// The round stalled: send own latest messages again, and relay what justifies being in
    /// this round — the round's proposal and votes we hold (an f+1 skip, L55), the previous
    /// round's precommits (a timeoutPrecommit, L47) and the POL prevotes of the round's
    /// proposal (L28) — so peers left in an earlier round, or missing the POL, follow.
    /// The paper assumes gossip relays every message; without this relay, a node that skipped
    /// ahead on messages the others never got would wait forever for them.
    fn rebroadcast(&mut self) {
        self.rebroadcast_own();
        let r = self.round;
        let me = self.me;
        let mut relay: Vec<Message> = Vec::new();
        if let Some(p) = self.proposals.get(&r).and_then(|ps| ps.first()).cloned() {
            if let Some(vr) = p.proposal.pol_round {
                self.relay_pol(vr, p.proposal.value);
            }
            if p.proposal.proposer != me {
                relay.push(Message::Proposal(p));
            }
        }
        let mut votes: Vec<&SignedVote> = self.votes.votes(r, VoteKind::Prevote).collect();
        votes.extend(self.votes.votes(r, VoteKind::Precommit));
        if r > 0 {
            votes.extend(self.votes.votes(r - 1, VoteKind::Precommit));
        }
        relay.extend(
            votes
                .into_iter()
                .filter(|v| v.vote.validator != me)
                .map(|v| Message::Vote(v.clone())),
        );
        self.out.extend(relay.into_iter().map(Output::Broadcast));
    }

    fn decide(&mut self, certificate: CommitCertificate) {
        self.phase = Phase::Decided;
        self.decision = Some(certificate.clone());
        self.out.push(Output::Decide {
            height: self.height,
            value: certificate.value,
            certificate,
        });
    }

    // ----- the upon rules ----------------------------------------------------------------

    /// Fire enabled rules until none is.
    fn run_rules(&mut self) {
        while self.phase == Phase::Running && self.fire_one() {}
    }

    fn once(&mut self, round: Round, which: Once) -> bool {
        self.fired.insert((round, which))
    }

    /// Fire the first enabled rule; false if none is enabled.
    ///
    /// Long on purpose: the paper's upon-rules in priority order, each a few lines under its
    /// line reference, so the order in which they are tried reads as one list.
    fn fire_one(&mut self) -> bool {
        let (h, r) = (self.height, self.round);
        let set = Arc::clone(
            self.validators
                .as_ref()
                .expect("validator set present while running"),
        );

        // L49: 2f+1 precommits for id(v) in any round: decide v.
        let rounds: Vec<Round> = self.votes.rounds().collect();
        for &rr in &rounds {
            let decided = self
                .votes
                .precommit_values(rr)
                .find(|(_, p)| set.is_quorum(*p));
            if let Some((v, _)) = decided {
                let cert = CommitCertificate::from_precommits(
                    h,
                    rr,
                    v,
                    self.votes.votes(rr, VoteKind::Precommit),
                );
                self.decide(cert);
                return true;
            }
        }

        // L55: f+1 power of messages from a higher round: skip to it.
        if let Some(&rr) = rounds
            .iter()
            .rev()
            .find(|&&rr| rr > r && set.is_one_third(self.votes.sender_power(rr)))
        {
            self.start_round(rr);
            return true;
        }

        let break_locking = self.config.breaks_locking();
        let proposals = self.proposals.get(&r).cloned().unwrap_or_default();

        if self.step == Step::Propose {
            for sp in &proposals {
                let p = &sp.proposal;
                let Some(&valid) = self.validity.get(&p.value) else {
                    continue;
                };
                match p.pol_round {
                    // L22: a proposal without POL.
                    None => {
                        // L23
                        let ok = valid
                            && (break_locking || self.locked.is_none_or(|(_, lv)| lv == p.value));
                        self.send_vote(VoteKind::Prevote, ok.then_some(p.value)); // L24 / L26
                        self.step = Step::Prevote; // L27
                        return true;
                    }
                    // L28: a proposal with POL round vr < r and 2f+1 prevotes for it in vr.
                    Some(vr) => {
                        if !set.is_quorum(self.votes.power_for(
                            vr,
                            VoteKind::Prevote,
                            Some(p.value),
                        )) {
                            continue;
                        }
                        // L29
                        let ok = valid
                            && (break_locking
                                || self.locked.is_none_or(|(lr, lv)| lr <= vr || lv == p.value));
                        self.send_vote(VoteKind::Prevote, ok.then_some(p.value)); // L30 / L32
                        self.step = Step::Prevote; // L33
                        return true;
                    }
                }
            }
        }

        // L34: 2f+1 prevotes of any kind, first time, in step prevote: schedule timeoutPrevote.
        if self.step == Step::Prevote
            && set.is_quorum(self.votes.power_any(r, VoteKind::Prevote))
            && self.once(r, Once::L34)
        {
            self.schedule(TimeoutKind::Prevote, r); // L35
            return true;
        }

        // L36: proposal for v and 2f+1 prevotes for id(v), valid(v), step >= prevote, first time.
        if self.step >= Step::Prevote && !self.fired.contains(&(r, Once::L36)) {
            for sp in &proposals {
                let v = sp.proposal.value;
                if self.validity.get(&v) == Some(&true)
                    && set.is_quorum(self.votes.power_for(r, VoteKind::Prevote, Some(v)))
                {
                    self.once(r, Once::L36);
                    // L42-L43 first (the paper sets validValue after the precommit): the
                    // precommit's safety snapshot must hold the lock *with* its valid value
                    // and proof-of-lock, or a crash before the next signature restarts the
                    // node locked with nothing to re-propose (see `restore_round_state`).
                    self.valid = Some((r, v));
                    if self.step == Step::Prevote {
                        self.locked = Some((r, v)); // L38-L39
                        self.send_vote(VoteKind::Precommit, Some(v)); // L40
                        self.step = Step::Precommit; // L41
                    } else if self.safety.height() == Some(h) {
                        // No signature follows; persist the new valid value anyway.
                        self.snapshot_safety();
                    }
                    return true;
                }
            }
        }

        // L44: 2f+1 prevotes for nil in step prevote: precommit nil.
        if self.step == Step::Prevote
            && set.is_quorum(self.votes.power_for(r, VoteKind::Prevote, None))
        {
            self.send_vote(VoteKind::Precommit, None); // L45
            self.step = Step::Precommit; // L46
            return true;
        }

        // L47: 2f+1 precommits of any kind, first time: schedule timeoutPrecommit.
        if set.is_quorum(self.votes.power_any(r, VoteKind::Precommit)) && self.once(r, Once::L47) {
            self.schedule(TimeoutKind::Precommit, r); // L48
            return true;
        }

        false
    }
}
