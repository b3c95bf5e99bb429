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
//! result per transaction, and those admitted are gossiped together by this module's gossip
//! task ([`Outbox`]). After each commit the thread rechecks the mempool against the new state
//! ([`committed`]), in order with the admissions queued before and after it.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use caihong_chaincode::{Hash, SignedTransaction, TxCheckError, VerifiedTx, codec};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::chain::next_block_context;
use crate::mempool::{AdmitError, Mempool};
use crate::network::{Acceptance, NetworkHandle, Topic, Validation};
use crate::sigbatch::verify_each;
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

/// Transactions gossiped in one message, up to about this many bytes.
const TX_BATCH_BYTES: usize = 512 << 10;

/// Admitted transactions wait at most this long to be gossiped together.
const TX_GOSSIP_INTERVAL: Duration = Duration::from_millis(50);

/// Results of an API submission, one per transaction, in order.
pub type Admitted = Vec<Result<Hash, AdmitError>>;

/// Work for the intake thread.
#[derive(Debug)]
pub enum Work {
    /// A gossiped transactions message, still encoded, and the verdict it awaits.
    Gossip(Vec<u8>, Validation),
    /// Transactions submitted through the API, and where their results go.
    Submitted(Vec<SignedTransaction>, oneshot::Sender<Admitted>),
    /// A block was committed: the mempool is rechecked against the new state.
    Committed,
}

/// The sending side of the intake thread's queue.
pub type IntakeQueue = SyncSender<Work>;

/// What admission needs: the state to check envelopes against, the pool, and the gossip
/// task's queue of admitted transactions.
#[derive(Debug)]
pub struct Admission {
    pub chain_id: String,
    pub store: Arc<Store>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub gossip: mpsc::Sender<Vec<SignedTransaction>>,
    /// Told when transactions were admitted: a consensus host waiting for something to order
    /// starts its height.
    pub arrived: Arc<Notify>,
}

/// Starts transaction intake: the thread that verifies and admits, and the task that gossips
/// what the API submitted.
pub fn start(
    chain_id: String,
    store: Arc<Store>,
    mempool: Arc<Mutex<Mempool>>,
    net: NetworkHandle,
    arrived: Arc<Notify>,
) -> anyhow::Result<IntakeQueue> {
    let (gossip, to_gossip) = mpsc::channel(1024);
    tokio::spawn(gossip_task(net, to_gossip));
    spawn(Admission {
        chain_id,
        store,
        mempool,
        gossip,
        arrived,
    })
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

/// Tells the intake thread a block was committed. Never dropped: a full queue is waited out
/// off the runtime's worker threads, and the caller does not wait for it.
pub fn committed(queue: &IntakeQueue) {
    if let Err(TrySendError::Full(work)) = queue.try_send(Work::Committed) {
        let queue = queue.clone();
        tokio::task::spawn_blocking(move || queue.send(work).is_ok());
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
    Commit,
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
            Work::Committed => Piece {
                txs: Vec::new(),
                source: Source::Commit,
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
        // Before this batch's admissions, which were queued after the commit.
        if batch.iter().any(|p| matches!(p.source, Source::Commit)) {
            self.recheck();
        }
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
        // The submitted transactions, for the gossip task to send once admitted.
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
        let results = admit_all(&self.store, &self.mempool, &self.chain_id, candidates);
        if results.iter().any(Result::is_ok) {
            self.arrived.notify_one();
        }
        let mut admitted = results.into_iter();

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
                Source::Commit => {}
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

impl Admission {
    /// Drops what the latest block committed or made unusable from the mempool.
    fn recheck(&self) {
        let setup = self
            .store
            .state_view()
            .map_err(anyhow::Error::from)
            .and_then(|view| {
                next_block_context(&self.store, &self.chain_id).map(|ctx| (view, ctx))
            });
        match setup {
            Ok((view, ctx)) => self
                .mempool
                .lock()
                .expect("mempool lock")
                .recheck(&view, &ctx),
            // Committed transactions left in the pool are skipped by reaping (their nonces
            // are used) and dropped by the next recheck.
            Err(e) => tracing::warn!("rechecking the mempool after a commit: {e:#}"),
        }
    }
}

/// Admitted transactions waiting to be gossiped together, and their encoded size.
#[derive(Debug, Default)]
struct Outbox {
    txs: Vec<SignedTransaction>,
    bytes: usize,
}

impl Outbox {
    /// Queues a transaction; a message's worth when that many are queued.
    fn push(&mut self, tx: SignedTransaction) -> Option<Vec<SignedTransaction>> {
        self.bytes += codec::encoded_len(&tx);
        self.txs.push(tx);
        (self.bytes >= TX_BATCH_BYTES).then(|| self.take())
    }

    fn take(&mut self) -> Vec<SignedTransaction> {
        self.bytes = 0;
        std::mem::take(&mut self.txs)
    }
}

/// Gossips admitted transactions, as one message every [`TX_GOSSIP_INTERVAL`] or per
/// [`TX_BATCH_BYTES`]: many clients each sending one transaction still make few messages (each
/// costs every receiver a libp2p signature check), at the price of that much delay. Ends when
/// the intake thread is gone.
async fn gossip_task(net: NetworkHandle, mut admitted: mpsc::Receiver<Vec<SignedTransaction>>) {
    let mut outbox = Outbox::default();
    let mut tick = tokio::time::interval(TX_GOSSIP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let full = tokio::select! {
            txs = admitted.recv() => match txs {
                Some(txs) => txs.into_iter().filter_map(|tx| outbox.push(tx)).collect(),
                None => break,
            },
            _ = tick.tick() => vec![outbox.take()],
        };
        for batch in full.into_iter().filter(|b| !b.is_empty()) {
            if let Err(e) = net
                .publish(Topic::Transactions, codec::encode(&batch))
                .await
            {
                tracing::debug!("gossiping {} transactions: {e}", batch.len());
            }
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

#[cfg(test)]
mod tests {
    use super::*;
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
        let header = crate::chain::initial_header(
            &sb.chain_id,
            SANDBOX_GENESIS_TIME_MS,
            Hash::ZERO,
            &writes,
        );
        store.init_genesis(&writes, &header).unwrap();
        let (gossip, to_gossip) = mpsc::channel(8);
        let admission = Admission {
            chain_id: sb.chain_id.clone(),
            store: Arc::new(store),
            mempool: Arc::new(Mutex::new(Mempool::new(100, 10))),
            gossip,
            arrived: Arc::new(Notify::new()),
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
