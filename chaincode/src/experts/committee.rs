//! An extraction's committee after the request: anchor, seal, answers, backup promotion, the
//! reveal with its verification, and disclosure by the homes after a missed reveal. The
//! protocol and its threat model are in [`super::extraction`]; the cryptography in
//! [`super::seal`].

use std::collections::BTreeMap;

use super::draw::{self, Candidate, Picks};
use super::expert;
use super::extraction::{
    Disclosure, Extraction, ExtractionStatus, MAX_CANDIDATES, MAX_SECRET_LEN, MIN_SECRET_LEN,
    Publication, Recusal, SeatResponse, SeatSlot, TOO_MANY_CANDIDATES, Verdict, candidates_at,
    commitment, describe, draw_seed, extraction, recusal,
};
use super::seal::{self, NOTICE_LEN, REQUESTER_COPY, Seal};
use crate::codec;
use crate::ctx::{BlockContext, Ctx, TxOutput, params, read};
use crate::error::{ErrorCode, TxError, ensure, fail};
use crate::keys;
use crate::members::{Member, MemberId, Role};
use crate::state::{Overlay, StateReader};
use crate::types::Hash;

const DAY_MS: u64 = 86_400_000;
/// Start of the failure reason of an extraction not sealed by its deadline (abandoned).
pub const NOT_SEALED: &str = "not sealed by height";

/// The candidate lists computed at an extraction's anchor, per requirement, sorted by id.
pub fn candidates(state: &dyn StateReader, id: u64) -> Option<Vec<Vec<Candidate>>> {
    read(state, &keys::extraction_candidates(id))
}

/// Re-runs the draw with `secret` over the anchor's candidate lists.
pub fn rederive(
    ext: &Extraction,
    cands: &[Vec<Candidate>],
    secret: &[u8],
) -> Result<Vec<Picks>, String> {
    let anchor = ext
        .anchor
        .ok_or_else(|| format!("extraction {} is not anchored yet", ext.id))?;
    if cands.len() != ext.requirements.len() {
        return Err(format!(
            "extraction {} has {} candidate lists for {} requirements",
            ext.id,
            cands.len(),
            ext.requirements.len()
        ));
    }
    draw::draw(
        &draw_seed(&anchor.hash, ext.id, secret),
        &ext.requester,
        ext.min_outside(),
        &ext.draw_slots(),
        cands,
    )
    .map_err(|f| describe(ext, &f))
}

/// The drawn experts per requirement in slot order (primaries then backups).
pub fn slot_experts(picks: &[Picks]) -> Vec<Vec<Hash>> {
    picks
        .iter()
        .map(|p| p.primaries.iter().chain(&p.backups).copied().collect())
        .collect()
}

/// Builds the seal of a draw (what the requester's client submits), or the draw's failure.
/// `keys` are the members' current encryption keys.
pub fn build_seal(
    ext: &Extraction,
    cands: &[Vec<Candidate>],
    secret: &[u8],
    keys: &BTreeMap<MemberId, crate::types::EncryptionKey>,
) -> Result<Seal, String> {
    let picks = rederive(ext, cands, secret)?;
    let home = |r: usize, e: &Hash| -> MemberId {
        cands[r]
            .iter()
            .find(|c| &c.id == e)
            .expect("picked from the candidates")
            .home
            .clone()
    };
    let mut requirements = Vec::with_capacity(picks.len());
    for (r, experts) in slot_experts(&picks).iter().enumerate() {
        let mut notices = Vec::with_capacity(experts.len());
        for (j, e) in experts.iter().enumerate() {
            let m = home(r, e);
            let key = keys
                .get(&m)
                .ok_or_else(|| format!("member {m} has no encryption key"))?;
            notices.push(seal::notice(secret, ext.id, r as u32, j as u32, e, &m, key));
        }
        requirements.push(notices);
    }
    let own = keys
        .get(&ext.requester)
        .ok_or_else(|| format!("member {} has no encryption key", ext.requester))?;
    let (cr, cj) = REQUESTER_COPY;
    Ok(Seal {
        requirements,
        requester_copy: seal::seal_to(secret, ext.id, cr, cj, own, secret),
    })
}

