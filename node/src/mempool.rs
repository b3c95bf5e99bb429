//! The mempool: verified transactions waiting for a block.
//!
//! Bounded in total and per signer; deduplicated by hash; ordered per signer
//! by nonce so a block never holds a gap; across signers, first come first
//! served. Admission runs the same envelope checks as execution (chain id,
//! active operator, nonce not used) against the latest committed state, and
//! after each block the pool drops what was committed or can no longer run.

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use caihong_chaincode::exec::{self, BlockContext};
use caihong_chaincode::{ErrorCode, Hash, PublicKey, StateReader, TxError, VerifiedTx};

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("transaction {0} is already in the mempool")]
    Duplicate(Hash),
    #[error("mempool is full ({0} transactions); retry later")]
    Full(usize),
    #[error("signer {signer} has {limit} transactions pending; wait for some to commit")]
    SignerFull { signer: PublicKey, limit: usize },
    #[error(
        "nonce {nonce} of signer {signer} is already pending in another transaction; fetch the next nonce and retry"
    )]
    NonceConflict { signer: PublicKey, nonce: u64 },
    #[error("nonce {nonce} is too far ahead of the signer's next nonce {next}")]
    NonceGap { nonce: u64, next: u64 },
    #[error("{0}")]
    Rejected(TxError),
}

#[derive(Debug)]
struct Entry {
    tx: VerifiedTx,
    size: usize,
    arrival: u64,
}

#[derive(Debug)]
pub struct Mempool {
    capacity: usize,
    per_signer: usize,
    entries: HashMap<Hash, Entry>,
    by_signer: BTreeMap<PublicKey, BTreeMap<u64, Hash>>,
    next_arrival: u64,
}

