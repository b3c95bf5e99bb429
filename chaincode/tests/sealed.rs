//! Sealed extractions against their threat model (see `experts::extraction`): before the
//! reveal nothing the chain exposes names a drawn expert; a home reads only its own notices;
//! the reveal re-derives the committee independently; and a requester who cheats (wrong
//! secret, a dropped seat, reordered backups, a recused expert) or a home that forges its
//! answer is caught and recorded.

mod common;

use std::collections::{BTreeMap, HashMap};

use caihong_chaincode::experts::{
    self, ExpertAction, Extraction, ExtractionStatus, RemoteRequest, Requirement, Verdict,
    committee::slot_experts,
    seal::{self, Seal},
    view::{self, ViewKind},
};
use caihong_chaincode::members::MemberId;
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::{ErrorCode, Hash, TxOutput, TxStatus, VerifiedTx, codec};
use common::{Fx, MEMBERS, SECRET, Succeeded, mid, org};
use proptest::prelude::*;

/// Everything the chain exposed for one extraction, as bytes, from its request on.
#[derive(Default)]
struct Exposed {
    blobs: Vec<(String, Vec<u8>)>,
}

impl Exposed {
    fn add(&mut self, what: impl Into<String>, bytes: Vec<u8>) {
        self.blobs.push((what.into(), bytes));
    }

    /// Runs one signed transaction in its own block and records the transaction and its
    /// receipt (canonical encoding and JSON).
    fn run(&mut self, fx: &mut Fx, what: &str, tx: &VerifiedTx) -> caihong_chaincode::Receipt {
        self.add(format!("{what}: transaction"), codec::encode(tx.signed()));
        self.add(
            format!("{what}: action json"),
            serde_json::to_vec(&tx.tx().action).unwrap(),
        );
        let receipt = fx.run_signed(tx);
        self.add(format!("{what}: receipt"), codec::encode(&receipt));
        self.add(
            format!("{what}: receipt json"),
            serde_json::to_vec(&receipt).unwrap(),
        );
        receipt
    }

    /// Records the extraction as stored (its state bytes and JSON) and its sealed view.
    fn record(&mut self, fx: &Fx, what: &str, id: u64) {
        let ext = fx.ext(id);
        self.add(format!("{what}: record"), codec::encode(&ext));
        self.add(
            format!("{what}: record json"),
            serde_json::to_vec(&ext).unwrap(),
        );
        let sealed = view::view(&fx.sb.state, &ext, None);
        assert_eq!(sealed.view, ViewKind::Sealed);
        assert!(sealed.slots.iter().all(|s| s.expert.is_none()));
        self.add(
            format!("{what}: sealed view json"),
            serde_json::to_vec(&sealed).unwrap(),
        );
    }

    /// The first blob that contains a form of one of `experts`' ids: the raw 32 bytes, the
    /// hex (lower or upper case), SHA-256 of the id bytes, or that hash's hex.
    fn find_any(&self, experts: &[Hash]) -> Option<String> {
        let mut needles: HashMap<Vec<u8>, String> = HashMap::new();
        for e in experts {
            let hashed = Hash::of(&e.0);
            for (form, h) in [("id", e), ("SHA-256(id)", &hashed)] {
                needles.insert(h.0.to_vec(), format!("{form} bytes of expert {e}"));
                needles.insert(h.to_hex().into_bytes(), format!("{form} hex of expert {e}"));
                needles.insert(
                    h.to_hex().to_uppercase().into_bytes(),
                    format!("{form} HEX of expert {e}"),
                );
            }
        }
        for (what, blob) in &self.blobs {
            for len in [32, 64] {
                if let Some(found) = blob.windows(len).find_map(|w| needles.get(w)) {
                    return Some(format!("{found} in {what}"));
                }
            }
        }
        None
    }

    fn find(&self, expert: &Hash) -> Option<String> {
        self.find_any(std::slice::from_ref(expert))
    }
}

const CODES: [&str; 3] = ["A0101", "A0102", "A01"];