/// begin_block: anchor the extractions included in earlier blocks (in practice the previous
/// one) and fix their candidate lists on the state as of now.
pub(crate) fn anchor_pending(overlay: &mut Overlay<&dyn StateReader>, block: &BlockContext) {
    let pending = crate::ctx::scan::<()>(&*overlay, keys::EXTRACTION_ANCHOR_PREFIX);
    let seal_blocks = params(&*overlay).extraction_seal_blocks;
    for (key, ()) in pending {
        let at = keys::EXTRACTION_ANCHOR_PREFIX.len();
        let height = u64::from_be_bytes(key[at..at + 8].try_into().expect("8-byte height"));
        if height >= block.height {
            break;
        }
        let id = keys::trailing_u64(&key);
        overlay.delete(key);
        let Some(mut ext) = extraction(&*overlay, id) else {
            continue;
        };
        ext.anchor = Some(super::extraction::Anchor {
            height: block.height - 1,
            hash: block.parent_hash,
            recorded_height: block.height,
        });
        let cands = candidates_at(&*overlay, &ext);
        ext.eligible = cands.iter().map(|c| c.len() as u32).collect();
        let listed: usize = cands.iter().map(Vec::len).sum();
        if listed > MAX_CANDIDATES {
            ext.status = ExtractionStatus::Failed {
                reason: format!(
                    "{TOO_MANY_CANDIDATES}: {listed} eligible at the anchor, more than \
                     {MAX_CANDIDATES}"
                ),
            };
        } else {
            let deadline = block.height + seal_blocks;
            ext.status = ExtractionStatus::AwaitingSeal { deadline };
            overlay.put(keys::extraction_candidates(id), codec::encode(&cands));
            overlay.put(keys::extraction_seal(deadline, id), codec::encode(&()));
        }
        overlay.put(keys::extraction(id), codec::encode(&ext));
    }
}

/// Takes the entries of a `prefix ‖ u64_be(when) ‖ …/u64_be(id)` index whose `when` is below
/// `now` out of the index, oldest first, as `(when, extraction id)`.
fn take_due(overlay: &mut Overlay<&dyn StateReader>, prefix: &[u8], now: u64) -> Vec<(u64, u64)> {
    let mut due = Vec::new();
    for (key, ()) in crate::ctx::scan::<()>(&*overlay, prefix) {
        let at = prefix.len();
        let when = u64::from_be_bytes(key[at..at + 8].try_into().expect("8-byte index value"));
        if when >= now {
            break;
        }
        due.push((when, keys::trailing_u64(&key)));
        overlay.delete(key);
    }
    due
}

/// begin_block: extractions not sealed by their deadline fail as abandoned; reveals not made
/// by their due time are marked missed.
pub(crate) fn close_windows(overlay: &mut Overlay<&dyn StateReader>, block: &BlockContext) {
    for (deadline, id) in take_due(overlay, keys::EXTRACTION_SEAL_PREFIX, block.height) {
        if let Some(mut ext) = extraction(&*overlay, id)
            && matches!(ext.status, ExtractionStatus::AwaitingSeal { .. })
        {
            ext.status = ExtractionStatus::Failed {
                reason: format!(
                    "{NOT_SEALED} {deadline}: the requester abandoned the draw after its \
                     anchor"
                ),
            };
            overlay.put(keys::extraction(ext.id), codec::encode(&ext));
        }
    }
    for (_, id) in take_due(overlay, keys::EXTRACTION_REVEAL_DUE_PREFIX, block.time_ms) {
        if let Some(mut ext) = extraction(&*overlay, id)
            && ext.published.is_none()
        {
            ext.reveal_missed = Some(block.height);
            overlay.put(keys::extraction(ext.id), codec::encode(&ext));
        }
    }
}

fn load(ctx: &Ctx<'_>, id: u64) -> Result<Extraction, TxError> {
    extraction(ctx.reader(), id)
        .ok_or_else(|| TxError::new(ErrorCode::NotFound, format!("no extraction {id}")))
}

