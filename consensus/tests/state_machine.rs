//! Table-driven tests of one validator's state machine against the paper's rules.
//!
//! Each case is a list of steps: an input (a message from a named validator, a timeout, a host
//! answer) and the exact outputs expected, written compactly ("prevote r0 A", "timeout
//! Prevote r0", "decide A"). `persist` outputs and rebroadcast timers are checked by their own
//! tests and left out of the tables.

use caihong_consensus::*;

const H: Height = 1;

fn a() -> ValueId {
    Hash([0xA; 32])
}
fn b() -> ValueId {
    Hash([0xB; 32])
}
fn name(v: Option<ValueId>) -> String {
    match v {
        None => "nil".into(),
        Some(v) if v == a() => "A".into(),
        Some(v) if v == b() => "B".into(),
        Some(v) => format!("{v:?}"),
    }
}

/// Four equal validators; `me` is the one under test.
struct World {
    chain: ChainId,
    signers: Vec<Ed25519Signer>,
    set: ValidatorSet,
}

impl World {
    fn new() -> Self {
        let signers: Vec<_> = (1..=4u8)
            .map(|i| Ed25519Signer::from_seed([i; 32]))
            .collect();
        let set = ValidatorSet::equal_power(signers.iter().map(|s| s.public_key())).unwrap();
        World {
            chain: ChainId::new("caihong-test"),
            signers,
            set,
        }
    }
    fn index(&self, key: PublicKey) -> usize {
        self.signers
            .iter()
            .position(|s| s.public_key() == key)
            .unwrap()
    }
    /// Index of the proposer of round `r` at height `H`.
    fn proposer(&self, r: Round) -> usize {
        self.index(self.set.proposer(H, r).public_key)
    }
    /// A validator that proposes in none of rounds 0..=2.
    fn non_proposer(&self) -> usize {
        (0..4)
            .find(|&i| (0..=2).all(|r| self.proposer(r) != i))
            .unwrap()
    }
    /// Validators other than `me`, proposers of rounds 0 and 1 first.
    fn others(&self, me: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..4).filter(|&i| i != me).collect();
        v.sort_by_key(|&i| (i != self.proposer(0), i != self.proposer(1), i));
        v
    }
    fn proposal(&self, from: usize, h: Height, r: Round, v: ValueId, pol: Option<Round>) -> Input {
        let p = Proposal {
            height: h,
            round: r,
            value: v,
            pol_round: pol,
            proposer: self.signers[from].public_key(),
        };
        Input::Proposal(p.sign(&self.chain, &self.signers[from]))
    }
    fn vote(
        &self,
        from: usize,
        kind: VoteKind,
        h: Height,
        r: Round,
        v: Option<ValueId>,
    ) -> SignedVote {
        Vote {
            kind,
            height: h,
            round: r,
            value: v,
            validator: self.signers[from].public_key(),
        }
        .sign(&self.chain, &self.signers[from])
    }
    fn prevote(&self, from: usize, r: Round, v: Option<ValueId>) -> Input {
        Input::Vote(self.vote(from, VoteKind::Prevote, H, r, v))
    }
    fn precommit(&self, from: usize, r: Round, v: Option<ValueId>) -> Input {
        Input::Vote(self.vote(from, VoteKind::Precommit, H, r, v))
    }
    fn node(&self, me: usize, restored: Option<SafetyState>) -> Consensus<Ed25519Signer> {
        let signer = Ed25519Signer::from_seed([me as u8 + 1; 32]);
        Consensus::new(Config::default(), self.chain.clone(), signer, restored)
    }
    fn start(&self) -> Input {
        Input::StartHeight {
            height: H,
            validators: self.set.clone(),
        }
    }
    fn cert(&self, r: Round, v: ValueId, signers: &[usize]) -> CommitCertificate {
        let votes: Vec<_> = signers
            .iter()
            .map(|&i| self.vote(i, VoteKind::Precommit, H, r, Some(v)))
            .collect();
        CommitCertificate::from_precommits(H, r, v, &votes)
    }
}

/// Outputs in compact form, without `persist` and rebroadcast timers.
fn describe(me: PublicKey, outs: &[Output]) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            Output::PersistSafetyState(_) => None,
            Output::ScheduleTimeout { timeout, .. } if timeout.kind == TimeoutKind::Rebroadcast => {
                None
            }
            Output::ScheduleTimeout { timeout, .. } => {
                Some(format!("timeout {:?} r{}", timeout.kind, timeout.round))
            }
            Output::Broadcast(m) => {
                let who = if m.signer() == me { "" } else { "relay " };
                Some(match m {
                    Message::Proposal(p) => {
                        let p = &p.proposal;
                        let pol = p.pol_round.map_or(String::new(), |r| format!(" pol{r}"));
                        format!("{who}proposal r{} {}{pol}", p.round, name(Some(p.value)))
                    }
                    Message::Vote(v) => {
                        let kind = if v.vote.kind == VoteKind::Prevote {
                            "prevote"
                        } else {
                            "precommit"
                        };
                        format!("{who}{kind} r{} {}", v.vote.round, name(v.vote.value))
                    }
                })
            }
            Output::GetValue { round, .. } => Some(format!("getvalue r{round}")),
            Output::ValidateValue { value, .. } => Some(format!("validate {}", name(Some(*value)))),
            Output::Decide { value, .. } => Some(format!("decide {}", name(Some(*value)))),
            Output::Evidence(_) => Some("evidence".into()),
        })
        .collect()
}