/// Requirements from generated `(code, count, backups)`, topped up to an odd committee of at
/// least five.
fn requirements(lines: &[(usize, u32, u32)]) -> Vec<Requirement> {
    let mut reqs: Vec<Requirement> = lines
        .iter()
        .map(|&(code, count, backups)| Requirement {
            specialty: CODES[code].into(),
            count,
            backups,
        })
        .collect();
    let total: u32 = reqs.iter().map(|r| r.count).sum();
    let last = reqs.last_mut().unwrap();
    if total < 5 {
        last.count += 5 - total;
    } else if total % 2 == 0 {
        last.count += 1;
    }
    reqs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(28))]

    /// Over random pools in three or four members, random requirements, secrets, remote
    /// evaluation and answers: no transaction, receipt, stored record or sealed view from the
    /// request to the last answer carries any pool expert's id or its SHA-256 (raw or hex).
    /// Each home's view shows exactly its own slots, as the draw gives them. The reveal is
    /// verified, and the published committee equals an independent re-derivation slot by
    /// slot, with the seats the requester saw before it.
    #[test]
    fn nothing_before_the_reveal_names_an_expert(
        homes in 3usize..=4,
        pools in proptest::collection::vec((1usize..7, 1usize..7), 4),
        lines in proptest::collection::vec((0usize..3, 1u32..4, 0u32..3), 1..4),
        requester in 0usize..3,
        secret in proptest::collection::vec(any::<u8>(), 16..80),
        remote in proptest::option::of((proptest::collection::btree_set(0usize..4, 1..3), 0u32..4)),
        answers in proptest::collection::vec((any::<u8>(), any::<bool>()), 0..8),
    ) {
        let mut fx = Fx::new();
        let mut pool: Vec<Hash> = Vec::new();
        for (m, (a, b)) in MEMBERS.iter().zip(&pools).take(homes) {
            pool.extend(fx.pool(m, *a, CODES[0]));
            pool.extend(fx.pool(m, *b, CODES[1]));
        }
        let requester = MEMBERS[requester];
        let mut r = fx.req("A01", 5, 0);
        r.requirements = requirements(&lines);
        r.commitment = Some(experts::commitment(&secret));
        r.remote = remote.map(|(ms, min_outside)| RemoteRequest {
            members: ms.iter().map(|m| MEMBERS[*m].to_string()).collect(),
            min_outside,
        });
        // From here on, everything is scanned.
        let mut seen = Exposed::default();
        let tx = fx.sign(requester, ExpertAction::RequestExtraction(Box::new(r)));
        let receipt = seen.run(&mut fx, "request", &tx);
        let id = match receipt.status {
            TxStatus::Success(TxOutput::Extraction(id)) => id,
            TxStatus::Failed(e) => {
                prop_assume!(e.code != ErrorCode::InsufficientExperts);
                // Remote lists that leave only the requester are refused as input.
                prop_assert_eq!(e.code, ErrorCode::InvalidInput, "{}", e.message);
                return Ok(());
            }
            s => panic!("{s:?}"),
        };
        seen.record(&fx, "requested", id);
        fx.sb.empty_block();
        seen.record(&fx, "anchored", id);
        let cands = fx.candidates(id);
        let seal = match fx.honest_seal(id, &secret) {
            Ok(seal) => seal,
            Err(_) => {
                // A draw that cannot complete is revealed at once: nothing was sealed.
                if let Some(leak) = seen.find_any(&pool) {
                    prop_assert!(false, "{}", leak);
                }
                let tx = fx.sign(requester, ExpertAction::PublishResult { extraction: id, secret });
                prop_assert!(fx.run_signed(&tx).is_success());
                let ext = fx.ext(id);
                prop_assert!(matches!(ext.status, ExtractionStatus::Failed { .. }), "{:?}", ext.status);
                prop_assert_eq!(experts::check_published(&fx.sb.state, &ext), Ok(Verdict::Verified));
                return Ok(());
            }
        };
        let tx = fx.sign(requester, Fx::seal_action(id, seal));
        let receipt = seen.run(&mut fx, "seal", &tx);
        prop_assert!(receipt.is_success(), "{:?}", receipt);
        seen.record(&fx, "sealed", id);

        // Some answers, each by the slot's home through its own view.
        for (k, (pick, accept)) in answers.iter().enumerate() {
            let ext = fx.ext(id);
            let open: Vec<(usize, usize)> = ext
                .seated()
                .filter(|(_, _, s)| s.response.is_none())
                .map(|(r, j, _)| (r, j))
                .collect();
            if open.is_empty() {
                break;
            }
            let (r, j) = open[*pick as usize % open.len()];
            let home = ext.slots[r][j].notice.recipient.as_str().to_string();
            let v = fx.view_as(&ext, &home);
            let s = v
                .slots
                .iter()
                .find(|s| s.requirement as usize == r + 1 && s.slot as usize == j + 1)
                .unwrap();
            prop_assert!(s.problem.is_none(), "{:?}", s.problem);
            let tx = fx.sign(&home, ExpertAction::Respond {
                extraction: id,
                requirement: r as u32,
                slot: j as u32,
                accept: *accept,
                commitment: seal::response_commitment(&s.commitment, *accept, &s.opening.unwrap()),
            });
            let receipt = seen.run(&mut fx, &format!("answer {k}"), &tx);
            prop_assert!(receipt.is_success(), "{:?}", receipt);
            seen.record(&fx, &format!("answered {k}"), id);
        }
        if let Some(leak) = seen.find_any(&pool) {
            prop_assert!(false, "{}", leak);
        }

        // The views before the reveal: the requester sees the re-derived committee, each
        // other home exactly its own slots.
        let ext = fx.ext(id);
        let expected = slot_experts(&experts::rederive(&ext, &cands, &secret).unwrap());
        let before = fx.requester_view(&ext);
        for s in &before.slots {
            prop_assert_eq!(s.expert, Some(expected[s.requirement as usize - 1][s.slot as usize - 1]));
        }
        for m in MEMBERS.iter().filter(|m| **m != requester) {
            let v = fx.view_as(&ext, m);
            for s in &v.slots {
                let own = s.home.as_str() == *m;
                let want = own.then(|| expected[s.requirement as usize - 1][s.slot as usize - 1]);
                prop_assert_eq!(s.expert, want, "{} slot {}/{}", m, s.requirement, s.slot);
            }
        }

        // The reveal.
        let tx = fx.sign(requester, ExpertAction::PublishResult { extraction: id, secret: secret.clone() });
        prop_assert!(fx.run_signed(&tx).is_success());
        let ext = fx.ext(id);
        let p = ext.published.as_ref().unwrap();
        prop_assert_eq!(&p.verdict, &Verdict::Verified);
        prop_assert_eq!(experts::check_published(&fx.sb.state, &ext), Ok(Verdict::Verified));
        // Re-derived here from the stored lists and the secret, not read from the record.
        let again = slot_experts(&experts::rederive(&ext, &cands, &secret).unwrap());
        prop_assert_eq!(p.sealed_experts.len(), again.len());
        for (r, (row, want)) in p.sealed_experts.iter().zip(&again).enumerate() {
            let req = &ext.requirements[r];
            prop_assert_eq!(row.len() as u32, req.count + req.backups);
            for (j, (got, want)) in row.iter().zip(want).enumerate() {
                prop_assert_eq!(got.as_ref(), Some(want), "requirement {} slot {}", r, j);
            }
        }
        let after = view::view(&fx.sb.state, &ext, None);
        prop_assert_eq!(after.view, ViewKind::Published);
        for (a, b) in after.slots.iter().zip(&before.slots) {
            prop_assert_eq!((a.expert, a.seated, a.answer), (b.expert, b.seated, b.answer));
            prop_assert_eq!(a.seated, ext.slots[a.requirement as usize - 1][a.slot as usize - 1].seated);
        }
    }
}