fn requester_only(ctx: &Ctx<'_>, ext: &Extraction) -> Result<(), TxError> {
    let member = ctx.require_role(Role::Expert)?;
    ensure(member == ext.requester, ErrorCode::Unauthorized, || {
        format!(
            "only the requesting member {} acts on extraction {} (you are {member})",
            ext.requester, ext.id
        )
    })
}

/// The requester's seal: checked for shape, recorded as the public slots.
pub(crate) fn seal(ctx: &mut Ctx<'_>, id: u64, seal: &Seal) -> Result<TxOutput, TxError> {
    let mut ext = load(ctx, id)?;
    requester_only(ctx, &ext)?;
    let ExtractionStatus::AwaitingSeal { deadline } = ext.status else {
        return fail(
            ErrorCode::Conflict,
            match &ext.status {
                ExtractionStatus::AwaitingAnchor => format!(
                    "extraction {id} is not anchored yet; its anchor is recorded in the block \
                     after the request"
                ),
                other => format!("extraction {id} is {other:?}: it cannot be sealed now"),
            },
        );
    };
    ensure(ctx.block.height <= deadline, ErrorCode::Conflict, || {
        format!("the seal deadline of extraction {id} was height {deadline}")
    })?;
    let cands = candidates(ctx.reader(), id).expect("stored at the anchor");
    check_seal_shape(ctx.reader(), &ext, &cands, seal)?;
    ext.slots = seal
        .requirements
        .iter()
        .zip(&ext.requirements)
        .map(|(notices, req)| {
            notices
                .iter()
                .enumerate()
                .map(|(j, n)| SeatSlot {
                    backup: j as u32 >= req.count,
                    notice: n.clone(),
                    seated: (j as u32) < req.count,
                    promoted_height: None,
                    response: None,
                })
                .collect()
        })
        .collect();
    ext.requester_copy = Some(seal.requester_copy.clone());
    ext.sealed_height = Some(ctx.block.height);
    let due = ext
        .window
        .end
        .saturating_add(ctx.params().extraction_reveal_days.saturating_mul(DAY_MS));
    ext.reveal_due_ms = Some(due);
    ext.status = ExtractionStatus::Sealed;
    ctx.delete(keys::extraction_seal(deadline, id));
    ctx.put(keys::extraction_reveal_due(due, id), &());
    ctx.put(keys::extraction(id), &ext);
    Ok(TxOutput::Extraction(id))
}

/// What the chain can check of a seal without the secret.
fn check_seal_shape(
    state: &dyn StateReader,
    ext: &Extraction,
    cands: &[Vec<Candidate>],
    seal: &Seal,
) -> Result<(), TxError> {
    let bad = |m: String| TxError::new(ErrorCode::InvalidInput, m);
    if seal.requirements.len() != ext.requirements.len() {
        return Err(bad(format!(
            "the seal has {} requirements, the request {}",
            seal.requirements.len(),
            ext.requirements.len()
        )));
    }
    let mut outside = 0u32;
    let mut ephemerals = std::collections::BTreeSet::new();
    for (r, (notices, req)) in seal.requirements.iter().zip(&ext.requirements).enumerate() {
        let want = (req.count + req.backups) as usize;
        if notices.len() != want {
            return Err(bad(format!(
                "requirement {} ({}): the seal has {} slots, the draw has {want} ({} seats + {} \
                 backups): every drawn slot is sealed, none dropped",
                r + 1,
                req.specialty,
                notices.len(),
                req.count,
                req.backups
            )));
        }
        let mut per_home: BTreeMap<&MemberId, usize> = BTreeMap::new();
        for (j, n) in notices.iter().enumerate() {
            let at = format!("requirement {} slot {}", r + 1, j + 1);
            let m: Option<Member> = read(state, &keys::member(n.recipient.as_str()));
            ensure(
                m.and_then(|m| m.encryption_key) == Some(n.recipient_key),
                ErrorCode::InvalidInput,
                || {
                    format!(
                        "{at}: sealed to {} with a key that is not its registered encryption key",
                        n.recipient
                    )
                },
            )?;
            ensure(
                ext.may_draw_from(&n.recipient),
                ErrorCode::InvalidInput,
                || format!("{at}: {} is not a participating member", n.recipient),
            )?;
            ensure(
                n.sealed.ciphertext.len() == NOTICE_LEN && ephemerals.insert(n.sealed.ephemeral),
                ErrorCode::InvalidInput,
                || format!("{at}: not a seat notice ({NOTICE_LEN} bytes, fresh ephemeral key)"),
            )?;
            *per_home.entry(&n.recipient).or_default() += 1;
            if (j as u32) < req.count && n.recipient != ext.requester {
                outside += 1;
            }
        }
        for (home, n) in per_home {
            let eligible = cands[r].iter().filter(|c| &c.home == home).count();
            ensure(n <= eligible, ErrorCode::InvalidInput, || {
                format!(
                    "requirement {}: {n} slots sealed to {home}, which has {eligible} eligible \
                     experts",
                    r + 1
                )
            })?;
        }
    }
    ensure(
        outside >= ext.min_outside(),
        ErrorCode::InvalidInput,
        || {
            format!(
                "remote evaluation needs {} seats from members other than {}; the seal has {outside}",
                ext.min_outside(),
                ext.requester
            )
        },
    )
}