/// Feed `input`, compare the described outputs with `expected` (exactly, in order).
fn check(
    node: &mut Consensus<Ed25519Signer>,
    case: &str,
    step: usize,
    input: Input,
    expected: &[&str],
) -> Vec<Output> {
    let outs = node.handle(input);
    let got = describe(node.public_key(), &outs);
    assert_eq!(got, expected, "case {case:?}, step {step}");
    // Every own message sent after a persist is covered by it (persist comes first).
    let mut persisted: Option<&SafetyState> = None;
    for o in &outs {
        match o {
            Output::PersistSafetyState(s) => persisted = Some(s),
            Output::Broadcast(m) if m.signer() == node.public_key() => {
                if let Some(s) = persisted {
                    assert!(
                        s.last_signed >= Some((m.height(), m.round(), m.step())),
                        "case {case:?}: persist covers send"
                    );
                }
            }
            _ => {}
        }
    }
    outs
}

/// Roles for the tables: `me`, the proposers of rounds 0 and 1, and the others.
struct Roles {
    me: usize,
    p0: usize,
    p1: usize,
    x: usize,
}

fn roles(w: &World) -> Roles {
    let me = w.non_proposer();
    let o = w.others(me);
    Roles {
        me,
        p0: o[0],
        p1: o[1],
        x: o[2],
    }
}

type Table = Vec<(&'static str, Vec<(Input, Vec<&'static str>)>)>;

fn run_table(w: &World, r: &Roles, table: Table) {
    for (case, steps) in table {
        let mut node = w.node(r.me, None);
        check(&mut node, case, 0, w.start(), &["timeout Propose r0"]);
        for (i, (input, expected)) in steps.into_iter().enumerate() {
            check(&mut node, case, i + 1, input, &expected);
        }
    }
}

