//! The HTTP API (axum), JSON in and out, loopback by default.
//!
//! State changes come only as signed transactions (`POST /v1/tx`); every
//! other route reads committed state. Bad requests get a 4xx with
//! `{"error": "..."}` naming the problem. Routes are listed in docs/API.md.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caihong_chaincode::ca::{self, Scope};
use caihong_chaincode::members::{MemberId, members};
use caihong_chaincode::{
    Hash, PublicKey, SignedTransaction, TxOutput, TxStatus, Uscc, credit, exec, experts,
    governance, keys, subjects,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ApiConfig;
use crate::contract::{
    BackupManifest, BackupRequest, BatchAnswer, BatchEntry, BlockAnswer, CertificateSummary,
    ErrorBody, EventsAnswer, NonceAnswer, ProofAnswer, SubmitTx, SubmitTxs, TxAnswer, TxFailure,
    TxState, ValidatorSetFrom, route,
};
use crate::events::{self, Cursor, KindFilter};
use crate::light;
use crate::mempool::AdmitError;
use crate::shared::Shared;

/// A JSON error with its status code and, for chain rejections, the code.
#[derive(Debug)]
pub struct ApiError(StatusCode, String, Option<&'static str>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.1,
            code: self.2.map(str::to_string),
        };
        (self.0, Json(body)).into_response()
    }
}

fn bad(message: impl ToString) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.to_string(), None)
}

fn not_found(message: impl ToString) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, message.to_string(), None)
}

fn internal(message: impl ToString) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, message.to_string(), None)
}

/// A proof this member cannot give: `410 STATE_PRUNED` for a height below the state versions
/// it keeps (`storage.keep_state_versions`), `400` for a height it does not have.
fn proof_failed(e: crate::storage::StorageError) -> ApiError {
    match e {
        crate::storage::StorageError::StateVersionPruned { .. } => ApiError(
            StatusCode::GONE,
            format!(
                "{e}: this member keeps only recent state versions (storage.keep_state_versions); \
                 a member that keeps every version (keep_state_versions = 0) proves older heights"
            ),
            Some("STATE_PRUNED"),
        ),
        e => bad(e),
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// `Query` whose rejection is a JSON error like every other.
#[derive(Debug)]
struct Params<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e| bad(format!("query string: {}", e.body_text())))
    }
}

fn to_json(v: impl serde::Serialize) -> Json<Value> {
    Json(serde_json::to_value(v).expect("serializable"))
}

/// Binds and serves the API in the background, behind the access gate of the member's home;
/// returns the bound address.
pub async fn serve(
    shared: Shared,
    config: &ApiConfig,
    home: &std::path::Path,
) -> anyhow::Result<SocketAddr> {
    let access = crate::access::Access::new(home, config.loopback_full_access, config.limits)?
        .with_metrics(&config.metrics)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(
            &home.join(cert),
            &home.join(key),
        )?),
        (None, None) => None,
        _ => anyhow::bail!("[api] needs both tls_cert and tls_key, or neither"),
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("API listen address {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = router(shared)
        .layer(axum::middleware::from_fn_with_state(
            access,
            crate::access::guard,
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            config.max_body_bytes,
            refuse_oversized,
        ));
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(config) => {
            use axum::serve::ListenerExt;
            // tap_io: the TLS listener's peer address reaches the handlers as ConnectInfo.
            let listener = crate::tls::TlsListener::spawn(listener, config)?.tap_io(|_| {});
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("API server stopped: {e}");
                }
            });
        }
        None => {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("API server stopped: {e}");
                }
            });
        }
    }
    Ok(addr)
}

/// Most bytes of an oversized request body read (and thrown away) before the 413.
const MAX_DRAINED_BODY: u64 = 64 << 20;