impl Mempool {
    pub fn new(capacity: usize, per_signer: usize) -> Self {
        Mempool {
            capacity,
            per_signer,
            entries: HashMap::new(),
            by_signer: BTreeMap::new(),
            next_arrival: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }

    /// The pending transaction with this hash; its signature was verified on admission, so a
    /// block that includes it need not verify it again.
    pub fn get(&self, hash: &Hash) -> Option<&VerifiedTx> {
        self.entries.get(hash).map(|e| &e.tx)
    }

    /// Admits a verified transaction after the stateful checks against
    /// `state` (the latest committed state; `block` names the chain and the
    /// next height).
    pub fn admit(
        &mut self,
        tx: VerifiedTx,
        state: &dyn StateReader,
        block: &BlockContext,
    ) -> Result<Hash, AdmitError> {
        let hash = tx.hash();
        if self.entries.contains_key(&hash) {
            return Err(AdmitError::Duplicate(hash));
        }
        if self.entries.len() >= self.capacity {
            return Err(AdmitError::Full(self.capacity));
        }
        let t = tx.tx();
        let signer = t.signer;
        let next = exec::next_nonce(state, &signer);
        // Envelope checks with the nonce the signer will have when its pending
        // transactions have run: chain, known operator, nonce not yet used.
        match exec::check_envelope(state, block, &tx) {
            Ok(()) => {}
            Err(e) if e.code == ErrorCode::BadNonce && t.nonce > next => {}
            Err(e) => return Err(AdmitError::Rejected(e)),
        }
        let pending = self.by_signer.get(&signer);
        if let Some(other) = pending.and_then(|p| p.get(&t.nonce)) {
            debug_assert_ne!(*other, hash);
            return Err(AdmitError::NonceConflict {
                signer,
                nonce: t.nonce,
            });
        }
        let count = pending.map_or(0, |p| p.len());
        if count >= self.per_signer {
            return Err(AdmitError::SignerFull {
                signer,
                limit: self.per_signer,
            });
        }
        if t.nonce >= next + self.per_signer as u64 {
            return Err(AdmitError::NonceGap {
                nonce: t.nonce,
                next,
            });
        }
        let size = caihong_chaincode::codec::encoded_len(tx.signed());
        self.by_signer
            .entry(signer)
            .or_default()
            .insert(t.nonce, hash);
        self.entries.insert(
            hash,
            Entry {
                tx,
                size,
                arrival: self.next_arrival,
            },
        );
        self.next_arrival += 1;
        Ok(hash)
    }

    /// Whether a block made on `state` would hold anything: some signer's next nonce is here
    /// (a transaction past a gap waits for the gap, and does not ask for blocks).
    pub fn has_runnable(&self, state: &dyn StateReader) -> bool {
        self.by_signer
            .iter()
            .any(|(signer, pending)| pending.contains_key(&exec::next_nonce(state, signer)))
    }

    /// Up to `max_txs` / `max_bytes` of runnable transactions: per signer a
    /// run of consecutive nonces from its next nonce, merged across signers
    /// by arrival.
    pub fn reap(
        &self,
        state: &dyn StateReader,
        max_txs: usize,
        max_bytes: usize,
    ) -> Vec<VerifiedTx> {
        // Each signer's runnable chain, as a queue.
        let mut chains: Vec<Vec<&Entry>> = Vec::new();
        for (signer, pending) in &self.by_signer {
            let mut nonce = exec::next_nonce(state, signer);
            let mut chain = Vec::new();
            while let Some(hash) = pending.get(&nonce) {
                chain.push(&self.entries[hash]);
                nonce += 1;
            }
            if !chain.is_empty() {
                chain.reverse();
                chains.push(chain);
            }
        }
        // Min-heap on the arrival of each chain's head.
        let mut heap: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = chains
            .iter()
            .enumerate()
            .map(|(i, c)| std::cmp::Reverse((c.last().expect("non-empty").arrival, i)))
            .collect();
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(std::cmp::Reverse((_, i))) = heap.pop() {
            let entry = chains[i].pop().expect("non-empty chain");
            if out.len() >= max_txs || bytes + entry.size > max_bytes {
                break;
            }
            bytes += entry.size;
            out.push(entry.tx.clone());
            if let Some(next) = chains[i].last() {
                heap.push(std::cmp::Reverse((next.arrival, i)));
            }
        }
        out
    }

    /// After a block: drops committed transactions and those whose nonce is
    /// used or whose signer can no longer sign.
    pub fn recheck(&mut self, state: &dyn StateReader, block: &BlockContext) {
        // The envelope's state checks (signer still an active operator, nonce) depend on the
        // signer only, so one check per signer decides for all its pending transactions:
        // a block's cost here grows with signers, not with the mempool's size.
        let mut dropped = Vec::new();
        for (signer, pending) in &self.by_signer {
            let next = exec::next_nonce(state, signer);
            dropped.extend(pending.range(..next).map(|(_, hash)| *hash));
            if let Some((_, hash)) = pending.range(next..).next() {
                let unusable = exec::check_envelope(state, block, &self.entries[hash].tx)
                    .is_err_and(|e| e.code != ErrorCode::BadNonce);
                if unusable {
                    dropped.extend(pending.range(next..).map(|(_, hash)| *hash));
                }
            }
        }
        for hash in dropped {
            self.remove(&hash);
        }
    }

    pub fn next_free_nonce(&self, signer: &PublicKey, committed_next: u64) -> u64 {
        let mut next = committed_next;
        if let Some(pending) = self.by_signer.get(signer) {
            while pending.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    pub fn remove(&mut self, hash: &Hash) -> Option<VerifiedTx> {
        let entry = self.entries.remove(hash)?;
        let signer = entry.tx.tx().signer;
        if let Some(p) = self.by_signer.get_mut(&signer) {
            p.remove(&entry.tx.tx().nonce);
            if p.is_empty() {
                self.by_signer.remove(&signer);
            }
        }
        Some(entry.tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caihong_chaincode::members::{OperatorAction, Role};
    use caihong_chaincode::sandbox::{Sandbox, key, public};
    use caihong_chaincode::{Action, Transaction};

    fn action(label: &str) -> Action {
        Action::Operator(OperatorAction::Register {
            key: public(&key(label)),
            name: label.into(),
            roles: [Role::Registrar].into(),
        })
    }

    fn tx(sb: &Sandbox, member: &str, nonce: u64, label: &str) -> VerifiedTx {
        let k = Sandbox::admin_key(member);
        Transaction {
            chain_id: sb.chain_id.clone(),
            signer: public(&k),
            nonce,
            action: action(label),
        }
        .sign(&k)
        .verify(&sb.chain_id)
        .unwrap()
    }

    #[test]
    fn admits_dedups_and_bounds() {
        let sb = Sandbox::new(4);
        let ctx = sb.next_block();
        let mut pool = Mempool::new(3, 2);
        let a = tx(&sb, "hohhot", 0, "a");
        pool.admit(a.clone(), &sb.state, &ctx).unwrap();
        assert_eq!(
            pool.admit(a, &sb.state, &ctx),
            Err(AdmitError::Duplicate(tx(&sb, "hohhot", 0, "a").hash()))
        );
        assert!(matches!(
            pool.admit(tx(&sb, "hohhot", 0, "b"), &sb.state, &ctx),
            Err(AdmitError::NonceConflict { nonce: 0, .. })
        ));
        pool.admit(tx(&sb, "hohhot", 1, "b"), &sb.state, &ctx)
            .unwrap();
        assert!(matches!(
            pool.admit(tx(&sb, "hohhot", 2, "c"), &sb.state, &ctx),
            Err(AdmitError::SignerFull { .. })
        ));
        pool.admit(tx(&sb, "baotou", 0, "d"), &sb.state, &ctx)
            .unwrap();
        assert_eq!(
            pool.admit(tx(&sb, "ordos", 0, "e"), &sb.state, &ctx),
            Err(AdmitError::Full(3))
        );
    }

    #[test]
    fn refuses_unknown_signers_and_used_nonces() {
        let mut sb = Sandbox::new(4);
        let ctx = sb.next_block();
        let mut pool = Mempool::new(10, 10);
        let stranger = key("stranger");
        let t = Transaction {
            chain_id: sb.chain_id.clone(),
            signer: public(&stranger),
            nonce: 0,
            action: action("x"),
        }
        .sign(&stranger)
        .verify(&sb.chain_id)
        .unwrap();
        let Err(AdmitError::Rejected(e)) = pool.admit(t, &sb.state, &ctx) else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::UnknownSigner);
        sb.run(&Sandbox::admin_key("hohhot"), action("y"));
        let ctx = sb.next_block();
        let Err(AdmitError::Rejected(e)) = pool.admit(tx(&sb, "hohhot", 0, "z"), &sb.state, &ctx)
        else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::BadNonce);
    }

    #[test]
    fn reap_keeps_nonce_order_skips_gaps_and_recheck_prunes() {
        let mut sb = Sandbox::new(4);
        let ctx = sb.next_block();
        let mut pool = Mempool::new(100, 100);
        // Arrive out of nonce order, with a gap for baotou.
        pool.admit(tx(&sb, "hohhot", 1, "h1"), &sb.state, &ctx)
            .unwrap();
        pool.admit(tx(&sb, "baotou", 0, "b0"), &sb.state, &ctx)
            .unwrap();
        pool.admit(tx(&sb, "hohhot", 0, "h0"), &sb.state, &ctx)
            .unwrap();
        pool.admit(tx(&sb, "baotou", 2, "b2"), &sb.state, &ctx)
            .unwrap();
        assert!(pool.has_runnable(&sb.state));
        let reaped = pool.reap(&sb.state, 100, usize::MAX);
        let order: Vec<(String, u64)> = reaped
            .iter()
            .map(|t| (t.tx().signer.to_hex()[..6].to_string(), t.tx().nonce))
            .collect();
        assert_eq!(reaped.len(), 3, "{order:?}");
        let h = public(&Sandbox::admin_key("hohhot"));
        let hohhot: Vec<u64> = reaped
            .iter()
            .filter(|t| t.tx().signer == h)
            .map(|t| t.tx().nonce)
            .collect();
        assert_eq!(hohhot, vec![0, 1]);
        assert_eq!(pool.reap(&sb.state, 2, usize::MAX).len(), 2);
        // Commit them; recheck leaves only baotou's nonce 2.
        sb.block(&reaped);
        let ctx = sb.next_block();
        pool.recheck(&sb.state, &ctx);
        assert_eq!(pool.len(), 1, "only baotou's nonce 2 is left");
        assert!(
            pool.reap(&sb.state, 100, usize::MAX).is_empty(),
            "nonce 1 is missing"
        );
        assert!(
            !pool.has_runnable(&sb.state),
            "a transaction past a gap asks for no block"
        );
        assert_eq!(
            pool.next_free_nonce(&public(&Sandbox::admin_key("baotou")), 1),
            1
        );
        pool.admit(tx(&sb, "baotou", 1, "b1"), &sb.state, &ctx)
            .unwrap();
        assert!(pool.has_runnable(&sb.state));
        assert_eq!(
            pool.reap(&sb.state, 100, usize::MAX).len(),
            2,
            "the gap is filled"
        );
        assert_eq!(
            pool.next_free_nonce(&public(&Sandbox::admin_key("baotou")), 1),
            3
        );
    }
}