#[test]
fn round_rules_table() {
    let w = World::new();
    let r = roles(&w);
    let (p0, p1, x, me) = (r.p0, r.p1, r.x, r.me);
    let table: Table = vec![
        (
            "L22: valid proposal, not locked: prevote it",
            vec![
                (w.proposal(p0, H, 0, a(), None), vec!["validate A"]),
                (
                    Input::ValidationResult {
                        height: H,
                        value: a(),
                        valid: true,
                    },
                    vec!["prevote r0 A"],
                ),
            ],
        ),
        (
            "L22: invalid proposal: prevote nil",
            vec![
                (w.proposal(p0, H, 0, a(), None), vec!["validate A"]),
                (
                    Input::ValidationResult {
                        height: H,
                        value: a(),
                        valid: false,
                    },
                    vec!["prevote r0 nil"],
                ),
            ],
        ),
        (
            "L22: proposal from the wrong proposer is ignored",
            vec![
                (w.proposal(p1, H, 0, a(), None), vec![]),
                (w.proposal(me, H, 0, a(), None), vec![]),
            ],
        ),
        (
            "L57: timeoutPropose: prevote nil",
            vec![
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 0,
                        kind: TimeoutKind::Propose,
                    }),
                    vec!["prevote r0 nil"],
                ),
                // Stale or repeated timeouts do nothing.
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 0,
                        kind: TimeoutKind::Propose,
                    }),
                    vec![],
                ),
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 5,
                        kind: TimeoutKind::Prevote,
                    }),
                    vec![],
                ),
            ],
        ),
        (
            "L34 + L61: 2f+1 mixed prevotes, then timeoutPrevote: precommit nil",
            vec![
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 0,
                        kind: TimeoutKind::Propose,
                    }),
                    vec!["prevote r0 nil"],
                ),
                (w.prevote(p0, 0, Some(a())), vec![]),
                (w.prevote(p1, 0, Some(b())), vec!["timeout Prevote r0"]),
                (w.prevote(x, 0, Some(a())), vec![]),
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 0,
                        kind: TimeoutKind::Prevote,
                    }),
                    vec!["precommit r0 nil"],
                ),
            ],
        ),
        (
            "L36: proposal and 2f+1 prevotes for it: lock and precommit",
            vec![
                (w.proposal(p0, H, 0, a(), None), vec!["validate A"]),
                (
                    Input::ValidationResult {
                        height: H,
                        value: a(),
                        valid: true,
                    },
                    vec!["prevote r0 A"],
                ),
                (w.prevote(p0, 0, Some(a())), vec![]),
                (
                    w.prevote(p1, 0, Some(a())),
                    vec!["timeout Prevote r0", "precommit r0 A"],
                ),
                // L36 fires once: more prevotes change nothing.
                (w.prevote(x, 0, Some(a())), vec![]),
            ],
        ),
        (
            "L36 needs valid(v): 2f+1 prevotes for an invalid value do not lock",
            vec![
                (w.proposal(p0, H, 0, a(), None), vec!["validate A"]),
                (
                    Input::ValidationResult {
                        height: H,
                        value: a(),
                        valid: false,
                    },
                    vec!["prevote r0 nil"],
                ),
                (w.prevote(p0, 0, Some(a())), vec![]),
                (w.prevote(p1, 0, Some(a())), vec!["timeout Prevote r0"]),
                (w.prevote(x, 0, Some(a())), vec![]),
            ],
        ),
        (
            "L44: 2f+1 nil prevotes: precommit nil",
            vec![
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 0,
                        kind: TimeoutKind::Propose,
                    }),
                    vec!["prevote r0 nil"],
                ),
                (w.prevote(p0, 0, None), vec![]),
                (
                    w.prevote(p1, 0, None),
                    vec!["timeout Prevote r0", "precommit r0 nil"],
                ),
            ],
        ),
        (
            "L47 + L65: 2f+1 precommits of any kind, then timeoutPrecommit: next round",
            vec![
                (w.precommit(p0, 0, Some(a())), vec![]),
                (w.precommit(p1, 0, None), vec![]),
                (w.precommit(x, 0, Some(b())), vec!["timeout Precommit r0"]),
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 0,
                        kind: TimeoutKind::Precommit,
                    }),
                    vec!["timeout Propose r1"],
                ),
            ],
        ),
        (
            "L49: 2f+1 precommits for a value decide it, even without the proposal",
            vec![
                (w.precommit(p0, 0, Some(a())), vec![]),
                (w.precommit(p1, 0, Some(a())), vec![]),
                (w.precommit(x, 0, Some(a())), vec!["decide A"]),
                // Decided: the height is over.
                (w.proposal(p0, H, 0, b(), None), vec![]),
            ],
        ),
        (
            "L49: a decision in an earlier round counts while in a later one",
            vec![
                (w.precommit(p0, 2, None), vec![]),
                (w.precommit(p1, 2, None), vec!["timeout Propose r2"]),
                (w.precommit(p0, 0, Some(a())), vec![]),
                (w.precommit(p1, 0, Some(a())), vec![]),
                (w.precommit(x, 0, Some(a())), vec!["decide A"]),
            ],
        ),
        (
            "L55: f+1 messages from a higher round: skip to it",
            vec![
                (w.prevote(p0, 3, None), vec![]),
                // Four validators rotate: `me` proposes in round 3.
                (
                    w.precommit(p1, 3, None),
                    vec!["getvalue r3", "timeout Propose r3"],
                ),
            ],
        ),
        (
            "L55 counts senders, not messages: one validator cannot move us",
            vec![
                (w.prevote(p0, 3, None), vec![]),
                (w.precommit(p0, 3, None), vec![]),
                (w.prevote(p0, 4, None), vec![]),
            ],
        ),
        (
            "duplicates count once",
            vec![
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 0,
                        kind: TimeoutKind::Propose,
                    }),
                    vec!["prevote r0 nil"],
                ),
                (w.prevote(p0, 0, None), vec![]),
                (w.prevote(p0, 0, None), vec![]),
                (w.prevote(p0, 0, None), vec![]),
                (
                    w.prevote(p1, 0, None),
                    vec!["timeout Prevote r0", "precommit r0 nil"],
                ),
            ],
        ),
        (
            "equivocation: evidence, and the junk value does not count",
            vec![
                (w.prevote(p0, 0, Some(a())), vec![]),
                (w.prevote(p0, 0, Some(b())), vec!["evidence"]),
                (w.prevote(p0, 0, None), vec![]),
            ],
        ),
        (
            "messages from non-members, other heights or with bad signatures are ignored",
            vec![
                (
                    Input::Vote({
                        let s = Ed25519Signer::from_seed([99; 32]);
                        Vote {
                            kind: VoteKind::Prevote,
                            height: H,
                            round: 3,
                            value: None,
                            validator: s.public_key(),
                        }
                        .sign(&w.chain, &s)
                    }),
                    vec![],
                ),
                (
                    Input::Vote(w.vote(p0, VoteKind::Prevote, H + 5, 0, None)),
                    vec![],
                ),
                (
                    Input::Vote({
                        let mut v = w.vote(p0, VoteKind::Precommit, H, 3, None);
                        v.vote.validator = w.signers[p1].public_key();
                        v
                    }),
                    vec![],
                ),
                (
                    Input::Vote(
                        Vote {
                            kind: VoteKind::Precommit,
                            height: H,
                            round: 3,
                            value: None,
                            validator: w.signers[x].public_key(),
                        }
                        .sign(&ChainId::new("another-chain"), &w.signers[x]),
                    ),
                    vec![],
                ),
                // Only one valid message from round 3 so far (none, in fact): no skip.
                (w.precommit(p0, 3, None), vec![]),
            ],
        ),
    ];
    run_table(&w, &r, table);
}

