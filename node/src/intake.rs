//! Transaction intake: the one thread that verifies and admits every transaction reaching the
//! node outside a block, whether gossiped by another member or submitted through the API.
//!
//! ed25519 batch verification costs less per signature the larger the batch: a client's
//! request of ten transactions, checked on its own, cost about 2.4 times as much per signature
//! as a gossiped batch of sixty. So the thread gathers what arrives within [`GATHER_WAIT`] of
//! the first piece of work (or until [`GATHER_TXS`] transactions are waiting), checks every
//! signature in one batch, and admits everything against one view of the latest state, which
//! also reads each signer's record once instead of once per request.
//!
//! Gossiped messages get the verdict that decides their forwarding; API submissions get one
//! result per transaction, and those admitted are handed to the core task to gossip.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use caihong_chaincode::{Hash, PublicKey, SignedTransaction, TxCheckError, VerifiedTx, codec};
use tokio::sync::{mpsc, oneshot};

use crate::mempool::{AdmitError, Mempool};
use crate::network::{Acceptance, Validation};
use crate::runtime::next_block_context;
use crate::storage::Store;

/// Pieces of work waiting for the intake thread. Gossip that finds it full is dropped
/// unforwarded; the API waits for room.
const QUEUE: usize = 64;

/// Once this many transactions are gathered the thread stops waiting for more: the batch
/// equation's cost per signature has mostly flattened out by then.
const GATHER_TXS: usize = 256;

/// How long the thread waits after the first piece of work for more to join its batch. Every
/// admission and every gossip verdict waits up to this long, small beside a block interval.
const GATHER_WAIT: Duration = Duration::from_millis(25);

/// Most transactions verified together (a backlog is taken in pieces of about this size).
const MAX_BATCH_TXS: usize = 4096;

/// Results of an API submission, one per transaction, in order.
pub type Admitted = Vec<Result<Hash, AdmitError>>;

/// Work for the intake thread.
#[derive(Debug)]
pub enum Work {
    /// A gossiped transactions message, still encoded, and the verdict it awaits.
    Gossip(Vec<u8>, Validation),
    /// Transactions submitted through the API, and where their results go.
    Submitted(Vec<SignedTransaction>, oneshot::Sender<Admitted>),
}

/// The sending side of the intake thread's queue.
pub type IntakeQueue = SyncSender<Work>;

/// What admission needs: the state to check envelopes against, the pool, and the core task's
/// queue of transactions to gossip.
#[derive(Debug)]
pub struct Admission {
    pub chain_id: String,
    pub store: Arc<Store>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub gossip: mpsc::Sender<Vec<SignedTransaction>>,
}

/// Starts the intake thread. It ends when every sender of the queue is gone.
pub fn spawn(admission: Admission) -> anyhow::Result<IntakeQueue> {
    let (queue, work) = std::sync::mpsc::sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("tx-intake".into())
        .spawn(move || {
            while let Some(batch) = gather(&work) {
                admission.process(batch);
            }
        })
        .context("starting the transaction intake thread")?;
    Ok(queue)
}

/// Offers a gossiped message to the intake thread; when it is behind, the message is ignored
/// (not forwarded): its transactions still reach us in blocks and are verified then.
pub fn offer_gossip(queue: &IntakeQueue, data: Vec<u8>, validation: Validation) {
    if let Err(TrySendError::Full(work) | TrySendError::Disconnected(work)) =
        queue.try_send(Work::Gossip(data, validation))
    {
        if let Work::Gossip(_, validation) = work {
            validation.report(Acceptance::Ignore);
        }
    }
}

/// Verifies and admits API-submitted transactions on the intake thread and waits for the
/// results. A full queue is waited out off the runtime's worker threads.
pub async fn submit(queue: &IntakeQueue, txs: Vec<SignedTransaction>) -> Admitted {
    let count = txs.len();
    let (reply, answer) = oneshot::channel();
    // Work that cannot be queued is dropped with its reply, which ends the wait below.
    if let Err(TrySendError::Full(work)) = queue.try_send(Work::Submitted(txs, reply)) {
        let queue = queue.clone();
        let _ = tokio::task::spawn_blocking(move || queue.send(work).is_ok()).await;
    }
    answer.await.unwrap_or_else(|_| {
        (0..count)
            .map(|_| Err(internal("the node is stopping".into())))
            .collect()
    })
}