/// Answers a request whose declared body is over the limit with 413, after reading that body
/// (up to [`MAX_DRAINED_BODY`]). Most HTTP/1 clients send the whole body before they read the
/// answer, and a connection closed with their body unread reaches them as a broken pipe or a
/// reset, not as the 413 that says what was wrong.
async fn refuse_oversized(
    State(max): State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => {
            if len <= MAX_DRAINED_BODY {
                use futures::StreamExt;
                let mut body = request.into_body().into_data_stream();
                while let Some(Ok(_)) = body.next().await {}
            }
            ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body: {len} bytes, more than the {max} this node takes"),
                None,
            )
            .into_response()
        }
        _ => next.run(request).await,
    }
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route(route::HEALTHZ, get(|| async { "ok" }))
        .route(route::METRICS, get(metrics))
        .route(route::ADMIN_BACKUP, post(backup))
        .route(route::STATUS, get(status))
        .route(route::TX, post(submit))
        .route(route::TXS, post(submit_batch))
        .route(route::TX_BY_HASH, get(tx_status))
        .route(route::LATEST_BLOCK, get(latest_block))
        .route(route::BLOCK, get(block))
        .route(route::STATE_PROOF, get(state_proof))
        .route(route::VALIDATORS, get(validator_history))
        .route(route::LIGHT_BLOCKS, get(light_blocks))
        .route(route::NONCE, get(nonce))
        .route(route::MEMBERS, get(member_list))
        .route(route::EVIDENCE, get(evidence))
        .route(route::PROPOSALS, get(proposals))
        .route(route::PROPOSAL, get(proposal))
        .route(route::SUBJECT, get(subject))
        .route(route::SUBJECT_HISTORY, get(subject_history))
        .route(route::CREDIT_RECORD, get(credit_record))
        .route(route::CREDIT_BY_SUBJECT, get(credit_for))
        .route(route::CREDIT_RESTRICTION, get(restriction))
        .route(route::CREDIT_SCORE, get(score))
        .route(route::CREDIT_SINCE, get(credit_since))
        .route(route::CA_ISSUERS, get(issuers))
        .route(route::CA_VERIFY, post(verify_certificate))
        .route(route::EXPERTS, get(experts_by_specialty))
        .route(route::EXPERT, get(expert))
        .route(route::EXTRACTION, get(extraction))
        .route(route::EXTRACTION_CANDIDATES, get(extraction_candidates))
        .route(route::EVENTS, get(events))
        .fallback(|| async { not_found("no such route; the routes are listed in docs/API.md") })
        .with_state(shared.clone())
        .merge(crate::console::router(shared))
}

fn parse_uscc(s: &str) -> Result<Uscc, ApiError> {
    Uscc::parse(s).map_err(|e| bad(format!("USCC {s:?}: {e}")))
}

fn parse_number(s: &str, what: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| bad(format!("{what} {s:?} is not a number")))
}

fn parse_hash(s: &str, what: &str) -> Result<Hash, ApiError> {
    Hash::from_hex(s).map_err(|e| bad(format!("{what} {s:?}: {e}")))
}

async fn status(State(s): State<Shared>) -> Json<crate::contract::Status> {
    Json(s.status.read().expect("status").clone())
}

async fn metrics(State(s): State<Shared>) -> String {
    let st = s.status.read().expect("status").clone();
    let lag = st.highest_peer_height.saturating_sub(st.height);
    format!(
        "# HELP caihong_height Latest committed height.\n# TYPE caihong_height gauge\ncaihong_height {}\n\
         # HELP caihong_rounds_last_height Consensus rounds the last height took.\n# TYPE caihong_rounds_last_height gauge\ncaihong_rounds_last_height {}\n\
         # HELP caihong_block_interval_ms Time between the last two commits.\n# TYPE caihong_block_interval_ms gauge\ncaihong_block_interval_ms {}\n\
         # HELP caihong_committed_txs_total Transactions committed since start.\n# TYPE caihong_committed_txs_total counter\ncaihong_committed_txs_total {}\n\
         # HELP caihong_mempool_size Transactions waiting.\n# TYPE caihong_mempool_size gauge\ncaihong_mempool_size {}\n\
         # HELP caihong_peers Connected member peers.\n# TYPE caihong_peers gauge\ncaihong_peers {}\n\
         # HELP caihong_sync_lag Heights behind the highest peer.\n# TYPE caihong_sync_lag gauge\ncaihong_sync_lag {}\n\
         # HELP caihong_consensus_gossip_rejected_total Consensus messages refused as forged, foreign or undecodable.\n# TYPE caihong_consensus_gossip_rejected_total counter\ncaihong_consensus_gossip_rejected_total {}\n",
        st.height,
        st.rounds_last_height,
        st.last_block_interval_ms,
        st.committed_txs,
        st.mempool_size,
        st.peers.len(),
        lag,
        st.rejected_consensus_gossip
    )
}

/// Why a transaction was not admitted, as the API answers it: 503 when the mempool (or the
/// signer's share of it) is full, 422 with the chaincode's code when the chain would reject
/// it, 409 for a nonce taken or out of reach.
fn admit_error(e: AdmitError) -> ApiError {
    match e {
        e @ (AdmitError::Full(_) | AdmitError::SignerFull { .. }) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
            Some("MEMPOOL_FULL"),
        ),
        AdmitError::Rejected(e) => ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.message,
            Some(e.code.as_str()),
        ),
        e => ApiError(StatusCode::CONFLICT, e.to_string(), Some("BAD_NONCE")),
    }
}

/// A JSON body axum could not take, keeping its status: 400 bad JSON, 415 not JSON, 413 too
/// large.
fn body_error(e: JsonRejection) -> ApiError {
    ApiError(e.status(), format!("request body: {}", e.body_text()), None)
}