/// Lock on A in round 0 (`me` prevotes and precommits A), then go to round 1.
fn locked_on_a(w: &World, r: &Roles) -> Consensus<Ed25519Signer> {
    let mut n = w.node(r.me, None);
    let case = "lock on A";
    check(&mut n, case, 0, w.start(), &["timeout Propose r0"]);
    check(
        &mut n,
        case,
        1,
        w.proposal(r.p0, H, 0, a(), None),
        &["validate A"],
    );
    check(
        &mut n,
        case,
        2,
        Input::ValidationResult {
            height: H,
            value: a(),
            valid: true,
        },
        &["prevote r0 A"],
    );
    check(&mut n, case, 3, w.prevote(r.p0, 0, Some(a())), &[]);
    check(
        &mut n,
        case,
        4,
        w.prevote(r.x, 0, Some(a())),
        &["timeout Prevote r0", "precommit r0 A"],
    );
    check(&mut n, case, 5, w.precommit(r.p0, 0, None), &[]);
    check(
        &mut n,
        case,
        6,
        w.precommit(r.x, 0, None),
        &["timeout Precommit r0"],
    );
    check(
        &mut n,
        case,
        7,
        Input::Timeout(Timeout {
            height: H,
            round: 0,
            kind: TimeoutKind::Precommit,
        }),
        &["timeout Propose r1"],
    );
    assert_eq!(n.locked(), Some((0, a())));
    assert_eq!(n.valid(), Some((0, a())));
    assert_eq!((n.round(), n.step()), (1, Step::Propose));
    n
}

#[test]
fn locking_rules_table() {
    let w = World::new();
    let r = roles(&w);
    let cases: Table = vec![
        (
            "L23: locked on A, new proposal B without POL: prevote nil",
            vec![
                (w.proposal(r.p1, H, 1, b(), None), vec!["validate B"]),
                (
                    Input::ValidationResult {
                        height: H,
                        value: b(),
                        valid: true,
                    },
                    vec!["prevote r1 nil"],
                ),
            ],
        ),
        (
            "L23: locked on A, A proposed again: prevote A",
            vec![(w.proposal(r.p1, H, 1, a(), None), vec!["prevote r1 A"])],
        ),
        (
            "L28: A re-proposed with its POL round 0, POL present: prevote A",
            vec![(w.proposal(r.p1, H, 1, a(), Some(0)), vec!["prevote r1 A"])],
        ),
        (
            "L28 waits for the POL: B with POL round 0 but no polka for B",
            vec![
                (w.proposal(r.p1, H, 1, b(), Some(0)), vec!["validate B"]),
                (
                    Input::ValidationResult {
                        height: H,
                        value: b(),
                        valid: true,
                    },
                    vec![],
                ),
                (
                    Input::Timeout(Timeout {
                        height: H,
                        round: 1,
                        kind: TimeoutKind::Propose,
                    }),
                    vec!["prevote r1 nil"],
                ),
            ],
        ),
        (
            "L28: a POL round not lower than the proposal's round is malformed and ignored",
            vec![
                (w.proposal(r.p1, H, 1, a(), Some(1)), vec![]),
                (w.proposal(r.p1, H, 1, a(), Some(7)), vec![]),
            ],
        ),
    ];
    for (case, steps) in cases {
        let mut n = locked_on_a(&w, &r);
        for (i, (input, expected)) in steps.into_iter().enumerate() {
            check(&mut n, case, i + 1, input, &expected);
        }
    }

    let (p0, p1, x) = (r.p0, r.p1, r.x);
    let p2 = w.proposer(2);
    let polka_for_b_then_next_round = |round: Round| -> Vec<(Input, Vec<&'static str>)> {
        vec![
            (w.prevote(p0, round, Some(b())), vec![]),
            (w.prevote(p1, round, Some(b())), vec![]),
            (w.prevote(x, round, Some(b())), vec![]),
            (w.precommit(p0, round, None), vec![]),
            (w.precommit(p1, round, None), vec![]),
            (w.precommit(x, round, None), vec![]),
        ]
    };
    // L29, lockedRound <= vr: locked on A in round 0, a polka for B in round 1 (we missed the
    // proposal), then B re-proposed in round 2 with POL round 1: prevote B.
    let mut n = locked_on_a(&w, &r);
    let case = "L29: lockedRound 0 <= vr 1: prevote B";
    check(
        &mut n,
        case,
        1,
        Input::Timeout(Timeout {
            height: H,
            round: 1,
            kind: TimeoutKind::Propose,
        }),
        &["prevote r1 nil"],
    );
    for (i, (input, _)) in polka_for_b_then_next_round(1).into_iter().enumerate() {
        let _ = check_any(&mut n, case, i + 2, input);
    }
    check(
        &mut n,
        case,
        10,
        Input::Timeout(Timeout {
            height: H,
            round: 1,
            kind: TimeoutKind::Precommit,
        }),
        &["timeout Propose r2"],
    );
    check(
        &mut n,
        case,
        11,
        w.proposal(p2, H, 2, b(), Some(1)),
        &["validate B"],
    );
    check(
        &mut n,
        case,
        12,
        Input::ValidationResult {
            height: H,
            value: b(),
            valid: true,
        },
        &["prevote r2 B"],
    );

    // L29, lockedRound > vr: a polka for B in round 0 (we missed the proposal), locked on A in
    // round 1, then B proposed in round 2 with POL round 0: prevote nil.
    let mut n = w.node(r.me, None);
    let case = "L29: lockedRound 1 > vr 0: prevote nil";
    check(&mut n, case, 0, w.start(), &["timeout Propose r0"]);
    check(
        &mut n,
        case,
        1,
        Input::Timeout(Timeout {
            height: H,
            round: 0,
            kind: TimeoutKind::Propose,
        }),
        &["prevote r0 nil"],
    );
    for (i, (input, _)) in polka_for_b_then_next_round(0).into_iter().enumerate() {
        let _ = check_any(&mut n, case, i + 2, input);
    }
    check(
        &mut n,
        case,
        10,
        Input::Timeout(Timeout {
            height: H,
            round: 0,
            kind: TimeoutKind::Precommit,
        }),
        &["timeout Propose r1"],
    );
    check(
        &mut n,
        case,
        11,
        w.proposal(p1, H, 1, a(), None),
        &["validate A"],
    );
    check(
        &mut n,
        case,
        12,
        Input::ValidationResult {
            height: H,
            value: a(),
            valid: true,
        },
        &["prevote r1 A"],
    );
    check(&mut n, case, 13, w.prevote(p0, 1, Some(a())), &[]);
    check(
        &mut n,
        case,
        14,
        w.prevote(x, 1, Some(a())),
        &["timeout Prevote r1", "precommit r1 A"],
    );
    assert_eq!(n.locked(), Some((1, a())));
    for i in [p0, x] {
        let _ = n.handle(w.precommit(i, 1, None));
    }
    check(
        &mut n,
        case,
        15,
        Input::Timeout(Timeout {
            height: H,
            round: 1,
            kind: TimeoutKind::Precommit,
        }),
        &["timeout Propose r2"],
    );
    check(
        &mut n,
        case,
        16,
        w.proposal(p2, H, 2, b(), Some(0)),
        &["validate B"],
    );
    check(
        &mut n,
        case,
        17,
        Input::ValidationResult {
            height: H,
            value: b(),
            valid: true,
        },
        &["prevote r2 nil"],
    );
}