/// A home's answer for slot `(r, j)` (0-based).
/// Slot `j` of requirement `r` (0-based) of `ext`, when `member` is its home: only the home
/// answers for a slot or discloses it.
fn home_slot<'e>(
    ext: &'e Extraction,
    r: usize,
    j: usize,
    member: &MemberId,
) -> Result<&'e SeatSlot, TxError> {
    let slot = ext.slots.get(r).and_then(|s| s.get(j)).ok_or_else(|| {
        TxError::new(
            ErrorCode::NotFound,
            format!(
                "extraction {} has no slot {} of requirement {}",
                ext.id,
                j + 1,
                r + 1
            ),
        )
    })?;
    ensure(
        &slot.notice.recipient == member,
        ErrorCode::NotHomeMember,
        || {
            format!(
                "slot {} of requirement {} belongs to {}; only that home answers for it or \
                 discloses it",
                j + 1,
                r + 1,
                slot.notice.recipient
            )
        },
    )?;
    Ok(slot)
}

pub(crate) fn respond(
    ctx: &mut Ctx<'_>,
    id: u64,
    r: u32,
    j: u32,
    accept: bool,
    commitment: &Hash,
) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Expert)?;
    let mut ext = load(ctx, id)?;
    ensure(
        matches!(
            ext.status,
            ExtractionStatus::Sealed | ExtractionStatus::Confirmed | ExtractionStatus::Short { .. }
        ) && ext.published.is_none(),
        ErrorCode::Conflict,
        || {
            format!(
                "extraction {id} is {:?}: no seats to answer for",
                ext.status
            )
        },
    )?;
    ensure(
        ctx.block.time_ms < ext.window.end,
        ErrorCode::Conflict,
        || format!("the evaluation window of extraction {id} has ended"),
    )?;
    let slot = home_slot(&ext, r as usize, j as usize, &member)?;
    if !slot.seated {
        let why = match &slot.response {
            Some(resp) if !resp.accept => "has already been declined",
            _ => "is a backup not promoted: a backup answers once promoted",
        };
        return fail(
            ErrorCode::Conflict,
            format!("slot {} of requirement {} {why}", j + 1, r + 1),
        );
    }
    ensure(
        !slot.response.as_ref().is_some_and(|x| x.accept),
        ErrorCode::Conflict,
        || {
            format!(
                "slot {} of requirement {} has already confirmed",
                j + 1,
                r + 1
            )
        },
    )?;
    let slot = &mut ext.slots[r as usize][j as usize];
    slot.response = Some(SeatResponse {
        accept,
        commitment: *commitment,
        height: ctx.block.height,
    });
    if !accept {
        slot.seated = false;
        promote(&mut ext, r as usize, ctx.block.height);
    }
    settle(&mut ext);
    ctx.put(keys::extraction(id), &ext);
    Ok(TxOutput::Extraction(id))
}