/// Most transactions in one `POST /v1/txs`.
const MAX_BATCH: usize = 10_000;

/// `POST /v1/txs`: many transactions in one request (bulk import, busy gateways). Each is
/// admitted or refused on its own; the answer lists, in order, its hash and `pending`, or the
/// error the single-transaction route would have given.
async fn submit_batch(
    State(s): State<Shared>,
    body: Result<Json<SubmitTxs>, JsonRejection>,
) -> Result<Json<BatchAnswer>, ApiError> {
    let Json(req) = body.map_err(body_error)?;
    if req.txs.is_empty() || req.txs.len() > MAX_BATCH {
        return Err(bad(format!(
            "txs has {} entries; send 1 to {MAX_BATCH}",
            req.txs.len()
        )));
    }
    // Each entry's hash, or why it does not decode; the decoded are admitted together.
    let mut good = Vec::with_capacity(req.txs.len());
    let decoded: Vec<Result<Hash, String>> = req
        .txs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let bytes = hex::decode(t.trim()).map_err(|e| format!("txs[{i}] is not hex: {e}"))?;
            let tx = SignedTransaction::decode(&bytes)
                .map_err(|e| format!("txs[{i}] does not decode: {e}"))?;
            let hash = tx.hash();
            good.push(tx);
            Ok(hash)
        })
        .collect();
    let mut admitted = s.admit_batch(good).await.into_iter();
    let entry = |hash: Option<&Hash>, status, error, code: Option<&str>| BatchEntry {
        hash: hash.map(Hash::to_hex),
        status,
        error,
        code: code.map(str::to_string),
    };
    let results: Vec<BatchEntry> = decoded
        .into_iter()
        .map(|d| match d {
            Err(message) => entry(None, None, Some(message), Some("INVALID_INPUT")),
            Ok(hash) => match admitted.next().expect("one result per decoded tx") {
                Ok(_) | Err(AdmitError::Duplicate(_)) => {
                    entry(Some(&hash), Some(TxState::Pending), None, None)
                }
                Err(e) => {
                    let ApiError(_, message, code) = admit_error(e);
                    entry(Some(&hash), None, Some(message), code)
                }
            },
        })
        .collect();
    let accepted = results
        .iter()
        .filter(|r| r.status == Some(TxState::Pending))
        .count();
    Ok(Json(BatchAnswer { accepted, results }))
}

/// `POST /v1/admin/backup` (loopback only, see `access`): a checkpoint of the store at one
/// height, written by this node to a path on its machine.
async fn backup(
    State(s): State<Shared>,
    body: Result<Json<BackupRequest>, JsonRejection>,
) -> Result<Json<BackupManifest>, ApiError> {
    let Json(req) = body.map_err(body_error)?;
    let out = std::path::PathBuf::from(&req.out);
    if !out.is_absolute() {
        return Err(bad(format!(
            "out {:?} is not an absolute path: the node writes it, from its own working directory",
            req.out
        )));
    }
    let member = s.status.read().expect("status").member.clone();
    let store = s.store.clone();
    let chain_id = s.chain_id.clone();
    let made =
        tokio::task::spawn_blocking(move || crate::backup::make(&store, &chain_id, &member, &out))
            .await
            .map_err(internal)?;
    made.map(Json).map_err(|e| bad(format!("{e:#}")))
}

async fn submit(
    State(s): State<Shared>,
    body: Result<Json<SubmitTx>, JsonRejection>,
) -> Result<(StatusCode, Json<TxAnswer>), ApiError> {
    let Json(req) = body.map_err(body_error)?;
    let bytes = hex::decode(req.tx.trim()).map_err(|e| bad(format!("tx is not hex: {e}")))?;
    let tx =
        SignedTransaction::decode(&bytes).map_err(|e| bad(format!("tx does not decode: {e}")))?;
    let hash = tx.hash();
    let mut commits = s.commits.subscribe();
    match s.admit(tx).await {
        Ok(_) | Err(AdmitError::Duplicate(_)) => {}
        Err(e) => return Err(admit_error(e)),
    }
    if !req.wait {
        return Ok((StatusCode::ACCEPTED, Json(TxAnswer::pending(hash.to_hex()))));
    }
    // Already committed (a resubmission)?
    if let Ok(Some(r)) = s.store.receipt(&hash) {
        return Ok((
            StatusCode::OK,
            Json(receipt_answer(
                &hash,
                r.location.height,
                r.location.index,
                &r.receipt,
            )),
        ));
    }
    let timeout = Duration::from_millis(req.timeout_ms.unwrap_or(30_000).min(120_000));
    let waited = tokio::time::timeout(timeout, async {
        loop {
            match commits.recv().await {
                Ok(c) if c.tx_hash == hash => return Some(c),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if let Ok(Some(r)) = s.store.receipt(&hash) {
                        return Some(crate::shared::Committed {
                            height: r.location.height,
                            tx_hash: hash,
                            receipt: r.receipt,
                        });
                    }
                }
                Err(_) => return None,
            }
        }
    })
    .await;
    match waited {
        Ok(Some(c)) => {
            let index = s
                .store
                .tx_location(&hash)
                .ok()
                .flatten()
                .map(|l| l.index)
                .unwrap_or(0);
            Ok((
                StatusCode::OK,
                Json(receipt_answer(&hash, c.height, index, &c.receipt)),
            ))
        }
        _ => Ok((
            StatusCode::ACCEPTED,
            Json(TxAnswer {
                note: Some("not committed within the wait timeout".into()),
                ..TxAnswer::pending(hash.to_hex())
            }),
        )),
    }
}