/// Feed an input whose outputs the case does not pin down.
fn check_any(
    node: &mut Consensus<Ed25519Signer>,
    _case: &str,
    _step: usize,
    input: Input,
) -> Vec<Output> {
    node.handle(input)
}

#[test]
fn proposer_asks_for_a_value_and_reproposes_its_valid_value() {
    let w = World::new();
    let p0 = w.proposer(0);
    let mut n = w.node(p0, None);
    let case = "proposer";
    check(
        &mut n,
        case,
        0,
        w.start(),
        &["getvalue r0", "timeout Propose r0"],
    );
    // An answer for another round is ignored.
    check(
        &mut n,
        case,
        1,
        Input::ProposeValue {
            height: H,
            round: 1,
            value: b(),
        },
        &[],
    );
    check(
        &mut n,
        case,
        2,
        Input::ProposeValue {
            height: H,
            round: 0,
            value: a(),
        },
        &["proposal r0 A", "prevote r0 A"],
    );
    let others: Vec<usize> = (0..4).filter(|&i| i != p0).collect();
    check(&mut n, case, 3, w.prevote(others[0], 0, Some(a())), &[]);
    check(
        &mut n,
        case,
        4,
        w.prevote(others[1], 0, Some(a())),
        &["timeout Prevote r0", "precommit r0 A"],
    );
    // Round 0 fails; when p0 proposes again (round 4: 4 validators rotate), it re-proposes A
    // with POL round 0 (L15) and relays the POL.
    for r in 0..4 {
        for &i in &others[..2] {
            let _ = n.handle(w.precommit(i, r, None));
        }
        let _ = n.handle(Input::Timeout(Timeout {
            height: H,
            round: r,
            kind: TimeoutKind::Precommit,
        }));
    }
    assert_eq!(n.round(), 4);
    assert_eq!(w.proposer(4), p0);
    let s = n.safety_state().clone();
    let last = s.last_proposal.unwrap().proposal;
    assert_eq!((last.round, last.value, last.pol_round), (4, a(), Some(0)));
}