/// The scan itself finds an id where there is one: a blob holding an expert's hex is
/// reported (so the property above can fail).
#[test]
fn the_scan_finds_ids_in_every_form() {
    let e = experts::expert_id("ID-1");
    for blob in [
        e.0.to_vec(),
        format!("{{\"x\":\"{}\"}}", e.to_hex()).into_bytes(),
        Hash::of(&e.0).0.to_vec(),
        Hash::of(&e.0).to_hex().to_uppercase().into_bytes(),
    ] {
        let mut seen = Exposed::default();
        seen.add("blob", [b"prefix".to_vec(), blob].concat());
        assert!(seen.find(&e).is_some());
    }
    let mut seen = Exposed::default();
    seen.add("blob", experts::expert_id("ID-2").0.to_vec());
    assert!(seen.find(&e).is_none());
}

// ------------------------------------------------------------ cheating

/// An extraction anchored and ready to seal: hohhot requests `count` + `backups` of A01 from
/// `pools` (per member).
fn anchored(fx: &mut Fx, pools: &[(&'static str, usize)], count: u32, backups: u32) -> u64 {
    for (m, n) in pools {
        fx.pool(m, *n, "A01");
    }
    let id = fx.request("hohhot", fx.req("A01", count, backups));
    fx.sb.empty_block();
    id
}

/// The seal a requester's client would build for a hand-made list of experts per
/// requirement (slot order), each notice sealed to the expert's home with [`SECRET`].
fn seal_for(fx: &Fx, ext: &Extraction, experts: &[Vec<Hash>]) -> Seal {
    let keys = fx.keys();
    let requirements = experts
        .iter()
        .enumerate()
        .map(|(r, row)| {
            row.iter()
                .enumerate()
                .map(|(j, e)| {
                    let home = fx.expert(e).home;
                    seal::notice(SECRET, ext.id, r as u32, j as u32, e, &home, &keys[&home])
                })
                .collect()
        })
        .collect();
    let (cr, cj) = seal::REQUESTER_COPY;
    Seal {
        requirements,
        requester_copy: seal::seal_to(SECRET, ext.id, cr, cj, &keys[&ext.requester], SECRET),
    }
}

/// The honest draw's experts per requirement, slot order.
fn drawn_experts(fx: &Fx, ext: &Extraction) -> Vec<Vec<Hash>> {
    slot_experts(&experts::rederive(ext, &fx.candidates(ext.id), SECRET).unwrap())
}

fn problems(ext: &Extraction) -> Vec<String> {
    match &ext.published.as_ref().expect("published").verdict {
        Verdict::Failed { problems } => problems.clone(),
        Verdict::Verified => panic!("verified, but the requester cheated"),
    }
}

/// (i) A reveal with another secret than the one committed to is refused (`INVALID_INPUT`);
/// the failed receipt in the block is the record of the attempt, and the extraction stays
/// unpublished until the committed secret is revealed.
#[test]
fn a_reveal_with_another_secret_is_refused_and_on_record() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 4, "A01");
    fx.pool("baotou", 4, "A01");
    let ext = fx.drawn("hohhot", fx.req("A01", 5, 1));
    let tx = fx.sign(
        "hohhot",
        ExpertAction::PublishResult {
            extraction: ext.id,
            secret: b"a secret the requester likes better".to_vec(),
        },
    );
    let receipt = fx.run_signed(&tx);
    assert_eq!(receipt.tx_hash, tx.hash());
    let TxStatus::Failed(e) = &receipt.status else {
        panic!("{receipt:?}")
    };
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("does not match the commitment"),
        "{}",
        e.message
    );
    let after = fx.ext(ext.id);
    assert!(after.published.is_none());
    assert_eq!(after, ext, "nothing but the receipt is written");
    let ext = fx.publish(&after);
    assert_eq!(ext.published.unwrap().verdict, Verdict::Verified);
}