/// A piece of work with its transactions decoded.
#[derive(Debug)]
struct Piece {
    /// Empty for a gossiped message that did not decode (or held none): it is refused.
    txs: Vec<SignedTransaction>,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Gossip(Validation),
    Api(oneshot::Sender<Admitted>),
}

impl Piece {
    fn decode(work: Work) -> Self {
        match work {
            Work::Gossip(data, validation) => Piece {
                txs: codec::decode(&data).unwrap_or_default(),
                source: Source::Gossip(validation),
            },
            Work::Submitted(txs, reply) => Piece {
                txs,
                source: Source::Api(reply),
            },
        }
    }
}

/// Waits for work, then gathers more: whatever arrives within [`GATHER_WAIT`] until
/// [`GATHER_TXS`] transactions are waiting, and whatever is already queued up to
/// [`MAX_BATCH_TXS`]. `None` when the queue is closed and empty.
fn gather(work: &Receiver<Work>) -> Option<Vec<Piece>> {
    let first = Piece::decode(work.recv().ok()?);
    let deadline = Instant::now() + GATHER_WAIT;
    let mut txs = first.txs.len();
    let mut batch = vec![first];
    while txs < MAX_BATCH_TXS {
        let next = if txs < GATHER_TXS {
            work.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        } else {
            work.try_recv().ok()
        };
        let Some(next) = next.map(Piece::decode) else {
            break;
        };
        txs += next.txs.len();
        batch.push(next);
    }
    Some(batch)
}

impl Admission {
    /// Verifies every transaction of the batch in one check, admits what passed against one
    /// view of state, and answers each piece of work.
    fn process(&self, batch: Vec<Piece>) {
        let counts: Vec<usize> = batch.iter().map(|piece| piece.txs.len()).collect();
        let mut txs = Vec::with_capacity(counts.iter().sum());
        let mut sources = Vec::with_capacity(batch.len());
        for piece in batch {
            txs.extend(piece.txs);
            sources.push(piece.source);
        }
        let mut checked = verify_each(txs, &self.chain_id).into_iter();

        // A gossiped message with a bad transaction, or none, is refused whole (and its sender
        // penalised): a member verifies what it forwards. Nothing of it is admitted. A client's
        // transactions are each admitted or refused on their own.
        let mut refused = Vec::with_capacity(sources.len());
        let mut candidates = Vec::new();
        // The submitted transactions, for the core task to gossip once admitted.
        let mut submitted: HashMap<Hash, SignedTransaction> = HashMap::new();
        for (source, &count) in sources.iter().zip(&counts) {
            let own: Vec<_> = checked.by_ref().take(count).collect();
            let refuse = matches!(source, Source::Gossip(_))
                && (own.is_empty() || own.iter().any(Result::is_err));
            refused.push(refuse);
            if refuse {
                continue;
            }
            if let Source::Api(_) = source {
                submitted.extend(
                    own.iter()
                        .flatten()
                        .map(|tx| (tx.hash(), tx.signed().clone())),
                );
            }
            candidates.extend(own);
        }
        let mut admitted =
            admit_all(&self.store, &self.mempool, &self.chain_id, candidates).into_iter();

        let mut gossip = Vec::new();
        for ((source, count), refuse) in sources.into_iter().zip(counts).zip(refused) {
            match source {
                Source::Gossip(validation) => validation.report(if refuse {
                    Acceptance::Reject
                } else if admitted
                    .by_ref()
                    .take(count)
                    .fold(false, |any, result| any | result.is_ok())
                {
                    Acceptance::Accept
                } else {
                    Acceptance::Ignore
                }),
                Source::Api(reply) => {
                    let results: Admitted = admitted.by_ref().take(count).collect();
                    gossip.extend(
                        results
                            .iter()
                            .filter_map(|result| result.as_ref().ok())
                            .filter_map(|hash| submitted.remove(hash)),
                    );
                    // The client may have gone; its transactions are admitted all the same.
                    let _ = reply.send(results);
                }
            }
        }
        if !gossip.is_empty() {
            // As one message: a message per transaction would cost every receiver a libp2p
            // signature check each. A full queue only delays them: they stay in our mempool
            // and reach a block from here.
            let _ = self.gossip.try_send(gossip);
        }
    }
}