#[test]
fn persist_precedes_every_new_signature_and_restart_never_double_signs() {
    let w = World::new();
    let r = roles(&w);
    let mut n = w.node(r.me, None);
    let _ = n.handle(w.start());
    let _ = n.handle(w.proposal(r.p0, H, 0, a(), None));
    let outs = n.handle(Input::ValidationResult {
        height: H,
        value: a(),
        valid: true,
    });
    assert!(
        matches!(&outs[0], Output::PersistSafetyState(s) if s.last_signed == Some((H, 0, Step::Prevote)))
    );
    assert!(matches!(&outs[1], Output::Broadcast(Message::Vote(v)) if v.vote.value == Some(a())));
    let _ = n.handle(w.prevote(r.p0, 0, Some(a())));
    let outs = n.handle(w.prevote(r.x, 0, Some(a())));
    let persisted = outs
        .iter()
        .find_map(|o| match o {
            Output::PersistSafetyState(s) => Some((**s).clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(persisted.last_signed, Some((H, 0, Step::Precommit)));
    assert_eq!(persisted.locked, Some((0, a())));

    // Crash; restart from what was persisted. The node resumes round 0 at step precommit,
    // rebroadcasts its votes, and signs nothing new for round 0.
    let mut n = w.node(r.me, Some(persisted.clone()));
    let outs = n.handle(w.start());
    assert_eq!(
        describe(n.public_key(), &outs),
        vec!["timeout Propose r0", "prevote r0 A", "precommit r0 A"]
    );
    assert_eq!(
        (n.round(), n.step(), n.locked()),
        (0, Step::Precommit, Some((0, a())))
    );
    // A conflicting proposal B for round 0 (equivocating proposer) cannot make it prevote again.
    let outs = n.handle(w.proposal(r.p0, H, 0, b(), None));
    assert!(
        describe(n.public_key(), &outs)
            .iter()
            .all(|s| !s.starts_with("prevote") && !s.starts_with("precommit"))
    );
    let outs = n.handle(Input::Timeout(Timeout {
        height: H,
        round: 0,
        kind: TimeoutKind::Prevote,
    }));
    assert!(describe(n.public_key(), &outs).is_empty());
    // 2f+1 nil prevotes (L44) would precommit nil in round 0: already precommitted, refused.
    let _ = n.handle(w.prevote(r.p0, 0, None));
    let outs = n.handle(w.prevote(r.p1, 0, None));
    assert!(
        describe(n.public_key(), &outs)
            .iter()
            .all(|s| !s.starts_with("precommit"))
    );
    // The lock survived: in round 1, B without POL gets a nil prevote.
    for i in [r.p0, r.x] {
        let _ = n.handle(w.precommit(i, 0, None));
    }
    let _ = n.handle(Input::Timeout(Timeout {
        height: H,
        round: 0,
        kind: TimeoutKind::Precommit,
    }));
    let _ = n.handle(w.proposal(r.p1, H, 1, b(), None));
    let outs = n.handle(Input::ValidationResult {
        height: H,
        value: b(),
        valid: true,
    });
    assert_eq!(describe(n.public_key(), &outs), vec!["prevote r1 nil"]);

    // Restarting at an older height than the persisted one signs nothing at all.
    let mut old = w.node(
        r.me,
        Some(SafetyState {
            last_signed: Some((5, 0, Step::Propose)),
            ..persisted
        }),
    );
    let _ = old.handle(w.start());
    let outs = old.handle(Input::Timeout(Timeout {
        height: H,
        round: 0,
        kind: TimeoutKind::Propose,
    }));
    assert!(describe(old.public_key(), &outs).is_empty());
}

/// The first persisted state in `outs`.
fn persisted(outs: &[Output]) -> SafetyState {
    outs.iter()
        .find_map(|o| match o {
            Output::PersistSafetyState(s) => Some((**s).clone()),
            _ => None,
        })
        .expect("a persisted safety state")
}

/// Skip `n` to round `round` on f+1 nil prevotes from `from` (L55).
fn skip_to(
    w: &World,
    n: &mut Consensus<Ed25519Signer>,
    round: Round,
    from: [usize; 2],
) -> Vec<Output> {
    let mut outs = n.handle(w.prevote(from[0], round, None));
    outs.extend(n.handle(w.prevote(from[1], round, None)));
    assert_eq!(n.round(), round);
    outs
}

/// Issue 28 (simulator seed 385): a validator locked in round 0 and crashed before it signed
/// anything else came back locked with no valid value. As proposer it asked for a fresh value
/// and prevoted nil against it; no one else had seen the round-0 prevotes, so nothing could
/// unlock it, and with one more validator silent the alliance stalled for good. The lock's
/// valid value and its proof-of-lock are persisted with the precommit, and a restarted
/// proposer re-proposes the value and relays the proof.
#[test]
fn a_validator_restarted_right_after_locking_reproposes_its_lock_with_the_proof() {
    let w = World::new();
    let r = roles(&w);
    let mut n = w.node(r.me, None);
    let _ = n.handle(w.start());
    let _ = n.handle(w.proposal(r.p0, H, 0, a(), None));
    let _ = n.handle(Input::ValidationResult {
        height: H,
        value: a(),
        valid: true,
    });
    let _ = n.handle(w.prevote(r.p0, 0, Some(a())));
    // x's prevote reached only `me` (in the seed, a Byzantine validator's).
    let outs = n.handle(w.prevote(r.x, 0, Some(a())));
    assert!(describe(n.public_key(), &outs).contains(&"precommit r0 A".to_string()));
    let disk = persisted(&outs);
    assert_eq!(disk.last_signed, Some((H, 0, Step::Precommit)));
    assert_eq!(disk.locked, Some((0, a())));
    assert_eq!(
        disk.valid,
        Some((0, a())),
        "the precommit's snapshot holds the valid value"
    );
    let mut pol: Vec<usize> = disk
        .valid_pol
        .iter()
        .map(|v| {
            assert_eq!(
                (v.vote.kind, v.vote.round, v.vote.value),
                (VoteKind::Prevote, 0, Some(a()))
            );
            w.index(v.vote.validator)
        })
        .collect();
    pol.sort();
    let mut expected = vec![r.me, r.p0, r.x];
    expected.sort();
    assert_eq!(
        pol, expected,
        "the proof-of-lock is the three prevotes for A"
    );

    // Crash before signing anything else; restart from disk.
    let mut n = w.node(r.me, Some(disk));
    let _ = n.handle(w.start());
    assert_eq!((n.locked(), n.valid()), (Some((0, a())), Some((0, a()))));
    let mine = (1..8).find(|&k| w.proposer(k) == r.me).unwrap();
    let outs = skip_to(&w, &mut n, mine, [r.p0, r.p1]);
    let got = describe(n.public_key(), &outs);
    assert!(
        got.contains(&format!("proposal r{mine} A pol0")),
        "re-proposes A with its POL round: {got:?}"
    );
    assert!(!got.iter().any(|s| s.starts_with("getvalue")), "{got:?}");
    for relayed in ["prevote r0 A", "relay prevote r0 A"] {
        assert!(
            got.contains(&relayed.to_string()),
            "relays the proof: {got:?}"
        );
    }
    assert_eq!(
        got.iter().filter(|s| s.ends_with("prevote r0 A")).count(),
        3,
        "all three prevotes of the proof: {got:?}"
    );
}

/// A state written before the valid value was persisted with the lock (lock, no valid value)
/// restarts with the lock standing in as its valid value.
#[test]
fn a_lock_restored_without_its_valid_value_stands_in_for_it() {
    let w = World::new();
    let r = roles(&w);
    let old = SafetyState {
        last_signed: Some((H, 0, Step::Precommit)),
        locked: Some((0, a())),
        valid: None,
        ..SafetyState::default()
    };
    let mut n = w.node(r.me, Some(old));
    let _ = n.handle(w.start());
    assert_eq!(n.valid(), Some((0, a())));
    let mine = (1..8).find(|&k| w.proposer(k) == r.me).unwrap();
    let got = describe(n.public_key(), &skip_to(&w, &mut n, mine, [r.p0, r.p1]));
    assert!(got.contains(&format!("proposal r{mine} A pol0")), "{got:?}");
}

#[test]
fn rebroadcast_sends_own_votes_and_relays_the_round() {
    let w = World::new();
    let r = roles(&w);
    let mut n = w.node(r.me, None);
    let _ = n.handle(w.start());
    let _ = n.handle(Input::Timeout(Timeout {
        height: H,
        round: 0,
        kind: TimeoutKind::Propose,
    }));
    let _ = n.handle(w.prevote(r.p0, 0, None));
    let outs = n.handle(Input::Timeout(Timeout {
        height: H,
        round: 0,
        kind: TimeoutKind::Rebroadcast,
    }));
    let d = describe(n.public_key(), &outs);
    assert_eq!(d, vec!["prevote r0 nil", "relay prevote r0 nil"]);
    assert!(outs.iter().any(|o| matches!(o, Output::ScheduleTimeout { timeout, .. } if timeout.kind == TimeoutKind::Rebroadcast)));
    // No persist: nothing new was signed.
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::PersistSafetyState(_)))
    );
}