/// (ii) Dropping a drawn expert. With one slot fewer the seal is refused at once; with the
/// rest shifted up and one more candidate filling the last slot, the shape check cannot tell
/// (the homes read valid notices), but the reveal records `Failed` naming the first shifted
/// slot.
#[test]
fn a_dropped_seat_is_refused_at_the_seal_or_caught_at_the_reveal() {
    let mut fx = Fx::new();
    let id = anchored(&mut fx, &[("hohhot", 5), ("baotou", 5)], 5, 2);
    let ext = fx.ext(id);
    let honest = fx.honest_seal(id, SECRET).unwrap();
    let mut short = honest.clone();
    short.requirements[0].remove(1);
    let e = fx.act_err("hohhot", Fx::seal_action(id, short));
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("6 slots") && e.message.contains("none dropped"),
        "{}",
        e.message
    );

    let drawn = drawn_experts(&fx, &ext);
    let dropped = drawn[0][1];
    let spare = fx.candidates(id)[0]
        .iter()
        .map(|c| c.id)
        .find(|c| !drawn[0].contains(c))
        .unwrap();
    let mut shifted = drawn[0].clone();
    shifted.remove(1);
    shifted.push(spare);
    assert!(
        fx.act(
            "hohhot",
            Fx::seal_action(id, seal_for(&fx, &ext, &[shifted.clone()]))
        )
        .is_success()
    );
    let ext = fx.ext(id);
    // The homes cannot tell: every notice reads fine.
    for m in MEMBERS {
        assert!(
            fx.view_as(&ext, m)
                .slots
                .iter()
                .all(|s| s.problem.is_none())
        );
    }
    let ext = fx.publish(&ext);
    let problems = problems(&ext);
    assert!(
        problems[0].starts_with("requirement 1 slot 2: sealed for expert")
            && problems[0].contains(&format!("the draw gives {dropped}")),
        "{problems:?}"
    );
    // The published record holds what was sealed, so everyone sees the swap.
    let p = ext.published.as_ref().unwrap();
    assert_eq!(
        p.sealed_experts[0],
        shifted.iter().copied().map(Some).collect::<Vec<_>>()
    );
    assert_eq!(
        experts::check_published(&fx.sb.state, &ext),
        Ok(Verdict::Failed { problems })
    );
}

