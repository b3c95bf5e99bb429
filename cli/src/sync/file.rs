//! The JSON lines sink (`--out FILE`): one verified credit record per line, appended and
//! synced, then `FILE.checkpoint.json` replaced atomically with where the file stopped (the
//! light client's trusted state, the last record id and the file's length then).
//!
//! The file is only ever appended to. On a rerun, lines past the checkpoint's length are
//! records a killed run wrote before it could save the checkpoint: they stay, and the run
//! skips them by id. Only a torn last line (no newline: never a whole record) is cut off.
//! A file without a checkpoint (an older caihong, or a checkpoint removed) is verified again
//! from genesis, keeping every line it has.

use std::io::{BufRead, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Batch, Saved, Sink, credit_json, write_atomically};

#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    checkpoint: PathBuf,
    file: std::fs::File,
}

/// `FILE.checkpoint.json`.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    #[serde(flatten)]
    saved: Saved,
    /// The file's length when this was saved.
    out_bytes: u64,
}

fn checkpoint_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoint.json");
    path.with_file_name(name)
}

impl FileSink {
    pub fn open(path: &Path) -> anyhow::Result<FileSink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(FileSink {
            path: path.to_path_buf(),
            checkpoint: checkpoint_path(path),
            file,
        })
    }

    /// Reads the lines from `offset` on: the highest record id among them. Cuts a torn last
    /// line off; refuses a file whose lines are not ours.
    fn scan_from(&mut self, offset: u64) -> anyhow::Result<Option<u64>> {
        let path = self.path.display();
        let mut reader = std::io::BufReader::new(&self.file);
        reader.seek(SeekFrom::Start(offset))?;
        let mut highest = None;
        let mut at = offset;
        let mut line = Vec::new();
        let mut number = 0usize;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .with_context(|| format!("reading {path}"))?;
            if n == 0 {
                break;
            }
            number += 1;
            if line.last() != Some(&b'\n') {
                eprintln!(
                    "{path}: the last line ({n} bytes) is torn, from a run that was stopped \
                     while writing it; it is removed (its record is fetched again)"
                );
                self.file
                    .set_len(at)
                    .with_context(|| format!("cutting the torn line off {path}"))?;
                self.file.sync_all()?;
                break;
            }
            at += n as u64;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let id = serde_json::from_slice::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["record"]["id"].as_u64());
            match id {
                Some(id) => highest = highest.max(Some(id)),
                None => bail!(
                    "{path} is not a credit sync file (line {number} after byte {offset} has no \
                     record id); choose another --out"
                ),
            }
        }
        Ok(highest)
    }
}

impl Sink for FileSink {
    fn saved(&mut self) -> anyhow::Result<Option<Saved>> {
        let len = self.file.metadata()?.len();
        let checkpoint = match std::fs::read(&self.checkpoint) {
            Ok(bytes) => Some(
                serde_json::from_slice::<Checkpoint>(&bytes).with_context(|| {
                    format!(
                        "{} does not parse; move it away to verify {} again from genesis",
                        self.checkpoint.display(),
                        self.path.display()
                    )
                })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", self.checkpoint.display()));
            }
        };
        match checkpoint {
            Some(cp) => {
                if len < cp.out_bytes {
                    bail!(
                        "{} is {len} bytes but was {} bytes when {} was saved: it was changed \
                         by something other than caihong; move both away to sync afresh",
                        self.path.display(),
                        cp.out_bytes,
                        self.checkpoint.display()
                    );
                }
                let tail = self.scan_from(cp.out_bytes)?;
                Ok(Some(Saved {
                    last_credit: cp.saved.last_credit.max(tail),
                    ..cp.saved
                }))
            }
            None if len == 0 => Ok(None),
            None => {
                let highest = self.scan_from(0)?;
                eprintln!(
                    "{} has no checkpoint beside it: verifying from genesis again; its lines are \
                     kept{}",
                    self.path.display(),
                    highest.map_or(String::new(), |id| format!(
                        " and records up to {id} are not written twice"
                    ))
                );
                Ok(highest.map(|id| Saved {
                    trusted: None,
                    last_credit: Some(id),
                    filter: None,
                }))
            }
        }
    }

    fn deliver(&mut self, batch: &Batch) -> anyhow::Result<(u64, u64)> {
        let mut lines = String::new();
        for c in batch.credits {
            lines += &credit_json(c, &batch.after.chain_id).to_string();
            lines.push('\n');
        }
        let path = self.path.display();
        self.file
            .write_all(lines.as_bytes())
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("writing {path}"))?;
        let checkpoint = Checkpoint {
            saved: Saved {
                trusted: Some(batch.after.clone()),
                last_credit: batch.last_credit,
                filter: Some(batch.filter.to_string()),
            },
            out_bytes: self.file.metadata()?.len(),
        };
        write_atomically(
            &self.checkpoint,
            serde_json::to_string_pretty(&checkpoint)
                .expect("json")
                .as_bytes(),
        )?;
        Ok((batch.credits.len() as u64, 0))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