#[test]
fn catch_up_with_a_commit_certificate() {
    let w = World::new();
    let r = roles(&w);
    let mut n = w.node(r.me, None);
    let _ = n.handle(w.start());
    // Two thirds or less of the power: ignored.
    let weak = w.cert(0, a(), &[r.p0, r.p1]);
    assert!(matches!(
        weak.verify(&w.set, &w.chain),
        Err(CertificateError::InsufficientPower {
            signed: 2,
            total: 4
        })
    ));
    assert!(n.handle(Input::CommitCertificate(weak)).is_empty());
    // Signed on another chain: ignored.
    let mut other = w.cert(0, a(), &[r.p0, r.p1, r.x]);
    other.signatures[0].signature = w.vote(r.p0, VoteKind::Precommit, H, 0, Some(b())).signature;
    assert!(matches!(
        other.verify(&w.set, &w.chain),
        Err(CertificateError::BadSignature(_))
    ));
    assert!(n.handle(Input::CommitCertificate(other)).is_empty());
    // A good one decides.
    let good = w.cert(3, a(), &[r.p0, r.p1, r.x]);
    let outs = n.handle(Input::CommitCertificate(good.clone()));
    assert_eq!(describe(n.public_key(), &outs), vec!["decide A"]);
    assert!(matches!(&outs[0], Output::Decide { certificate, .. } if *certificate == good));
    // Messages for the next height are buffered and counted once it starts.
    let _ = n.handle(Input::Vote(w.vote(
        r.p0,
        VoteKind::Precommit,
        H + 1,
        2,
        None,
    )));
    let _ = n.handle(Input::Vote(w.vote(
        r.p1,
        VoteKind::Precommit,
        H + 1,
        2,
        None,
    )));
    let outs = n.handle(Input::StartHeight {
        height: H + 1,
        validators: w.set.clone(),
    });
    let d = describe(n.public_key(), &outs);
    assert!(
        d.contains(&"timeout Propose r2".to_string()),
        "skipped to round 2 on buffered messages: {d:?}"
    );
    assert_eq!(n.height(), H + 1);
}