/// (iii) Reordering the backups so that a favoured one is promoted first: the chain promotes
/// in slot order, so the favoured backup is seated after a decline, and the reveal records
/// the mismatch at both backup slots.
#[test]
fn reordered_backups_are_caught_at_the_reveal() {
    let mut fx = Fx::new();
    let id = anchored(&mut fx, &[("hohhot", 5), ("baotou", 5)], 5, 2);
    let ext = fx.ext(id);
    let drawn = drawn_experts(&fx, &ext);
    let mut reordered = drawn[0].clone();
    reordered.swap(5, 6);
    assert!(
        fx.act(
            "hohhot",
            Fx::seal_action(id, seal_for(&fx, &ext, &[reordered]))
        )
        .is_success()
    );
    let ext = fx.ext(id);
    // A primary declines; the chain seats slot 6 (0-based 5), which holds the second drawn
    // backup.
    let decliner = drawn[0][0];
    let s = fx.find_slot(&ext, &decliner);
    let commitment = seal::response_commitment(&s.commitment, false, &s.opening);
    let declined = fx.act(
        &s.home,
        ExpertAction::Respond {
            extraction: id,
            requirement: 0,
            slot: 0,
            accept: false,
            commitment,
        },
    );
    assert!(declined.is_success(), "{declined:?}");
    let ext = fx.ext(id);
    assert!(ext.slots[0][5].seated && !ext.slots[0][6].seated);
    // Its home's notice names the favoured backup (read with the key, not through the view:
    // when the home is the requester its view shows the re-derivation instead).
    let n = &ext.slots[0][5].notice;
    let read = seal::read_notice(&Sandbox::encryption_key(n.recipient.as_str()), n, id, 0, 5);
    assert_eq!(
        read.map(|o| o.expert),
        Some(drawn[0][6]),
        "the favoured backup"
    );
    let ext = fx.publish(&ext);
    let problems = problems(&ext);
    for (slot, got, want) in [(6, drawn[0][6], drawn[0][5]), (7, drawn[0][5], drawn[0][6])] {
        let line =
            format!("requirement 1 slot {slot}: sealed for expert {got}, the draw gives {want}");
        assert!(problems.contains(&line), "{line} not in {problems:?}");
    }
    assert_eq!(
        ext.published.as_ref().unwrap().sealed_experts[0][5],
        Some(drawn[0][6])
    );
}

/// (iv) Seating an expert the draw could not pick (employed by a bidder, so not a candidate)
/// in place of a drawn one of the same home: the shape check cannot tell; the reveal records
/// `Failed` with the recusal.
#[test]
fn a_recused_expert_seated_by_the_requester_is_caught_at_the_reveal() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 5, "A01");
    fx.pool("baotou", 4, "A01");
    let at_bidder = fx.info(&["A01"], 777);
    assert!(fx.register("hohhot", &at_bidder).is_success());
    let mut r = fx.req("A01", 5, 1);
    r.bidder_usccs = vec![org(777)];
    let id = fx.request("hohhot", r);
    fx.sb.empty_block();
    let ext = fx.ext(id);
    let cands = fx.candidates(id);
    assert!(!cands[0].iter().any(|c| c.id == at_bidder.id), "recused");
    let drawn = drawn_experts(&fx, &ext);
    let j = (0..5)
        .find(|j| fx.home(&drawn[0][*j]) == "hohhot")
        .expect("five primaries from nine, four of them baotou's");
    let mut cheat = drawn[0].clone();
    cheat[j] = at_bidder.id;
    assert!(
        fx.act("hohhot", Fx::seal_action(id, seal_for(&fx, &ext, &[cheat])))
            .is_success()
    );
    let ext = fx.publish(&fx.ext(id));
    let problems = problems(&ext);
    let at = format!("requirement 1 slot {}", j + 1);
    assert!(
        problems.iter().any(|p| p.starts_with(&at)
            && p.contains("not a candidate")
            && p.contains("employed by the tenderee or a bidder")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&at) && p.contains("is seated but employed")),
        "{problems:?}"
    );
}

