//! The last hour of blocks, as the alliance page charts them: per block its time,
//! transaction count, proposer and signers. Read from the store's headers and certificates
//! and kept between views, so a view reads only the blocks committed since the last one.

use std::collections::VecDeque;

use caihong_chaincode::PublicKey;

use crate::storage::{StorageError, Store};

/// The window charted.
pub const WINDOW_MS: u64 = 3_600_000;
/// Blocks kept however old (an idle chain's recent blocks are still listed).
const KEEP_LAST: usize = 20;
/// Most blocks read back on a first view (a busy hour at one block a second).
const MAX_FIRST_READ: u64 = 4_000;

#[derive(Debug, Clone)]
pub struct BlockStat {
    pub height: u64,
    pub time_ms: u64,
    pub txs: u64,
    pub proposer: PublicKey,
    pub signers: Vec<[u8; 32]>,
}

#[derive(Debug, Default)]
pub struct Recent {
    pub blocks: VecDeque<BlockStat>,
}

impl Recent {
    /// Reads the blocks committed since the last call and drops what left the window.
    pub fn refresh(&mut self, store: &Store) -> Result<(), StorageError> {
        let Some(latest) = store.latest_height()? else {
            return Ok(());
        };
        let first = store.first_block()?.max(1);
        let from = match self.blocks.back() {
            Some(b) if b.height <= latest => b.height + 1,
            _ => {
                self.blocks.clear();
                latest.saturating_sub(MAX_FIRST_READ).max(first)
            }
        };
        for height in from..=latest {
            let Some((header, txs)) = store.block_summary(height)? else {
                continue;
            };
            let signers = store
                .commit_certificate(height)?
                .map(|c| c.signatures.iter().map(|s| s.validator.0).collect())
                .unwrap_or_default();
            self.blocks.push_back(BlockStat {
                height,
                time_ms: header.time_ms,
                txs,
                proposer: header.proposer,
                signers,
            });
        }
        let newest = self.blocks.back().map_or(0, |b| b.time_ms);
        while self.blocks.len() > KEEP_LAST
            && self
                .blocks
                .front()
                .is_some_and(|b| b.time_ms + WINDOW_MS < newest)
        {
            self.blocks.pop_front();
        }
        Ok(())
    }

    /// Blocks and transactions per minute over the hour before `now_ms`, oldest minute first.
    pub fn per_minute(&self, now_ms: u64) -> Vec<(u64, u64)> {
        let mut out = vec![(0u64, 0u64); 60];
        for b in &self.blocks {
            if b.time_ms > now_ms || b.time_ms + WINDOW_MS <= now_ms {
                continue;
            }
            let minutes_ago = ((now_ms - b.time_ms) / 60_000) as usize;
            let slot = &mut out[59 - minutes_ago.min(59)];
            slot.0 += 1;
            slot.1 += b.txs;
        }
        out
    }

    /// The newest block a key signed the certificate of, among those kept.
    pub fn last_signed_by(&self, key: &[u8; 32]) -> Option<&BlockStat> {
        self.blocks.iter().rev().find(|b| b.signers.contains(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(height: u64, time_ms: u64, txs: u64) -> BlockStat {
        BlockStat {
            height,
            time_ms,
            txs,
            proposer: PublicKey([0; 32]),
            signers: vec![[height as u8; 32]],
        }
    }

    #[test]
    fn minutes_count_blocks_and_transactions_of_the_last_hour() {
        let now = 10 * WINDOW_MS;
        let recent = Recent {
            blocks: [
                stat(1, now - WINDOW_MS - 1, 100), // outside the hour
                stat(2, now - 59 * 60_000 - 5, 7), // the oldest minute
                stat(3, now - 30_000, 3),
                stat(4, now - 10, 2),
            ]
            .into(),
        };
        let minutes = recent.per_minute(now);
        assert_eq!(minutes.len(), 60);
        assert_eq!(minutes[0], (1, 7));
        assert_eq!(minutes[59], (2, 5));
        assert_eq!(minutes.iter().map(|m| m.1).sum::<u64>(), 12);
        assert_eq!(recent.last_signed_by(&[3; 32]).map(|b| b.height), Some(3));
        assert!(recent.last_signed_by(&[9; 32]).is_none());
    }
}
