//! `caihong tx extraction …`: the steps of a sealed extraction that read the chain before
//! they sign. Seal runs the draw here, with the secret that never leaves this machine, and
//! encrypts each seat's notice to its home member; respond and disclose take the seat and its
//! opening from the home view the member's own node decrypts. The protocol is in the
//! chaincode's `experts::extraction` docs.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use caihong_chaincode::experts::draw::Candidate;
use caihong_chaincode::experts::{
    ExpertAction, Extraction, SeatOpening, build_seal, commitment, seal,
};
use caihong_chaincode::members::{Member, MemberId};
use caihong_chaincode::types::EncryptionKey;
use caihong_chaincode::{Action, Hash};
use caihong_node::contract::route;
use serde_json::Value;

use crate::client::{failure, run_action};
use crate::node::NodeArgs;
use crate::tx::{Domain, ExtractionCmd, TxCommand, expert_ref, extraction_request};

/// `caihong tx extraction …`: reads what the step needs, then signs and sends its action.
pub fn run(cmd: TxCommand) -> anyhow::Result<ExitCode> {
    let Domain::Extraction(c) = cmd.domain else {
        bail!("not an extraction command");
    };
    let action = action(&cmd.args.node, c)?;
    run_action(&cmd.args, action)
}

/// The action to sign for an extraction command.
fn action(node: &NodeArgs, c: ExtractionCmd) -> anyhow::Result<Action> {
    let action = match c {
        ExtractionCmd::Request {
            file,
            window_start,
            window_end,
            secret,
            secret_file,
        } => extraction_request(&file, window_start, window_end, secret, secret_file)?,
        ExtractionCmd::Seal { extraction, secret } => {
            let secret = secret.read()?;
            seal_action(node, extraction, &secret)?
        }
        ExtractionCmd::Respond {
            extraction,
            expert,
            national_id,
            decline,
        } => {
            let expert = expert_ref(expert, national_id)?;
            respond_action(node, extraction, &expert, !decline)?
        }
        ExtractionCmd::Publish { extraction, secret } => {
            let secret = secret.read()?;
            let ext = extraction_record(node, extraction)?;
            check_secret(&ext, &secret)?;
            ExpertAction::PublishResult { extraction, secret }
        }
        ExtractionCmd::Disclose { extraction } => disclose_action(node, extraction)?,
    };
    Ok(Action::Expert(action))
}

fn client(node: &NodeArgs) -> anyhow::Result<caihong_cli::api_client::Client> {
    caihong_cli::api_client::Client::connect(&node.url()?).map_err(failure)
}

fn extraction_path(id: u64) -> String {
    route::path(route::EXTRACTION, &[&id.to_string()])
}

/// The record as the node serves it (the seats replaced by their readable view).
fn extraction_record(node: &NodeArgs, id: u64) -> anyhow::Result<Extraction> {
    let mut v: Value = client(node)?.get(&extraction_path(id)).map_err(failure)?;
    v["slots"] = Value::Array(Vec::new());
    Ok(serde_json::from_value(v)?)
}

fn check_secret(ext: &Extraction, secret: &[u8]) -> anyhow::Result<()> {
    if commitment(secret) != ext.commitment {
        bail!(
            "this secret is not the one extraction {} committed to (its SHA-256 differs from \
             the commitment {}): give the file the request's --secret-file wrote",
            ext.id,
            ext.commitment
        );
    }
    Ok(())
}