/// A home that answers with a commitment not made from its notice (a forged or careless
/// answer) is taken at once (the chain cannot check it while sealed) and recorded at the
/// reveal.
#[test]
fn a_forged_answer_is_recorded_at_the_reveal() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 4, "A01");
    fx.pool("baotou", 4, "A01");
    let ext = fx.drawn("hohhot", fx.req("A01", 5, 1));
    let e = fx.seated(&ext)[2];
    let s = fx.find_slot(&ext, &e);
    let forged = seal::response_commitment(&s.commitment, true, &Hash::of(b"not the opening"));
    let out = fx.act(
        &s.home,
        ExpertAction::Respond {
            extraction: ext.id,
            requirement: s.requirement,
            slot: s.slot,
            accept: true,
            commitment: forged,
        },
    );
    assert!(out.is_success(), "{out:?}");
    let ext = fx.publish(&fx.ext(ext.id));
    assert_eq!(
        problems(&ext),
        vec![format!(
            "requirement 1 slot {}: the confirmation of {} is not bound to this seat's expert",
            s.slot + 1,
            s.home
        )]
    );
}

/// Notices not made as the protocol says are caught: one made from another secret (its home
/// reads the right expert and cannot tell) fails to decrypt with the revealed secret; one
/// whose public commitment is not its own is flagged by its home at once, and by the reveal;
/// so is a requester's copy that does not hold the committed secret.
#[test]
fn malformed_notices_are_flagged_by_the_home_or_the_reveal() {
    let mut fx = Fx::new();
    let id = anchored(&mut fx, &[("hohhot", 4), ("baotou", 4)], 5, 1);
    let ext = fx.ext(id);
    let drawn = drawn_experts(&fx, &ext);
    let mut seal = fx.honest_seal(id, SECRET).unwrap();
    let row = &mut seal.requirements[0];
    // A slot of another home than the requester's (whose view is the re-derivation).
    let b = (0..6)
        .find(|j| row[*j].recipient.as_str() != "hohhot")
        .unwrap();
    let a = (0..6).find(|j| *j != b).unwrap();
    let (home_a, key_a) = (row[a].recipient.clone(), row[a].recipient_key);
    row[a] = seal::notice(
        b"another secret, 32 bytes long!!!",
        id,
        0,
        a as u32,
        &drawn[0][a],
        &home_a,
        &key_a,
    );
    row[b].commitment = row[a].commitment;
    // And the requester's own copy holds another secret.
    let (cr, cj) = seal::REQUESTER_COPY;
    let other: &[u8] = b"another secret, 32 bytes long!!!";
    seal.requester_copy = seal::seal_to(
        SECRET,
        id,
        cr,
        cj,
        &Sandbox::encryption_public("hohhot"),
        other,
    );
    assert!(fx.act("hohhot", Fx::seal_action(id, seal)).is_success());
    let ext = fx.ext(id);
    let home_b = ext.slots[0][b].notice.recipient.as_str().to_string();
    let v = fx.view_as(&ext, &home_b);
    let slot_b = v.slots.iter().find(|s| s.slot as usize == b + 1).unwrap();
    assert!(
        slot_b.problem.is_some() && slot_b.expert.is_none(),
        "{slot_b:?}"
    );
    if home_a.as_str() != "hohhot" {
        let v = fx.view_as(&ext, home_a.as_str());
        let slot_a = v.slots.iter().find(|s| s.slot as usize == a + 1).unwrap();
        assert_eq!(slot_a.expert, Some(drawn[0][a]), "the home cannot tell");
    }
    let ext = fx.publish(&ext);
    let problems = problems(&ext);
    let line_a = format!(
        "requirement 1 slot {}: the notice to {home_a} does not decrypt with the revealed secret",
        a + 1
    );
    let line_b = format!(
        "requirement 1 slot {}: the public commitment does not open to the expert in the notice",
        b + 1
    );
    assert!(problems.contains(&line_a), "{line_a} not in {problems:?}");
    assert!(problems.contains(&line_b), "{line_b} not in {problems:?}");
    let line_c = "the requester's own sealed copy does not hold the secret".to_string();
    assert!(problems.contains(&line_c), "{line_c} not in {problems:?}");
    assert_eq!(problems.len(), 3, "{problems:?}");
    let p = ext.published.unwrap();
    assert_eq!(p.sealed_experts[0][a], None);
    assert_eq!(p.sealed_experts[0][b], Some(drawn[0][b]));
}

