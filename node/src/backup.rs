//! Online backups of a member's data directory, and their restore into a home.
//!
//! A backup is a RocksDB checkpoint the running node makes at one height
//! ([`Store::checkpoint`]: whole blocks only) plus [`MANIFEST`], which names the chain, the
//! member, the height, its block hash and state root. It is made in `DIR.partial` and renamed,
//! so a directory named `DIR` is always a whole backup.
//!
//! A restore copies a backup into `HOME/data` after checking, on a copy, that it opens as
//! this home's chain at the manifest's height; data already there is moved aside, never
//! deleted. It never writes `signer_state.bin`: that file records what this node key signed
//! last, and one rolled back to an older height would let the node sign a second, different
//! vote at a height it already voted on (equivocation, which the alliance records as
//! evidence against the member). The node keeps the later of the file and the restored
//! data's own record.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::config::Home;
pub use crate::contract::BackupManifest as Manifest;
use crate::storage::Store;

/// The file in a backup that says what it is.
pub const MANIFEST: &str = "caihong-backup.json";

/// Makes a backup of `store` in `out`, which must not exist or be an empty directory.
pub fn make(store: &Store, chain_id: &str, member: &str, out: &Path) -> anyhow::Result<Manifest> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "{} exists and is not empty: give a new directory for the backup",
                out.display()
            );
        }
        std::fs::remove_dir(out).with_context(|| format!("removing {}", out.display()))?;
    }
    let partial = partial_path(out);
    if partial.exists() {
        // What an interrupted backup left.
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    let header = store.checkpoint(&partial)?;
    let manifest = Manifest {
        chain_id: chain_id.to_string(),
        member: member.to_string(),
        height: header.height,
        block_hash: header.hash().to_hex(),
        state_root: header.state_root.to_hex(),
        made_ms: crate::chain::now_ms(),
        bytes: dir_bytes(&partial)?,
    };
    let path = partial.join(MANIFEST);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&manifest).expect("a manifest serializes"),
    )
    .and_then(|()| std::fs::File::open(&path)?.sync_all())
    .with_context(|| format!("writing {}", path.display()))?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    sync_parent(out)?;
    Ok(manifest)
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub manifest: Manifest,
    /// Where the data that was in the home went.
    pub moved_aside: Option<PathBuf>,
    /// Whether the home has a `signer_state.bin` (kept as it is).
    pub signer_state_kept: bool,
}

/// Restores the backup in `from` into `home`'s data directory. The node must be stopped.
pub fn restore(from: &Path, home: &Home) -> anyhow::Result<Restored> {
    let manifest_path = from.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "{} is not a backup made by `caihong backup` (no {MANIFEST} in it)",
            from.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} does not parse", manifest_path.display()))?;
    if from.join(crate::signer_state::FILE_NAME).exists() {
        bail!(
            "{} holds a {}: a backup never does, and a restore never overwrites the home's. \
             That file records what this node key signed last; rolled back, it would let the \
             node vote twice at a height (equivocation, recorded against the member). Restore \
             from a directory made by `caihong backup`",
            from.display(),
            crate::signer_state::FILE_NAME
        );
    }
    if manifest.chain_id != home.genesis.chain_id {
        bail!(
            "the backup is of chain {:?}, the home {} is of chain {:?}",
            manifest.chain_id,
            home.dir.display(),
            home.genesis.chain_id
        );
    }
    let data = home.data_dir();
    let occupied = data.exists()
        && std::fs::read_dir(&data)
            .with_context(|| format!("reading {}", data.display()))?
            .next()
            .is_some();
    if occupied {
        // Fails with "in use" while the node runs.
        drop(Store::open(&data).context("the home's node must be stopped before a restore")?);
    }
    let restoring = home.dir.join("data.restoring");
    if restoring.exists() {
        std::fs::remove_dir_all(&restoring)
            .with_context(|| format!("removing {}", restoring.display()))?;
    }
    copy_files(from, &restoring)?;
    check_restored(&restoring, home, &manifest)?;
    let moved_aside = if occupied {
        let aside = home
            .dir
            .join(format!("data.before-restore-{}", crate::chain::now_ms()));
        std::fs::rename(&data, &aside)
            .with_context(|| format!("moving {} aside", data.display()))?;
        Some(aside)
    } else {
        if data.exists() {
            std::fs::remove_dir(&data).with_context(|| format!("removing {}", data.display()))?;
        }
        None
    };
    std::fs::rename(&restoring, &data)
        .with_context(|| format!("renaming {} to {}", restoring.display(), data.display()))?;
    sync_parent(&data)?;
    Ok(Restored {
        manifest,
        moved_aside,
        signer_state_kept: crate::signer_state::path(&home.dir).exists(),
    })
}

/// Opens the copy as this home's chain and checks it is at the manifest's block.
fn check_restored(dir: &Path, home: &Home, manifest: &Manifest) -> anyhow::Result<()> {
    let store = Store::open(dir).context("the backup does not open")?;
    let writes = home
        .genesis
        .initial_state()
        .map_err(|e| anyhow::anyhow!("genesis: {e}"))?;
    store
        .init_genesis(
            &writes,
            &crate::chain::genesis_header(&home.genesis, &writes),
        )
        .context("the backup is not of this home's alliance")?;
    let header = store
        .latest_header()?
        .context("the backup holds no blocks")?;
    if header.height != manifest.height || header.hash().to_hex() != manifest.block_hash {
        bail!(
            "the backup's data is at height {} (block {}), its manifest says height {} (block \
             {}): it was changed after it was made",
            header.height,
            header.hash(),
            manifest.height,
            manifest.block_hash
        );
    }
    Ok(())
}

/// Copies the files of `from` (a flat checkpoint directory) but the manifest into a new
/// directory `to`: hard links where the filesystem allows (RocksDB never changes a file it
/// wrote), copies otherwise; each is synced.
fn copy_files(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == MANIFEST || !entry.file_type()?.is_file() {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        // The MANIFEST-, OPTIONS- and CURRENT files are rewritten by RocksDB in place of
        // new ones, but a hard link would share only what never changes: copy those.
        let immutable = name.to_string_lossy().ends_with(".sst");
        if !(immutable && std::fs::hard_link(&src, &dst).is_ok()) {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
        std::fs::File::open(&dst)?.sync_all()?;
    }
    Ok(())
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        bytes += entry?.metadata()?.len();
    }
    Ok(bytes)
}

fn sync_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", parent.display()))?;
    }
    Ok(())
}