fn receipt_answer(
    hash: &Hash,
    height: u64,
    index: u32,
    receipt: &caihong_chaincode::Receipt,
) -> TxAnswer {
    let (status, output, error) = match &receipt.status {
        TxStatus::Success(out) => (TxState::Committed, Some(out.clone()), None),
        TxStatus::Failed(e) => (
            TxState::Failed,
            None,
            Some(TxFailure {
                code: e.code.as_str().to_string(),
                message: e.message.clone(),
            }),
        ),
    };
    TxAnswer {
        status,
        height: Some(height),
        index: Some(index),
        output,
        error,
        ..TxAnswer::pending(hash.to_hex())
    }
}

async fn tx_status(
    State(s): State<Shared>,
    Path(hash): Path<String>,
) -> Result<Json<TxAnswer>, ApiError> {
    let hash = parse_hash(&hash, "transaction hash")?;
    if let Some(r) = s.store.receipt(&hash).map_err(internal)? {
        let tx = s.store.tx(&hash).map_err(internal)?;
        return Ok(Json(TxAnswer {
            tx: tx.map(|t| t.tx),
            ..receipt_answer(&hash, r.location.height, r.location.index, &r.receipt)
        }));
    }
    if s.mempool.lock().expect("mempool").contains(&hash) {
        return Ok(Json(TxAnswer::pending(hash.to_hex())));
    }
    Err(not_found(format!(
        "transaction {hash} is neither committed nor pending"
    )))
}

fn block_answer(s: &Shared, height: u64) -> Result<Json<BlockAnswer>, ApiError> {
    let block = s
        .store
        .block(height)
        .map_err(internal)?
        .ok_or_else(|| not_found(format!("no block at height {height}")))?;
    let cert = s.store.commit_certificate(height).map_err(internal)?;
    let h = &block.header;
    Ok(Json(BlockAnswer {
        height: h.height,
        hash: block.hash().to_hex(),
        chain_id: h.chain_id.clone(),
        time_ms: h.time_ms,
        parent_hash: h.parent_hash.to_hex(),
        proposer: h.proposer.to_hex(),
        txs_root: h.txs_root.to_hex(),
        receipts_root: h.receipts_root.to_hex(),
        state_root: h.state_root.to_hex(),
        next_validators_hash: h.next_validators_hash.to_hex(),
        txs: block.txs.iter().map(|t| t.hash().to_hex()).collect(),
        header_bincode_hex: hex::encode(caihong_chaincode::codec::encode(h)),
        certificate_bincode_hex: cert
            .as_ref()
            .map(|c| hex::encode(caihong_chaincode::codec::encode(c))),
        certificate: cert.map(|c| CertificateSummary {
            height: c.height,
            round: c.round,
            value: hex::encode(c.value.0),
            signers: c
                .signatures
                .iter()
                .map(|s| hex::encode(s.validator.0))
                .collect(),
        }),
    }))
}

async fn block(
    State(s): State<Shared>,
    Path(height): Path<String>,
) -> Result<Json<BlockAnswer>, ApiError> {
    let height: u64 = parse_number(&height, "height")?;
    block_answer(&s, height)
}

async fn latest_block(State(s): State<Shared>) -> Result<Json<BlockAnswer>, ApiError> {
    let height = s.store.latest_height().map_err(internal)?.unwrap_or(0);
    block_answer(&s, height)
}

#[derive(Debug, Deserialize)]
struct ProofQuery {
    key: String,
    height: Option<u64>,
}