/// What the chain checks at the seal for remote evaluation, without the secret: every notice
/// goes to a participating member, and the primaries' homes keep the outside minimum. A
/// requester sealing insiders into outside seats, or a seat to a non-participant, is refused.
#[test]
fn a_seal_that_breaks_remote_evaluation_is_refused() {
    let mut fx = Fx::new();
    let insiders = fx.pool("hohhot", 6, "A01");
    let outsiders = fx.pool("baotou", 4, "A01");
    let stranger = fx.pool("yinchuan", 1, "A01")[0];
    let mut r = fx.req("A01", 5, 2);
    r.remote = Some(RemoteRequest {
        members: vec!["baotou".into()],
        min_outside: 3,
    });
    let id = fx.request("hohhot", r);
    fx.sb.empty_block();
    let ext = fx.ext(id);
    assert_eq!(ext.eligible, vec![10], "yinchuan does not participate");
    // Five insiders as primaries, outsiders as backups.
    let mut list: Vec<Hash> = insiders[..5].to_vec();
    list.extend(&outsiders[..2]);
    let e = fx.act_err("hohhot", Fx::seal_action(id, seal_for(&fx, &ext, &[list])));
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message
            .contains("needs 3 seats from members other than hohhot; the seal has 0"),
        "{}",
        e.message
    );
    // The honest draw with one slot handed to yinchuan's expert.
    let mut list = drawn_experts(&fx, &ext)[0].clone();
    list[6] = stranger;
    let e = fx.act_err("hohhot", Fx::seal_action(id, seal_for(&fx, &ext, &[list])));
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message
            .contains("requirement 1 slot 7: yinchuan is not a participating member"),
        "{}",
        e.message
    );
    assert!(matches!(
        fx.ext(id).status,
        ExtractionStatus::AwaitingSeal { .. }
    ));
}

// ------------------------------------------------------------ the homes

/// A home reads only its own notices: every other member's key fails `read_notice` (and the
/// requester's sealed copy of the secret), and a member's view shows experts for its own
/// slots only.
#[test]
fn a_home_reads_only_its_own_notices() {
    let mut fx = Fx::new();
    fx.pool("hohhot", 3, "A01");
    fx.pool("baotou", 3, "A01");
    fx.pool("ordos", 3, "A01");
    let ext = fx.drawn("hohhot", fx.req("A01", 5, 2));
    let drawn = drawn_experts(&fx, &ext);
    let mut per_home: BTreeMap<MemberId, usize> = BTreeMap::new();
    for (r, row) in ext.slots.iter().enumerate() {
        for (j, slot) in row.iter().enumerate() {
            let n = &slot.notice;
            let (r32, j32) = (r as u32, j as u32);
            let own = seal::read_notice(
                &Sandbox::encryption_key(n.recipient.as_str()),
                n,
                ext.id,
                r32,
                j32,
            )
            .expect("its home reads it");
            assert_eq!(own.expert, drawn[r][j]);
            assert_eq!(own.blind, seal::seat_blind(SECRET, ext.id, r32, j32));
            *per_home.entry(n.recipient.clone()).or_default() += 1;
            for m in MEMBERS.iter().filter(|m| **m != n.recipient.as_str()) {
                assert!(
                    seal::read_notice(&Sandbox::encryption_key(m), n, ext.id, r32, j32).is_none(),
                    "{m} read slot {j} of {}",
                    n.recipient
                );
            }
        }
    }
    assert!(per_home.len() >= 2, "{per_home:?}");
    for m in ["baotou", "ordos", "yinchuan"] {
        assert!(view::requester_secret(&ext, &Sandbox::encryption_key(m)).is_none());
        let v = fx.view_as(&ext, m);
        let mine = per_home.get(&mid(m)).copied().unwrap_or(0);
        assert_eq!(
            v.slots.iter().filter(|s| s.expert.is_some()).count(),
            mine,
            "{m}"
        );
        assert!(
            v.slots
                .iter()
                .all(|s| (s.home.as_str() == m) == s.expert.is_some())
        );
        assert_eq!(
            v.view,
            if mine > 0 {
                ViewKind::Home
            } else {
                ViewKind::Sealed
            }
        );
    }
    assert_eq!(
        view::requester_secret(&ext, &Sandbox::encryption_key("hohhot")).as_deref(),
        Some(SECRET)
    );
}