/// Waits for the anchor (a seal before it is refused), then draws and seals. A draw that
/// cannot be completed is revealed instead: there is no committee to keep secret.
fn seal_action(node: &NodeArgs, id: u64, secret: &[u8]) -> anyhow::Result<ExpertAction> {
    let client = client(node)?;
    let deadline = Instant::now() + Duration::from_secs(node.timeout);
    let mut said = false;
    let ext = loop {
        let ext = extraction_record(node, id)?;
        if ext.anchor.is_some() {
            break ext;
        }
        if Instant::now() > deadline {
            bail!(
                "extraction {id} has no anchor block after {} s (a seal would be refused); check \
                 `caihong status` and retry",
                node.timeout
            );
        }
        if !said {
            eprintln!("waiting for the anchor block of extraction {id}…");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    check_secret(&ext, secret)?;
    let (action, failure) = draw_and_seal(&client, &ext, secret)?;
    match (&action, failure) {
        (ExpertAction::SealExtraction { seal, .. }, _) => eprintln!(
            "drawn: {} slots sealed to their homes; the committee stays secret until \
             `extraction publish`",
            seal.requirements.iter().map(Vec::len).sum::<usize>()
        ),
        (_, reason) => eprintln!(
            "the draw cannot be completed ({}); revealing the secret instead, so every member \
             can check the failure",
            reason.unwrap_or_default()
        ),
    }
    Ok(action)
}

/// The seal of an anchored extraction: its candidates and the members' encryption keys read
/// from `client`'s node, the draw run here with `secret`. A draw that cannot be completed
/// gives the reveal instead (a failed draw has nothing to keep secret), with the reason.
pub fn draw_and_seal(
    client: &caihong_cli::api_client::Client,
    ext: &Extraction,
    secret: &[u8],
) -> anyhow::Result<(ExpertAction, Option<String>)> {
    let id = ext.id.to_string();
    let cands: Vec<Vec<Candidate>> = client
        .get(&route::path(route::EXTRACTION_CANDIDATES, &[&id]))
        .map_err(failure)?;
    let members: Vec<Member> = client.get(route::MEMBERS).map_err(failure)?;
    let keys: BTreeMap<MemberId, EncryptionKey> = members
        .into_iter()
        .filter_map(|m| m.encryption_key.map(|k| (m.id, k)))
        .collect();
    Ok(match build_seal(ext, &cands, secret, &keys) {
        Ok(seal) => (
            ExpertAction::SealExtraction {
                extraction: ext.id,
                seal: Box::new(seal),
            },
            None,
        ),
        Err(reason) => (
            ExpertAction::PublishResult {
                extraction: ext.id,
                secret: secret.to_vec(),
            },
            Some(reason),
        ),
    })
}

/// This node's view of the extraction: its seats (with their openings) where it is a home.
fn own_seats(node: &NodeArgs, id: u64) -> anyhow::Result<(Value, Vec<Value>)> {
    let v: Value = client(node)?.get(&extraction_path(id)).map_err(failure)?;
    let viewer = v["viewer"].clone();
    let seats = v["seats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| !viewer.is_null() && s["home"] == viewer && !s["opening"].is_null())
        .cloned()
        .collect();
    Ok((v, seats))
}

fn hash_at(v: &Value, field: &str) -> anyhow::Result<Hash> {
    Hash::from_hex(v[field].as_str().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("the node's answer has no {field}: {e}"))
}

fn position(seat: &Value) -> (u32, u32) {
    let n = |f: &str| seat[f].as_u64().unwrap_or(1).saturating_sub(1) as u32;
    (n("requirement"), n("slot"))
}

fn respond_action(
    node: &NodeArgs,
    id: u64,
    expert: &Hash,
    accept: bool,
) -> anyhow::Result<ExpertAction> {
    let (v, seats) = own_seats(node, id)?;
    let want = expert.to_hex();
    let Some(seat) = seats
        .iter()
        .find(|s| s["expert"].as_str() == Some(want.as_str()))
    else {
        bail!(
            "expert {expert} has no seat of this node's member in extraction {id} ({}): answer \
             from the node of the expert's home member",
            v["view_note"].as_str().unwrap_or("sealed view")
        );
    };
    let (requirement, slot) = position(seat);
    let seat_commitment = hash_at(seat, "commitment")?;
    let opening = hash_at(seat, "opening")?;
    Ok(ExpertAction::Respond {
        extraction: id,
        requirement,
        slot,
        accept,
        commitment: seal::response_commitment(&seat_commitment, accept, &opening),
    })
}

fn disclose_action(node: &NodeArgs, id: u64) -> anyhow::Result<ExpertAction> {
    let (v, seats) = own_seats(node, id)?;
    if seats.is_empty() {
        bail!(
            "this node's member has no slots it can open in extraction {id} ({})",
            v["view_note"].as_str().unwrap_or("sealed view")
        );
    }
    let openings = seats
        .iter()
        .map(|s| {
            let (requirement, slot) = position(s);
            Ok(SeatOpening {
                requirement,
                slot,
                expert: hash_at(s, "expert")?,
                blind: hash_at(s, "opening")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ExpertAction::DiscloseSeats {
        extraction: id,
        openings,
    })
}