/// Seats the first backup slot of requirement `r` never answered whose home keeps the outside
/// minimum; public data only, so nobody chooses.
fn promote(ext: &mut Extraction, r: usize, height: u64) {
    let requester = ext.requester.clone();
    let outside_now = ext
        .seated()
        .filter(|(_, _, s)| s.notice.recipient != requester)
        .count() as u64;
    let min_outside = u64::from(ext.min_outside());
    let next = ext.slots[r].iter_mut().find(|s| {
        s.backup
            && !s.seated
            && s.promoted_height.is_none()
            && s.response.is_none()
            && outside_now + u64::from(s.notice.recipient != requester) >= min_outside
    });
    if let Some(s) = next {
        s.seated = true;
        s.promoted_height = Some(height);
    }
}

fn settle(ext: &mut Extraction) {
    let short: Vec<String> = ext
        .requirements
        .iter()
        .zip(&ext.slots)
        .filter(|(req, slots)| (slots.iter().filter(|s| s.seated).count() as u32) < req.count)
        .map(|(req, slots)| {
            format!(
                "specialty {}: {} of {} seats filled, no backup left that keeps the rules",
                req.specialty,
                slots.iter().filter(|s| s.seated).count(),
                req.count
            )
        })
        .collect();
    ext.status = if !short.is_empty() {
        ExtractionStatus::Short {
            reason: short.join("; "),
        }
    } else if ext
        .seated()
        .all(|(_, _, s)| s.response.as_ref().is_some_and(|x| x.accept))
    {
        ExtractionStatus::Confirmed
    } else {
        ExtractionStatus::Sealed
    };
}

/// `PublishResult`: the award is made (中标结果确定) and the secret revealed; the chain
/// re-derives and verifies everything, and publishes the committee.
pub(crate) fn publish(ctx: &mut Ctx<'_>, id: u64, secret: &[u8]) -> Result<TxOutput, TxError> {
    let mut ext = load(ctx, id)?;
    requester_only(ctx, &ext)?;
    ensure(ext.published.is_none(), ErrorCode::Conflict, || {
        format!("extraction {id} is already published")
    })?;
    ensure(
        (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()),
        ErrorCode::InvalidInput,
        || format!("a secret is {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes"),
    )?;
    ensure(
        commitment(secret) == ext.commitment,
        ErrorCode::InvalidInput,
        || {
            format!(
                "SHA-256 of this secret does not match the commitment of extraction {id}: it is \
                 not the secret the request committed to (refused; the attempt stays in this \
                 block's receipt)"
            )
        },
    )?;
    let unsealed = match &ext.status {
        ExtractionStatus::AwaitingAnchor => {
            return fail(
                ErrorCode::Conflict,
                format!("extraction {id} is not anchored yet"),
            );
        }
        ExtractionStatus::Failed { .. } if ext.sealed_height.is_none() => {
            // Abandoned after the anchor (never sealed): revealing shows every member the
            // draw the requester walked away from. Failed at the anchor: nothing was drawn.
            let Some(cands) = candidates(ctx.reader(), id) else {
                return fail(
                    ErrorCode::Conflict,
                    format!("extraction {id} failed before a draw: {:?}", ext.status),
                );
            };
            let anchor = ext.anchor.expect("candidates are stored at the anchor");
            ext.published = Some(Publication {
                height: ctx.block.height,
                time_ms: ctx.block.time_ms,
                secret: secret.to_vec(),
                seed: draw_seed(&anchor.hash, id, secret),
                picks: rederive(&ext, &cands, secret).unwrap_or_default(),
                sealed_experts: Vec::new(),
                verdict: Verdict::Verified,
            });
            ctx.put(keys::extraction(id), &ext);
            return Ok(TxOutput::Extraction(id));
        }
        ExtractionStatus::AwaitingSeal { .. } => true,
        _ => false,
    };
    let cands = candidates(ctx.reader(), id).expect("stored at the anchor");
    let anchor = ext.anchor.expect("anchored");
    let seed = draw_seed(&anchor.hash, id, secret);
    let outcome = rederive(&ext, &cands, secret);
    if unsealed {
        // Only a draw that cannot be completed is revealed before a seal: nothing to hide.
        let Err(reason) = outcome else {
            return fail(
                ErrorCode::Conflict,
                format!(
                    "the draw of extraction {id} succeeds: seal it (extraction seal) and reveal \
                     after the award"
                ),
            );
        };
        if let ExtractionStatus::AwaitingSeal { deadline } = ext.status {
            ctx.delete(keys::extraction_seal(deadline, id));
        }
        ext.status = ExtractionStatus::Failed { reason };
        ext.published = Some(Publication {
            height: ctx.block.height,
            time_ms: ctx.block.time_ms,
            secret: secret.to_vec(),
            seed,
            picks: Vec::new(),
            sealed_experts: Vec::new(),
            verdict: Verdict::Verified,
        });
        ctx.put(keys::extraction(id), &ext);
        return Ok(TxOutput::Extraction(id));
    }
    let publication = verify_reveal(ctx.reader(), &ext, &cands, secret, seed, outcome);
    if let Some(due) = ext.reveal_due_ms {
        ctx.delete(keys::extraction_reveal_due(due, id));
    }
    let mut p = publication;
    p.height = ctx.block.height;
    p.time_ms = ctx.block.time_ms;
    // The seated experts are public now: later draws see their windows (busy, cooldown).
    for (r, j, _) in ext.seated().collect::<Vec<_>>() {
        if let Some(Some(e)) = p.sealed_experts.get(r).and_then(|v| v.get(j)) {
            ctx.put(keys::expert_assignment(e, id), &ext.window);
            ctx.put(keys::expert_service(e, &ext.tenderee, id), &ext.window);
        }
    }
    ext.published = Some(p);
    ctx.put(keys::extraction(id), &ext);
    Ok(TxOutput::Extraction(id))
}