#[test]
fn followers_decide_without_signing() {
    let w = World::new();
    let follower = Ed25519Signer::from_seed([42; 32]);
    let mut n = Consensus::new(Config::default(), w.chain.clone(), follower, None);
    let _ = n.handle(w.start());
    assert!(!n.is_validator());
    let outs = n.handle(Input::Timeout(Timeout {
        height: H,
        round: 0,
        kind: TimeoutKind::Propose,
    }));
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::Broadcast(_) | Output::PersistSafetyState(_)))
    );
    let mut decided = false;
    for i in 0..3 {
        let outs = n.handle(w.precommit(i, 0, Some(a())));
        decided |= outs
            .iter()
            .any(|o| matches!(o, Output::Decide { value, .. } if *value == a()));
    }
    assert!(decided);
}

#[test]
fn evidence_verifies_from_the_two_messages_alone() {
    let w = World::new();
    let r = roles(&w);
    let mut n = w.node(r.me, None);
    let _ = n.handle(w.start());
    let _ = n.handle(w.prevote(r.p0, 0, Some(a())));
    let outs = n.handle(w.prevote(r.p0, 0, None));
    let Some(Output::Evidence(ev)) = outs.into_iter().find(|o| matches!(o, Output::Evidence(_)))
    else {
        panic!("no evidence")
    };
    assert_eq!(ev.verify(&w.chain), Ok(w.signers[r.p0].public_key()));
    assert_eq!(
        ev.verify(&ChainId::new("other")),
        Err(EvidenceError::BadSignature)
    );
    // Survives gossip.
    let back: Evidence = bincode::deserialize(&bincode::serialize(&ev).unwrap()).unwrap();
    assert_eq!(back, ev);
    // Two proposals from the proposer.
    let _ = n.handle(w.proposal(r.p0, H, 0, a(), None));
    let outs = n.handle(w.proposal(r.p0, H, 0, b(), None));
    let ev = outs.iter().find_map(|o| match o {
        Output::Evidence(e) => Some(e.clone()),
        _ => None,
    });
    assert!(matches!(ev, Some(Evidence::ConflictingProposals { .. })));
    assert!(ev.unwrap().verify(&w.chain).is_ok());
    // Not evidence: the same vote twice, or votes from different validators or rounds.
    let v1 = w.vote(r.p0, VoteKind::Prevote, H, 0, Some(a()));
    let same = Evidence::ConflictingVotes {
        first: v1.clone(),
        second: v1.clone(),
    };
    assert_eq!(same.verify(&w.chain), Err(EvidenceError::Identical));
    let other = Evidence::ConflictingVotes {
        first: v1.clone(),
        second: w.vote(r.p1, VoteKind::Prevote, H, 0, None),
    };
    assert_eq!(other.verify(&w.chain), Err(EvidenceError::DifferentSigners));
    let slot = Evidence::ConflictingVotes {
        first: v1,
        second: w.vote(r.p0, VoteKind::Precommit, H, 0, None),
    };
    assert_eq!(slot.verify(&w.chain), Err(EvidenceError::DifferentSlot));
}

#[test]
fn certificate_verification_rejects_forgeries() {
    let w = World::new();
    let good = w.cert(0, a(), &[0, 1, 2]);
    assert_eq!(good.verify(&w.set, &w.chain), Ok(()));
    assert!(good.verify(&w.set, &ChainId::new("other")).is_err());
    // Same signatures claimed for another value or height.
    let mut moved = good.clone();
    moved.value = b();
    assert!(matches!(
        moved.verify(&w.set, &w.chain),
        Err(CertificateError::BadSignature(_))
    ));
    let mut dup = good.clone();
    dup.signatures[2] = dup.signatures[0];
    assert!(matches!(
        dup.verify(&w.set, &w.chain),
        Err(CertificateError::DuplicateSigner(_))
    ));
    let outsider = Ed25519Signer::from_seed([77; 32]);
    let mut foreign = good.clone();
    foreign.signatures.push(CommitSig {
        validator: outsider.public_key(),
        signature: Vote {
            kind: VoteKind::Precommit,
            height: H,
            round: 0,
            value: Some(a()),
            validator: outsider.public_key(),
        }
        .sign(&w.chain, &outsider)
        .signature,
    });
    assert!(matches!(
        foreign.verify(&w.set, &w.chain),
        Err(CertificateError::UnknownValidator(_))
    ));
    // Roundtrips through bincode for gossip and storage.
    let back: CommitCertificate =
        bincode::deserialize(&bincode::serialize(&good).unwrap()).unwrap();
    assert_eq!(back.verify(&w.set, &w.chain), Ok(()));
    // Messages roundtrip too.
    let m = Message::Vote(w.vote(1, VoteKind::Prevote, H, 0, Some(a())));
    let back: Message = bincode::deserialize(&bincode::serialize(&m).unwrap()).unwrap();
    assert!(back.verify_signature(&w.chain));
    assert_eq!(back, m);
}
