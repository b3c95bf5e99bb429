//! State-version retention: keeps the state tree of the latest `storage.keep_state_versions`
//! heights and prunes older versions, off the consensus loop. Blocks, certificates, receipts
//! and the history of state writes are never pruned (the audit record); a proof asked for at
//! a pruned height gets [`crate::storage::StorageError::StateVersionPruned`].

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::storage::Store;

/// How often the pruner looks at the chain's height.
const EVERY: Duration = Duration::from_secs(10);

/// Most versions pruned in one step: a step holds the store's commit lock, so a node that
/// turns pruning on for a long chain catches up over several steps instead of one long stall.
const MAX_VERSIONS_PER_STEP: u64 = 2_000;

/// Starts the pruner when `keep` is not 0 (0 keeps every version).
pub fn spawn(store: Arc<Store>, keep: u64) {
    if keep == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = store.clone();
            match tokio::task::spawn_blocking(move || prune_step(&store, keep)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!("pruning state versions: {e}"),
                Err(e) => warn!("pruning state versions: {e}"),
            }
        }
    });
}

/// Prunes towards keeping the latest `keep` versions, at most [`MAX_VERSIONS_PER_STEP`] at a
/// time; repeats while there is more to prune.
pub fn prune_step(store: &Store, keep: u64) -> Result<(), crate::storage::StorageError> {
    loop {
        let Some(latest) = store.latest_height()? else {
            return Ok(());
        };
        let target = (latest + 1).saturating_sub(keep);
        let oldest = store.oldest_state_version()?;
        if target <= oldest {
            return Ok(());
        }
        let keep_from = target.min(oldest + MAX_VERSIONS_PER_STEP);
        let report = store.prune_state_versions(keep_from)?;
        let pruned = report.oldest_kept - oldest;
        if pruned >= MAX_VERSIONS_PER_STEP {
            info!(
                oldest_kept = report.oldest_kept,
                nodes_deleted = report.nodes_deleted,
                "pruned state versions"
            );
        } else {
            debug!(
                oldest_kept = report.oldest_kept,
                nodes_deleted = report.nodes_deleted,
                "pruned state versions"
            );
        }
        if keep_from == target {
            return Ok(());
        }
    }
}