/// Admits verified transactions against one view of the latest state, under one lock.
fn admit_all(
    store: &Store,
    mempool: &Mutex<Mempool>,
    chain_id: &str,
    txs: Vec<Result<VerifiedTx, TxCheckError>>,
) -> Vec<Result<Hash, AdmitError>> {
    let setup = store
        .state_view()
        .map_err(|e| e.to_string())
        .and_then(|view| {
            next_block_context(store, chain_id)
                .map(|ctx| (view, ctx))
                .map_err(|e| e.to_string())
        });
    let (view, ctx) = match setup {
        Ok(s) => s,
        Err(e) => return txs.iter().map(|_| Err(internal(e.clone()))).collect(),
    };
    // Every transaction reads its signer's operator record and nonce: once per signer here.
    let view = caihong_chaincode::ReadCache::new(view);
    let mut pool = mempool.lock().expect("mempool lock");
    txs.into_iter()
        .map(|tx| match tx {
            Ok(tx) => pool.admit(tx, &view, &ctx),
            Err(e) => Err(AdmitError::Rejected(caihong_chaincode::TxError::new(
                caihong_chaincode::ErrorCode::InvalidInput,
                e.to_string(),
            ))),
        })
        .collect()
}

fn internal(message: String) -> AdmitError {
    AdmitError::Rejected(caihong_chaincode::TxError::new(
        caihong_chaincode::ErrorCode::Conflict,
        message,
    ))
}

/// Verifies each transaction's chain id and signature: all in one batch when every signature
/// is good (the common case), one by one to find the bad ones otherwise.
///
/// Every check here is ed25519's batch (cofactored) equation, also for a single transaction:
/// the single-signature check (cofactorless) can judge a crafted signature differently, and a
/// block's validity must not depend on which of its transactions a validator already had.
pub fn verify_each(
    txs: Vec<SignedTransaction>,
    chain_id: &str,
) -> Vec<Result<VerifiedTx, TxCheckError>> {
    if txs.len() > 1 && txs.iter().all(|t| t.tx.chain_id == chain_id) && verify_batch(&txs).is_ok()
    {
        return txs.into_iter().map(|t| Ok(t.assume_verified())).collect();
    }
    txs.into_iter()
        .map(|t| {
            if t.tx.chain_id != chain_id {
                return Err(TxCheckError::WrongChain {
                    expected: chain_id.to_string(),
                    found: t.tx.chain_id.clone(),
                });
            }
            if verifying_key(&t.tx.signer).is_err() {
                return Err(TxCheckError::BadKey(t.tx.signer));
            }
            match verify_batch(std::slice::from_ref(&t)) {
                Ok(()) => Ok(t.assume_verified()),
                Err(_) => Err(TxCheckError::BadSignature(t.tx.signer)),
            }
        })
        .collect()
}

/// One ed25519 batch verification over the transactions' signatures.
fn verify_batch(txs: &[SignedTransaction]) -> Result<(), String> {
    let messages: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_bytes()).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    let signatures: Vec<ed25519_dalek::Signature> = txs
        .iter()
        .map(|t| ed25519_dalek::Signature::from_bytes(&t.signature.0))
        .collect();
    let keys = txs
        .iter()
        .map(|t| verifying_key(&t.tx.signer).map_err(|_| format!("bad signer key in {}", t.hash())))
        .collect::<Result<Vec<_>, _>>()?;
    crate::sigbatch::verify_batch(&refs, &signatures, &keys)
        .map_err(|e| format!("the transactions' signatures do not verify: {e}"))
}