/// Checks a sealed extraction against the re-derived draw: every notice (recipient, key,
/// decryption, commitment), every response commitment, the requester's copy, and recusal of
/// every seated expert on the current state. Height and time are left for the caller.
pub fn verify_reveal(
    state: &dyn StateReader,
    ext: &Extraction,
    cands: &[Vec<Candidate>],
    secret: &[u8],
    seed: Hash,
    outcome: Result<Vec<Picks>, String>,
) -> Publication {
    let mut problems = Vec::new();
    let id = ext.id;
    let picks = match outcome {
        Ok(p) => p,
        Err(reason) => {
            problems.push(format!(
                "the re-derived draw fails ({reason}) but the requester sealed a committee"
            ));
            Vec::new()
        }
    };
    let expected = slot_experts(&picks);
    let mut sealed_experts = Vec::with_capacity(ext.slots.len());
    for (r, slots) in ext.slots.iter().enumerate() {
        let mut row = Vec::with_capacity(slots.len());
        for (j, slot) in slots.iter().enumerate() {
            let at = format!("requirement {} slot {}", r + 1, j + 1);
            let n = &slot.notice;
            let blind = seal::seat_blind(secret, id, r as u32, j as u32);
            let opened =
                seal::open_with_secret(secret, &n.sealed, &n.recipient_key, id, r as u32, j as u32)
                    .and_then(|p| seal::parse_notice(&p));
            let sealed_for = match opened {
                Some(o) if o.blind == blind => Some(o.expert),
                _ => {
                    problems.push(format!(
                        "{at}: the notice to {} does not decrypt with the revealed secret",
                        n.recipient
                    ));
                    None
                }
            };
            row.push(sealed_for);
            if let Some(e) = sealed_for
                && seal::seat_commitment(id, r as u32, j as u32, &e, &blind) != n.commitment
            {
                problems.push(format!(
                    "{at}: the public commitment does not open to the expert in the notice"
                ));
            }
            let want = expected.get(r).and_then(|v| v.get(j));
            if let (Some(want), Some(got)) = (want, sealed_for)
                && want != &got
            {
                problems.push(format!(
                    "{at}: sealed for expert {got}{}, the draw gives {want}",
                    recusal_note(state, ext, &got, &cands[r])
                ));
            }
            if let Some(want) = want {
                let home = cands[r].iter().find(|c| &c.id == want).map(|c| &c.home);
                if home != Some(&n.recipient) {
                    problems.push(format!(
                        "{at}: sealed to {}, the draw's expert belongs to {}",
                        n.recipient,
                        home.map_or("nobody".to_string(), |h| h.to_string())
                    ));
                }
            }
            if let (Some(resp), Some(e)) = (&slot.response, sealed_for) {
                let seat = seal::seat_commitment(id, r as u32, j as u32, &e, &blind);
                if seal::response_commitment(&seat, resp.accept, &blind) != resp.commitment {
                    problems.push(format!(
                        "{at}: the {} of {} is not bound to this seat's expert",
                        if resp.accept {
                            "confirmation"
                        } else {
                            "decline"
                        },
                        n.recipient
                    ));
                }
            }
            if slot.seated
                && let Some(e) = sealed_for
                && let Some(ex) = expert(state, &e)
                && let Some(why) = recusal(state, ext, &ex)
                // Status was checked at the anchor; a later suspension is the home's to act on
                // (it declines). Employment by the tenderee or a bidder must never sit.
                && why == Recusal::Employer
            {
                problems.push(format!(
                    "{at}: expert {e} is seated but {}",
                    recusal_text(&why)
                ));
            }
        }
        sealed_experts.push(row);
    }
    let (cr, cj) = REQUESTER_COPY;
    if let Some(copy) = &ext.requester_copy {
        let member: Option<Member> = read(state, &keys::member(ext.requester.as_str()));
        let key = member.and_then(|m| m.encryption_key);
        let opens = key
            .and_then(|k| seal::open_with_secret(secret, copy, &k, id, cr, cj))
            .is_some_and(|p| p == secret);
        if !opens {
            problems.push("the requester's own sealed copy does not hold the secret".into());
        }
    }
    Publication {
        height: 0,
        time_ms: 0,
        secret: secret.to_vec(),
        seed,
        picks,
        sealed_experts,
        verdict: if problems.is_empty() {
            Verdict::Verified
        } else {
            Verdict::Failed { problems }
        },
    }
}