async fn state_proof(
    State(s): State<Shared>,
    Params(q): Params<ProofQuery>,
) -> Result<Json<ProofAnswer>, ApiError> {
    let key = hex::decode(&q.key).map_err(|e| bad(format!("key is not hex: {e}")))?;
    let height = match q.height {
        Some(h) => h,
        None => s.store.latest_height().map_err(internal)?.unwrap_or(0),
    };
    let proof = s.store.prove(&key, height).map_err(proof_failed)?;
    let root = s.store.state_root(height).map_err(proof_failed)?;
    Ok(Json(ProofAnswer {
        height,
        state_root: root.to_hex(),
        key: q.key,
        proof_bincode_hex: hex::encode(caihong_chaincode::codec::encode(&proof)),
    }))
}

async fn validator_history(
    State(s): State<Shared>,
) -> Result<Json<Vec<ValidatorSetFrom>>, ApiError> {
    let history = s.store.validator_history().map_err(internal)?;
    Ok(Json(
        history
            .into_iter()
            .map(|(from_height, keys)| ValidatorSetFrom {
                from_height,
                node_keys: keys.iter().map(|k| k.to_hex()).collect(),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
struct LightQuery {
    from: u64,
    count: Option<u64>,
    #[serde(default)]
    bodies: bool,
}

/// Blocks with their certificates (and, with `bodies`, transactions, receipts and credit
/// proofs) for light clients, as bincode: see [`crate::light`].
async fn light_blocks(
    State(s): State<Shared>,
    Params(q): Params<LightQuery>,
) -> Result<Response, ApiError> {
    let latest = s.store.latest_height().map_err(internal)?.unwrap_or(0);
    if q.from == 0 || q.from > latest {
        return Err(not_found(format!(
            "from={} is not a committed height after genesis (latest is {latest})",
            q.from
        )));
    }
    let count = q.count.unwrap_or(100).clamp(1, light::MAX_LIGHT_BLOCKS);
    let last = latest.min(q.from + count - 1);
    let s2 = s.clone();
    let bytes = tokio::task::spawn_blocking(move || light_answer(&s2, q.from, last, q.bodies))
        .await
        .map_err(internal)??;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response())
}

/// `410 BEFORE_SNAPSHOT` when block `height` is below the first block this member holds (it
/// started from a state snapshot there).
fn holds_block(s: &Shared, height: u64, what: &str) -> Result<(), ApiError> {
    let first = s.store.first_block().map_err(internal)?;
    // The snapshot's own block is stored without its receipts: whole blocks start after it.
    let first_whole = if first > 1 { first + 1 } else { first };
    if height < first_whole {
        return Err(ApiError(
            StatusCode::GONE,
            format!(
                "this member started from a state snapshot at height {first} and holds whole \
                 blocks from {first_whole} on: ask a member that has every block for {what} \
                 from height {height}"
            ),
            Some("BEFORE_SNAPSHOT"),
        ));
    }
    Ok(())
}

fn light_answer(s: &Shared, from: u64, last: u64, bodies: bool) -> Result<Vec<u8>, ApiError> {
    holds_block(s, from, "light blocks")?;
    let blocks = light::serve(&s.store, from, last, |block| {
        bodies.then(|| light_body(s, block)).transpose()
    })?;
    Ok(light::encode_light(&blocks))
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        internal(e)
    }
}

fn light_body(s: &Shared, block: &crate::block::Block) -> Result<light::LightBody, ApiError> {
    let height = block.header.height;
    let mut receipts = Vec::with_capacity(block.txs.len());
    let mut credit_proofs = Vec::new();
    let mut subject_proofs = Vec::new();
    for (index, tx) in block.txs.iter().enumerate() {
        let hash = tx.hash();
        let stored = s
            .store
            .receipt(&hash)
            .map_err(internal)?
            .filter(|r| r.location.height == height && r.location.index as usize == index)
            .ok_or_else(|| {
                internal(format!(
                    "the receipt of transaction {index} at height {height} is not stored (a replayed transaction)"
                ))
            })?;
        if let (
            caihong_chaincode::Action::Credit(_),
            TxStatus::Success(TxOutput::CreditRecord(id)),
        ) = (&tx.tx.action, &stored.receipt.status)
        {
            credit_proofs.push(
                s.store
                    .prove(&keys::credit(*id), height)
                    .map_err(proof_failed)?,
            );
        }
        if let (
            caihong_chaincode::Action::Subject(_),
            TxStatus::Success(TxOutput::SubjectVersion { uscc, version }),
        ) = (&tx.tx.action, &stored.receipt.status)
        {
            subject_proofs.push(subject_version_proof(s, uscc, *version, height)?);
        }
        receipts.push(stored.receipt);
    }
    Ok(light::LightBody {
        txs: block.txs.clone(),
        receipts,
        credit_proofs,
        subject_proofs,
    })
}

/// The proof of a subject version as of `height`: the current-version key when it still holds
/// that version, else the key the version moved to when a later transaction superseded it.
fn subject_version_proof(
    s: &Shared,
    uscc: &str,
    version: u32,
    height: u64,
) -> Result<crate::storage::StateProof, ApiError> {
    let uscc = caihong_chaincode::Uscc::parse(uscc).map_err(internal)?;
    let current = s
        .store
        .prove(&keys::subject(&uscc), height)
        .map_err(proof_failed)?;
    let holds_version = current
        .value
        .as_deref()
        .and_then(|v| {
            caihong_chaincode::codec::decode::<caihong_chaincode::subjects::Subject>(v).ok()
        })
        .is_some_and(|subject| subject.version == version);
    if holds_version {
        return Ok(current);
    }
    s.store
        .prove(&keys::subject_version(&uscc, version), height)
        .map_err(proof_failed)
}

async fn nonce(
    State(s): State<Shared>,
    Path(key): Path<String>,
) -> Result<Json<NonceAnswer>, ApiError> {
    let key = PublicKey::from_hex(&key).map_err(bad)?;
    let view = s.store.state_view().map_err(internal)?;
    let committed = exec::next_nonce(&view, &key);
    let free = s
        .mempool
        .lock()
        .expect("mempool")
        .next_free_nonce(&key, committed);
    Ok(Json(NonceAnswer {
        key: key.to_hex(),
        next_nonce: committed,
        next_free_nonce: free,
    }))
}

async fn member_list(State(s): State<Shared>) -> ApiResult {
    let view = s.store.state_view().map_err(internal)?;
    Ok(to_json(members(&view)))
}

/// Each piece of evidence re-verified on this chain, with the member whose node key signed
/// both messages (the basis for a `RemoveMember` proposal) and the canonical bytes anyone can
/// check with `Evidence::verify`.
async fn evidence(State(s): State<Shared>) -> ApiResult {
    let view = s.store.state_view().map_err(internal)?;
    let current = members(&view);
    let chain_id = caihong_consensus::ChainId::new(s.chain_id.clone());
    let list: Vec<Value> = s
        .store
        .evidence()
        .map_err(internal)?
        .into_iter()
        .map(|ev| {
            let (height, round) = ev.height_round();
            let kind = match &ev {
                caihong_consensus::Evidence::ConflictingVotes { .. } => "conflicting_votes",
                caihong_consensus::Evidence::ConflictingProposals { .. } => "conflicting_proposals",
            };
            let offender = ev.offender();
            let member = current
                .iter()
                .find(|m| m.node_key.0 == offender.0)
                .map(|m| m.id.as_str().to_string());
            json!({
                "kind": kind,
                "height": height,
                "round": round,
                "offender_node_key": hex::encode(offender.0),
                "member": member,
                "verified": ev.verify(&chain_id).is_ok(),
                "evidence": ev,
                "evidence_bincode_hex": hex::encode(caihong_chaincode::codec::encode(&ev)),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn proposals(State(s): State<Shared>) -> ApiResult {
    let view = s.store.state_view().map_err(internal)?;
    Ok(to_json(governance::proposals(&view)))
}

async fn proposal(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let id: u64 = parse_number(&id, "proposal id")?;
    let view = s.store.state_view().map_err(internal)?;
    governance::proposal(&view, id)
        .map(to_json)
        .ok_or_else(|| not_found(format!("no proposal {id}")))
}

async fn subject(State(s): State<Shared>, Path(uscc): Path<String>) -> ApiResult {
    let uscc = parse_uscc(&uscc)?;
    let view = s.store.state_view().map_err(internal)?;
    subjects::subject(&view, &uscc)
        .map(to_json)
        .ok_or_else(|| not_found(format!("no subject {uscc}")))
}

async fn subject_history(State(s): State<Shared>, Path(uscc): Path<String>) -> ApiResult {
    let uscc = parse_uscc(&uscc)?;
    let view = s.store.state_view().map_err(internal)?;
    Ok(to_json(subjects::history(&view, &uscc)))
}

/// A credit record as of `?at=` (default now): published or not, its penalty in force or not.
async fn credit_record(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Params(q): Params<AtQuery>,
) -> ApiResult {
    let id: u64 = parse_number(&id, "record id")?;
    let view = s.store.state_view().map_err(internal)?;
    credit::record_view(&view, id, q.date())
        .map(to_json)
        .ok_or_else(|| not_found(format!("no credit record {id}")))
}

async fn credit_for(
    State(s): State<Shared>,
    Path(uscc): Path<String>,
    Params(q): Params<AtQuery>,
) -> ApiResult {
    let uscc = parse_uscc(&uscc)?;
    let view = s.store.state_view().map_err(internal)?;
    Ok(to_json(credit::records_for(&view, &uscc, q.date())))
}

#[derive(Debug, Deserialize)]
struct AtQuery {
    /// Unix milliseconds; default now.
    at: Option<u64>,
}

impl AtQuery {
    /// The Beijing calendar day asked about.
    fn date(&self) -> caihong_chaincode::Date {
        caihong_chaincode::types::date_of(self.at.unwrap_or_else(crate::chain::now_ms))
    }
}

async fn restriction(
    State(s): State<Shared>,
    Path(uscc): Path<String>,
    Params(q): Params<AtQuery>,
) -> ApiResult {
    let uscc = parse_uscc(&uscc)?;
    let view = s.store.state_view().map_err(internal)?;
    Ok(to_json(credit::restriction(
        &view,
        &uscc,
        q.at.unwrap_or_else(crate::chain::now_ms),
    )))
}

async fn score(
    State(s): State<Shared>,
    Path(uscc): Path<String>,
    Params(q): Params<AtQuery>,
) -> ApiResult {
    let uscc = parse_uscc(&uscc)?;
    let view = s.store.state_view().map_err(internal)?;
    Ok(to_json(credit::score(
        &view,
        &uscc,
        q.at.unwrap_or_else(crate::chain::now_ms),
    )))
}

#[derive(Debug, Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn credit_since(
    State(s): State<Shared>,
    Path(height): Path<String>,
    Params(q): Params<LimitQuery>,
) -> ApiResult {
    let height: u64 = parse_number(&height, "height")?;
    let view = s.store.state_view().map_err(internal)?;
    Ok(to_json(credit::records_since(
        &view,
        height,
        q.limit.unwrap_or(1000).min(10_000),
    )))
}

async fn issuers(State(s): State<Shared>) -> ApiResult {
    let view = s.store.state_view().map_err(internal)?;
    let list: Vec<Value> = ca::issuers(&view)
        .into_iter()
        .map(|i| {
            let by = ca::recognized_by(&view, &i.fingerprint);
            json!({"fingerprint": i.fingerprint.to_hex(), "subject": i.subject, "signature_algorithm": i.signature_algorithm,
                   "not_after": i.not_after, "parent": i.parent.map(|p| p.to_hex()), "root": i.root.to_hex(),
                   "registered_by": i.registered_by, "recognized_by": by})
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Debug, Deserialize)]
struct VerifyQuery {
    member: Option<String>,
    at: Option<u64>,
}

async fn verify_certificate(
    State(s): State<Shared>,
    Params(q): Params<VerifyQuery>,
    body: axum::body::Bytes,
) -> ApiResult {
    let view = s.store.state_view().map_err(internal)?;
    let scope = match q.member {
        Some(m) => {
            let id = MemberId::parse(&m).map_err(|e| bad(e.message))?;
            let current = members(&view);
            if !current.iter().any(|c| c.id == id) {
                let ids: Vec<&str> = current.iter().map(|c| c.id.as_str()).collect();
                return Err(not_found(format!(
                    "member {id} is not in the alliance; the members are {}",
                    ids.join(", ")
                )));
            }
            Scope::Member(id)
        }
        None => Scope::Alliance,
    };
    let v = ca::verify(
        &view,
        &body,
        scope,
        q.at.unwrap_or_else(crate::chain::now_ms),
    )
    .map_err(|e| bad(format!("certificate: {e}")))?;
    let mut out = serde_json::to_value(&v).expect("serializable");
    out["reasons_text"] = json!(v.reasons.iter().map(|r| r.describe()).collect::<Vec<_>>());
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
struct SpecialtyQuery {
    specialty: String,
}

async fn experts_by_specialty(
    State(s): State<Shared>,
    Params(q): Params<SpecialtyQuery>,
) -> ApiResult {
    let view = s.store.state_view().map_err(internal)?;
    Ok(to_json(experts::experts_by_specialty(&view, &q.specialty)))
}

async fn expert(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let id = parse_hash(&id, "expert id")?;
    let view = s.store.state_view().map_err(internal)?;
    experts::expert(&view, &id)
        .map(to_json)
        .ok_or_else(|| not_found(format!("no expert {id}")))
}

#[derive(Debug, Deserialize)]
struct ExtractionQuery {
    /// `sealed` shows what the other members see, even on the requester's or a home's node.
    view: Option<String>,
}

/// `GET /v1/extractions/{id}`: the record (which holds no expert identifier until the
/// reveal), plus this node's member's view: its whole committee when it requested the
/// extraction, its own seats when it is a home, the sealed view otherwise; after the reveal
/// the published committee with the chain's verdict re-checked (`rederivation`).
async fn extraction(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Params(q): Params<ExtractionQuery>,
) -> ApiResult {
    let id: u64 = parse_number(&id, "extraction id")?;
    let sealed_only = match q.view.as_deref() {
        None | Some("own") => false,
        Some("sealed") => true,
        Some(other) => {
            return Err(bad(format!(
                "view {other:?}: use view=sealed (what other members see) or leave it out"
            )));
        }
    };
    let state = s.store.state_view().map_err(internal)?;
    let ext =
        experts::extraction(&state, id).ok_or_else(|| not_found(format!("no extraction {id}")))?;
    let member = MemberId::parse(&s.member).ok();
    let viewer = match (&member, &s.encryption_key, sealed_only) {
        (Some(m), Some(k), false) => Some((m, &k.0)),
        _ => None,
    };
    let shown = experts::view::view(&state, &ext, viewer);
    let mut v = serde_json::to_value(&ext).expect("serializable");
    v["view"] = json!(shown.view);
    v["view_note"] = json!(shown.view_note);
    v["viewer"] = json!(shown.viewer);
    v["seats"] = json!(shown.slots);
    // Slots carry the notices' ciphertext; the seats above are the readable form.
    v.as_object_mut().expect("an object").remove("slots");
    if ext.published.is_some() {
        let check = experts::check_published(&state, &ext);
        v["rederivation"] = match check {
            Ok(experts::Verdict::Verified) => json!({"verified": true}),
            Ok(experts::Verdict::Failed { problems }) => {
                json!({"verified": false, "problems": problems})
            }
            Err(problem) => json!({"verified": false, "problems": [problem]}),
        };
    }
    Ok(Json(v))
}

/// `GET /v1/extractions/{id}/candidates`: the eligible experts per requirement fixed at the
/// anchor (public knowledge: who could sit, not who does); the requester's client draws
/// and seals from them.
async fn extraction_candidates(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let id: u64 = parse_number(&id, "extraction id")?;
    let state = s.store.state_view().map_err(internal)?;
    experts::candidates(&state, id).map(to_json).ok_or_else(|| {
        not_found(format!(
            "extraction {id} has no candidate lists (not anchored, or failed at the anchor)"
        ))
    })
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<String>,
    kinds: Option<String>,
    limit: Option<usize>,
    /// Seconds to wait for an event when there is none yet.
    wait: Option<u64>,
}

/// Longest long-poll of `GET /v1/events`.
const MAX_EVENTS_WAIT: Duration = Duration::from_secs(60);

/// How often a waiting `GET /v1/events` looks again without a commit notice: governance
/// changes take effect at a block's start, in blocks that may hold no transaction.
const EVENTS_RESCAN: Duration = Duration::from_secs(1);

/// `GET /v1/events`: committed events after a cursor, in chain order ([`crate::events`]).
/// With `wait`, a scan that reaches the tip with nothing to answer waits for the next commit
/// (looking again at least every second) until the wait ends, then answers.
async fn events(
    State(s): State<Shared>,
    Params(q): Params<EventsQuery>,
) -> Result<Json<EventsAnswer>, ApiError> {
    let mut after = match q.after.as_deref() {
        Some(text) => Cursor::parse(text.trim()).map_err(bad)?,
        None => Cursor::Block(0),
    };
    let next_block = match after {
        Cursor::Block(h) => h + 1,
        Cursor::Event(h, _) => h,
    };
    holds_block(&s, next_block.max(1), "events")?;
    let filter = std::sync::Arc::new(KindFilter::parse(q.kinds.as_deref()).map_err(bad)?);
    let limit = q
        .limit
        .unwrap_or(events::DEFAULT_LIMIT)
        .clamp(1, events::MAX_LIMIT);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_EVENTS_WAIT);
    // Subscribed before the first scan: a commit between the scan and the wait still wakes it.
    let mut commits = s.commits.subscribe();
    loop {
        let store = s.store.clone();
        let wanted = filter.clone();
        let page = tokio::task::spawn_blocking(move || events::scan(&store, after, &wanted, limit))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let now = tokio::time::Instant::now();
        if !page.events.is_empty() || !page.caught_up || now >= deadline {
            return Ok(Json(EventsAnswer {
                events: page.events,
                next: page.next.to_string(),
                tip: page.tip,
            }));
        }
        // Nothing yet: the blocks scanned are not scanned again.
        after = page.next;
        let nap = (deadline - now).min(EVENTS_RESCAN);
        tokio::select! {
            received = commits.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = received {
                    tokio::time::sleep(nap).await;
                }
            }
            _ = tokio::time::sleep(nap) => {}
        }
        // One look for every commit notice that came meanwhile (a block's each transaction).
        while !matches!(
            commits.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty
                | tokio::sync::broadcast::error::TryRecvError::Closed)
        ) {}
    }
}