/// A signer's decompressed key. Decompressing is about a quarter of a signature check, and an
/// alliance has few signers sending many transactions, so keys are kept (a bounded set).
fn verifying_key(
    key: &PublicKey,
) -> Result<ed25519_dalek::VerifyingKey, ed25519_dalek::SignatureError> {
    const MAX_KEYS: usize = 16_384;
    static KEYS: std::sync::OnceLock<Mutex<HashMap<PublicKey, ed25519_dalek::VerifyingKey>>> =
        std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    if let Some(k) = keys.lock().expect("key cache").get(key) {
        return Ok(*k);
    }
    let k = key.verifying_key()?;
    let mut cache = keys.lock().expect("key cache");
    if cache.len() >= MAX_KEYS {
        cache.clear();
    }
    cache.insert(*key, k);
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Header, receipts_root, txs_root};
    use crate::storage::genesis_state_root;
    use caihong_chaincode::members::{OperatorAction, Role};
    use caihong_chaincode::sandbox::{SANDBOX_GENESIS_TIME_MS, Sandbox, key, public};
    use caihong_chaincode::{Action, Transaction};

    fn signed(label: &str, chain: &str, nonce: u64) -> SignedTransaction {
        let k = key(label);
        Transaction {
            chain_id: chain.into(),
            signer: public(&k),
            nonce,
            action: Action::Operator(OperatorAction::Deactivate { key: public(&k) }),
        }
        .sign(&k)
    }

    /// A bad signature or chain id is found and named whether it comes alone or in a batch,
    /// and does not spoil the good transactions beside it.
    #[test]
    fn verify_each_names_bad_transactions_alone_or_in_a_batch() {
        let good = signed("a", "c", 0);
        let mut forged = signed("b", "c", 0);
        forged.tx.nonce = 1;
        let other_chain = signed("c", "other", 0);
        let results = verify_each(vec![good.clone(), forged.clone(), other_chain, good], "c");
        assert!(results[0].is_ok() && results[3].is_ok(), "{results:?}");
        assert!(
            matches!(results[1], Err(TxCheckError::BadSignature(_))),
            "{results:?}"
        );
        assert!(
            matches!(results[2], Err(TxCheckError::WrongChain { .. })),
            "{results:?}"
        );
        assert!(matches!(
            verify_each(vec![forged], "c")[..],
            [Err(TxCheckError::BadSignature(_))]
        ));
        assert!(verify_each(vec![signed("d", "c", 3)], "c")[0].is_ok());
    }

    /// A member's transaction that registers an operator (runs on the sandbox genesis).
    fn registration(sb: &Sandbox, member: &str, nonce: u64, label: &str) -> SignedTransaction {
        let k = Sandbox::admin_key(member);
        Transaction {
            chain_id: sb.chain_id.clone(),
            signer: public(&k),
            nonce,
            action: Action::Operator(OperatorAction::Register {
                key: public(&key(label)),
                name: label.into(),
                roles: [Role::Registrar].into(),
            }),
        }
        .sign(&k)
    }

    /// An admission over a store holding the sandbox genesis, and what it hands on to gossip.
    fn admission(
        sb: &Sandbox,
    ) -> (
        tempfile::TempDir,
        Admission,
        mpsc::Receiver<Vec<SignedTransaction>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let writes = sb.state_writes();
        let header = Header {
            chain_id: sb.chain_id.clone(),
            height: 0,
            time_ms: SANDBOX_GENESIS_TIME_MS,
            parent_hash: Hash::ZERO,
            proposer: public(&Sandbox::node_key("hohhot")),
            txs_root: txs_root(&[]),
            receipts_root: receipts_root(&[]),
            state_root: genesis_state_root(&writes),
            next_validators_hash: Hash::ZERO,
        };
        store.init_genesis(&writes, &header).unwrap();
        let (gossip, to_gossip) = mpsc::channel(8);
        let admission = Admission {
            chain_id: sb.chain_id.clone(),
            store: Arc::new(store),
            mempool: Arc::new(Mutex::new(Mempool::new(100, 10))),
            gossip,
        };
        (dir, admission, to_gossip)
    }

    /// One gathered batch of gossip and submissions, checked together: a gossiped message with
    /// a forged transaction is refused whole and admits nothing, an undecodable one is refused,
    /// one with only known transactions is ignored; a client's bad transaction is refused alone
    /// beside its good one, and only the client's admitted transactions go on to gossip.
    #[test]
    fn a_gathered_batch_answers_each_piece_on_its_own() {
        let sb = Sandbox::new(4);
        let (_dir, admission, mut to_gossip) = admission(&sb);
        let gossiped = registration(&sb, "baotou", 0, "g0");
        let mut forged = registration(&sb, "ordos", 0, "f0");
        forged.tx.nonce = 1;
        let beside_forged = registration(&sb, "yinchuan", 0, "y0");
        let submitted = registration(&sb, "hohhot", 0, "h0");
        let mut bad_submitted = registration(&sb, "hohhot", 1, "h1");
        bad_submitted.signature.0[0] ^= 1;

        let (good_message, mut good_verdict) = Validation::detached();
        let (forged_message, mut forged_verdict) = Validation::detached();
        let (garbage, mut garbage_verdict) = Validation::detached();
        let (repeat, mut repeat_verdict) = Validation::detached();
        let (reply, mut answer) = oneshot::channel();
        let batch = vec![
            Work::Gossip(codec::encode(&vec![gossiped.clone()]), good_message),
            Work::Gossip(
                codec::encode(&vec![beside_forged.clone(), forged]),
                forged_message,
            ),
            Work::Submitted(vec![submitted.clone(), bad_submitted], reply),
            Work::Gossip(b"not transactions".to_vec(), garbage),
            Work::Gossip(codec::encode(&vec![gossiped.clone()]), repeat),
        ];
        admission.process(batch.into_iter().map(Piece::decode).collect());

        assert_eq!(good_verdict(), Some(Acceptance::Accept));
        assert_eq!(forged_verdict(), Some(Acceptance::Reject));
        assert_eq!(garbage_verdict(), Some(Acceptance::Reject));
        assert_eq!(repeat_verdict(), Some(Acceptance::Ignore));
        let results = answer.try_recv().unwrap();
        assert_eq!(results[0], Ok(submitted.hash()));
        assert!(
            matches!(&results[1], Err(AdmitError::Rejected(e)) if e.message.contains("signature")),
            "{results:?}"
        );
        let pool = admission.mempool.lock().unwrap();
        assert!(pool.contains(&gossiped.hash()) && pool.contains(&submitted.hash()));
        assert!(!pool.contains(&beside_forged.hash()));
        assert_eq!(pool.len(), 2);
        drop(pool);
        assert_eq!(to_gossip.try_recv().unwrap(), vec![submitted]);
        assert!(to_gossip.try_recv().is_err());
    }

    /// A submission that finds the queue full waits for room; once the thread is gone, it is
    /// answered with an error for each transaction instead of hanging.
    #[test]
    fn a_submission_waits_for_room_and_fails_cleanly_without_the_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (queue, work) = std::sync::mpsc::sync_channel(1);
        let (filler, _) = Validation::detached();
        queue.send(Work::Gossip(Vec::new(), filler)).unwrap();
        let thread = std::thread::spawn(move || {
            let _filler = work.recv().unwrap();
            match work.recv().unwrap() {
                Work::Submitted(txs, reply) => reply
                    .send(txs.iter().map(|t| Ok(t.hash())).collect())
                    .unwrap(),
                other => panic!("expected the submission, got {other:?}"),
            }
        });
        let tx = signed("a", "c", 0);
        let results = runtime.block_on(submit(&queue, vec![tx.clone()]));
        assert_eq!(results, vec![Ok(tx.hash())]);
        thread.join().unwrap();
        let results = runtime.block_on(submit(&queue, vec![tx.clone(), tx]));
        assert_eq!(results.len(), 2);
        assert!(
            results.iter().all(
                |r| matches!(r, Err(AdmitError::Rejected(e)) if e.message.contains("stopping"))
            ),
            "{results:?}"
        );
    }

    /// The thread waits a moment for more work to join a small batch, takes what is queued,
    /// and a submission through the queue gets its results back.
    #[test]
    fn the_thread_gathers_work_that_arrives_together() {
        let sb = Sandbox::new(4);
        let (queue, work) = std::sync::mpsc::sync_channel(QUEUE);
        let (first, mut first_verdict) = Validation::detached();
        let (second, _) = Validation::detached();
        queue
            .send(Work::Gossip(
                codec::encode(&vec![registration(&sb, "baotou", 0, "a")]),
                first,
            ))
            .unwrap();
        queue.send(Work::Gossip(b"x".to_vec(), second)).unwrap();
        let started = Instant::now();
        let batch = gather(&work).unwrap();
        assert!(started.elapsed() >= GATHER_WAIT);
        assert_eq!(batch.len(), 2, "{batch:?}");
        assert_eq!(batch[0].txs.len(), 1);
        assert!(batch[1].txs.is_empty());
        drop(batch);
        // Dropped unanswered: ignored.
        assert_eq!(first_verdict(), Some(Acceptance::Ignore));
        drop(queue);
        assert!(gather(&work).is_none());

        let (_dir, admission, _to_gossip) = admission(&sb);
        let queue = spawn(admission).unwrap();
        let tx = registration(&sb, "ordos", 0, "o0");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let results = runtime.block_on(submit(&queue, vec![tx.clone(), tx.clone()]));
        assert_eq!(results[0], Ok(tx.hash()));
        assert_eq!(results[1], Err(AdmitError::Duplicate(tx.hash())));
    }
}
