//! `caihong backup` and `caihong restore`: an online backup made by the running node (a
//! RocksDB checkpoint at one height), and its restore into a stopped member's home
//! (`caihong_node::backup` says what each checks and why `signer_state.bin` is never written).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use caihong_node::backup::Manifest;
use caihong_node::config::Home;
use caihong_node::contract::{BackupRequest, route};
use clap::Args;

use crate::node::{NodeArgs, finish};

/// How long a backup may take: a checkpoint flushes and links files, copying them only
/// across filesystems.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// A new directory for the backup, on the node's machine (on the data directory's
    /// filesystem the files are hard links: fast and small until the node compacts them away).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A directory made by `caihong backup`.
    #[arg(long)]
    pub from: PathBuf,
    /// The member's home to restore into (its node stopped); data already there is moved
    /// aside to `data.before-restore-<ms>`, never deleted.
    #[arg(long)]
    pub home: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let url = args.node.url()?;
    let out =
        std::path::absolute(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let started = Instant::now();
    finish((|| {
        let manifest: Manifest = caihong_cli::api_client::post_json(
            &format!("{url}{}", route::ADMIN_BACKUP),
            &BackupRequest {
                out: out.display().to_string(),
            },
            BACKUP_TIMEOUT,
        )?;
        let seconds = started.elapsed().as_secs_f64();
        if args.node.json {
            let mut v = serde_json::to_value(&manifest).expect("json");
            v["dir"] = out.display().to_string().into();
            v["seconds"] = ((seconds * 1000.0).round() / 1000.0).into();
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        } else {
            println!(
                "backup of {} at height {} in {} ({:.1} MB, {seconds:.1} s)",
                manifest.member,
                manifest.height,
                out.display(),
                manifest.bytes as f64 / 1e6
            );
            println!("  block      {}", manifest.block_hash);
            println!("  state root {}", manifest.state_root);
            println!(
                "restore with: caihong restore --from {} --home HOME (its node stopped)",
                out.display()
            );
        }
        Ok(())
    })())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let restored = caihong_node::backup::restore(&args.from, &home)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&restored).expect("json"));
        return Ok(ExitCode::SUCCESS);
    }
    let m = &restored.manifest;
    println!(
        "restored {}'s backup at height {} into {}",
        m.member,
        m.height,
        home.data_dir().display()
    );
    if let Some(aside) = &restored.moved_aside {
        println!("the data that was there is in {}", aside.display());
    }
    if restored.signer_state_kept {
        println!("signer_state.bin kept: the node will not sign below what it signed last");
    } else {
        println!(
            "no signer_state.bin in {}: the node starts from the backup's record of what it \
             signed; if this node key signed after the backup was made, keep the node stopped \
             until the alliance is past the height it signed last",
            home.dir.display()
        );
    }
    println!(
        "start the node (caihong start --home {}); it catches up from height {} with its peers",
        home.dir.display(),
        m.height
    );
    Ok(ExitCode::SUCCESS)
}
