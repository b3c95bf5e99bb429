//! Read-your-writes across members for the operator at this terminal. Members commit a block
//! at slightly different moments, so a read from Hohhot right after a write through Ordos could
//! miss it. After a transaction commits, its height and the alliance's genesis hash are kept in
//! a small file; a later command against any member of the same alliance first waits (up to
//! its `--timeout`) until that member has the height. This is the causal session of MongoDB's
//! clients, with a file as the session so it spans commands.
//!
//! The file is `$CAIHONG_SESSION` or `$HOME/.local/state/caihong/last-write.json`. It only
//! ever delays a command: a missing, unreadable or foreign file means no wait.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use caihong_cli::Client;

/// The last committed write: on which alliance, at which height.
#[derive(Debug, Serialize, Deserialize)]
struct LastWrite {
    genesis_hash: String,
    height: u64,
}

fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CAIHONG_SESSION") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".local/state/caihong/last-write.json"))
}

fn read() -> Option<LastWrite> {
    let text = std::fs::read_to_string(path()?).ok()?;
    serde_json::from_str(&text).ok()
}

/// Keeps `height` as the last write on `client`'s alliance (unless a later one is kept). The
/// file is replaced whole (write, then rename), so concurrent commands never read half of it.
pub fn remember(client: &Client, height: u64) {
    let (Some(path), Ok(status)) = (path(), client.status()) else {
        return;
    };
    if let Some(last) = read()
        && last.genesis_hash == status.genesis_hash
        && last.height >= height
    {
        return;
    }
    let last = LastWrite {
        genesis_hash: status.genesis_hash,
        height,
    };
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(&tmp, serde_json::to_vec(&last).expect("json")))
        .and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::debug!(path = %path.display(), error = %e, "the last write is not kept");
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Waits until the node at `url` has the last write's height, when it is of the same alliance,
/// for at most `timeout`; then says so and goes on (the answer may not show that write yet).
pub fn catch_up(url: &str, timeout: Duration) {
    let Some(last) = read() else {
        return;
    };
    let Ok(client) = Client::connect(url) else {
        return; // The command itself will say the node is unreachable.
    };
    let deadline = Instant::now() + timeout;
    loop {
        let Ok(status) = client.status() else {
            return;
        };
        if status.genesis_hash != last.genesis_hash || status.height >= last.height {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "note: {url} is at height {}, before your last write at height {}: the answer \
                 may not show it yet",
                status.height, last.height
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