fn recusal_text(why: &Recusal) -> String {
    match why {
        Recusal::Inactive(s) => format!("not active ({})", s.as_str()),
        Recusal::Employer => "employed by the tenderee or a bidder (回避)".into(),
        Recusal::NotParticipating => "outside the participating members".into(),
        Recusal::Busy { extraction } => format!("assigned to overlapping extraction {extraction}"),
        Recusal::Cooldown { extraction } => {
            format!("served this tenderee recently (extraction {extraction})")
        }
    }
}

fn recusal_note(
    state: &dyn StateReader,
    ext: &Extraction,
    e: &Hash,
    cands: &[Candidate],
) -> String {
    if cands.iter().any(|c| &c.id == e) {
        return String::new();
    }
    match expert(state, e).and_then(|x| recusal(state, ext, &x)) {
        Some(why) => format!(" (not a candidate: {})", recusal_text(&why)),
        None => " (not a candidate at the anchor)".into(),
    }
}

/// One slot opened by its home after a missed reveal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeatOpening {
    pub requirement: u32,
    pub slot: u32,
    pub expert: Hash,
    pub blind: Hash,
}

/// `DiscloseSeats`: after a missed reveal, a home opens its slots' commitments.
pub(crate) fn disclose(
    ctx: &mut Ctx<'_>,
    id: u64,
    openings: &[SeatOpening],
) -> Result<TxOutput, TxError> {
    let member = ctx.require_role(Role::Expert)?;
    let mut ext = load(ctx, id)?;
    ensure(
        ext.reveal_missed.is_some() && ext.published.is_none(),
        ErrorCode::Conflict,
        || {
            format!(
                "extraction {id}'s seats are disclosed by their homes only after a missed reveal"
            )
        },
    )?;
    ensure(!openings.is_empty(), ErrorCode::InvalidInput, || {
        "nothing to disclose".into()
    })?;
    let cands = candidates(ctx.reader(), id).expect("stored at the anchor");
    for o in openings {
        let (r, j) = (o.requirement as usize, o.slot as usize);
        let slot = home_slot(&ext, r, j, &member)?;
        ensure(
            seal::seat_commitment(id, o.requirement, o.slot, &o.expert, &o.blind)
                == slot.notice.commitment,
            ErrorCode::InvalidInput,
            || {
                format!(
                    "the opening of slot {} of requirement {} does not match its commitment",
                    j + 1,
                    r + 1
                )
            },
        )?;
        ensure(
            !ext.disclosures
                .iter()
                .any(|d| d.requirement == o.requirement && d.slot == o.slot),
            ErrorCode::Conflict,
            || {
                format!(
                    "slot {} of requirement {} is already disclosed",
                    j + 1,
                    r + 1
                )
            },
        )?;
        ext.disclosures.push(Disclosure {
            requirement: o.requirement,
            slot: o.slot,
            expert: o.expert,
            height: ctx.block.height,
            eligible: cands[r].iter().any(|c| c.id == o.expert),
        });
        // A seat disclosed is public now: later draws see its window (busy, cooldown), as
        // after a reveal.
        if slot_served(&ext, r, j) {
            ctx.put(keys::expert_assignment(&o.expert, id), &ext.window);
            ctx.put(
                keys::expert_service(&o.expert, &ext.tenderee, id),
                &ext.window,
            );
        }
    }
    ctx.put(keys::extraction(id), &ext);
    Ok(TxOutput::Extraction(id))
}

fn slot_served(ext: &Extraction, r: usize, j: usize) -> bool {
    ext.slots
        .get(r)
        .and_then(|row| row.get(j))
        .is_some_and(|s| s.seated || s.response.is_some())
}

/// Re-checks a published extraction from its record and candidates (what any member or
/// outsider can do): the stored verdict must be what verification gives again.
pub fn check_published(state: &dyn StateReader, ext: &Extraction) -> Result<Verdict, String> {
    let p = ext
        .published
        .as_ref()
        .ok_or_else(|| format!("extraction {} is sealed: not revealed yet", ext.id))?;
    let cands = candidates(state, ext.id)
        .ok_or_else(|| format!("extraction {} has no candidate lists", ext.id))?;
    if commitment(&p.secret) != ext.commitment {
        return Err("the published secret does not match the commitment".into());
    }
    let anchor = ext.anchor.ok_or("not anchored")?;
    if draw_seed(&anchor.hash, ext.id, &p.secret) != p.seed {
        return Err("the published seed does not follow from anchor, id and secret".into());
    }
    let outcome = rederive(ext, &cands, &p.secret);
    if ext.sealed_height.is_none() && !p.picks.is_empty() {
        // An abandoned draw revealed: the picks must be what the secret gives.
        return match outcome {
            Ok(picks) if picks == p.picks => Ok(Verdict::Verified),
            _ => Err("the revealed picks of the abandoned draw do not re-derive".into()),
        };
    }
    if ext.sealed_height.is_none() {
        return match (outcome, &ext.status) {
            (Err(reason), ExtractionStatus::Failed { reason: stored }) if &reason == stored => {
                Ok(Verdict::Verified)
            }
            // Abandoned, and revealed later: the draw could not have been sealed anyway.
            (Err(_), ExtractionStatus::Failed { reason: stored })
                if stored.starts_with(NOT_SEALED) && p.picks.is_empty() =>
            {
                Ok(Verdict::Verified)
            }
            (Err(reason), _) => Err(format!("re-derived failure differs: {reason}")),
            (Ok(_), _) => Err("the draw re-derives but was recorded as failed".into()),
        };
    }
    // Recusal is re-checked on today's state, which may have moved on since the reveal: the
    // committee must re-derive, the verdict is the one recorded at the reveal.
    let again = verify_reveal(state, ext, &cands, &p.secret, p.seed, outcome);
    if again.picks != p.picks || again.sealed_experts != p.sealed_experts {
        return Err("the published committee differs from the re-derivation".into());
    }
    Ok(p.verdict.clone())
}
