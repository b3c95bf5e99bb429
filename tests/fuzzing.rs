//! A small corpus-mutation fuzzer for stable Rust, run by `cargo test` for a bounded time.
//!
//! cargo-fuzz needs a nightly toolchain and this project builds on stable only, so each target
//! is a closure over bytes, run first on every input of its committed corpus
//! (`tests/fuzz-corpus/<target>/`, which also keeps the inputs of crashes found and fixed), then
//! on random mutations of them: bit flips, random and boundary bytes, boundary integers written
//! over a position (how bincode length prefixes go wrong), insertions, deletions, duplicated
//! ranges, truncation and splices of two inputs. It is not coverage-guided; the corpus seeds
//! every message kind so mutations start deep in the format.
//!
//! A panic is a failure: the input is written to `$CARGO_TARGET_TMPDIR/fuzz-crashes/` and its
//! path printed, to be added to the corpus with the fix. `FUZZ_SECS` (default 4 per target)
//! and `FUZZ_SEED` make longer or different runs.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The committed corpus directory of `target`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz-corpus")
        .join(target)
}

/// Every file in `dirs` (missing directories are skipped).
pub fn load_inputs(dirs: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths.into_iter().filter(|p| p.is_file()) {
            out.push(std::fs::read(&p).unwrap());
        }
    }
    out
}

const BOUNDARY_BYTES: [u8; 6] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const BOUNDARY_U64: [u64; 8] = [
    0,
    1,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    u64::MAX / 2,
    u64::MAX,
];

/// One to eight random edits of `input`, sometimes spliced with `other`.
pub fn mutate(input: &[u8], other: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..rng.gen_range(1..=8) {
        let len = data.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] = if rng.r#gen() {
                    rng.r#gen()
                } else {
                    BOUNDARY_BYTES[rng.gen_range(0..BOUNDARY_BYTES.len())]
                };
            }
            2 if len >= 8 => {
                let i = rng.gen_range(0..=len - 8);
                let v = BOUNDARY_U64[rng.gen_range(0..BOUNDARY_U64.len())];
                data[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            3 => {
                let i = rng.gen_range(0..=len);
                let n = rng.gen_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
                data.splice(i..i, bytes);
            }
            4 if len > 0 => {
                let i = rng.gen_range(0..len);
                let n = rng.gen_range(1..=(len - i).min(64));
                data.drain(i..i + n);
            }
            5 if len > 0 => {
                let i = rng.gen_range(0..len);
                let n = rng.gen_range(1..=(len - i).min(64));
                let copy = data[i..i + n].to_vec();
                let at = rng.gen_range(0..=len);
                data.splice(at..at, copy);
            }
            6 if len > 0 => data.truncate(rng.gen_range(0..len)),
            7 if !other.is_empty() => {
                let cut = rng.gen_range(0..=data.len());
                let from = rng.gen_range(0..other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            _ => {
                let i = rng.gen_range(0..=len);
                data.insert(i, BOUNDARY_BYTES[rng.gen_range(0..BOUNDARY_BYTES.len())]);
            }
        }
    }
    data
}

fn budget() -> Duration {
    let secs: f64 = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(secs)
}

/// Runs `check` on every corpus input of `target` (plus `extra_dirs`), then on mutations for
/// the time budget. Panics, naming the saved input, if `check` panics. Returns the number of
/// inputs tried.
pub fn fuzz(target: &str, extra_dirs: &[PathBuf], check: impl Fn(&[u8])) -> u64 {
    let mut dirs = vec![corpus_dir(target)];
    dirs.extend_from_slice(extra_dirs);
    let corpus = load_inputs(&dirs);
    assert!(
        !corpus.is_empty(),
        "no corpus for fuzz target {target} in {dirs:?}"
    );
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0063_6169_686f_6e67);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let run_one = |input: &[u8]| {
        // The default hook would print every caught panic's message; keep the first only.
        if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
            let tmp =
                option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
            let dir = tmp.join("fuzz-crashes");
            std::fs::create_dir_all(&dir).unwrap();
            let name = format!(
                "{target}-{}",
                hex::encode(&caihong_chaincode::Hash::of(input).0[..8])
            );
            let path = dir.join(name);
            std::fs::write(&path, input).unwrap();
            panic!(
                "fuzz target {target} panicked on {} bytes (seed {seed}); input saved to {}",
                input.len(),
                path.display()
            );
        }
    };
    for input in &corpus {
        run_one(input);
    }
    let deadline = Instant::now() + budget();
    let mut tried = corpus.len() as u64;
    while Instant::now() < deadline {
        for _ in 0..64 {
            let a = &corpus[rng.gen_range(0..corpus.len())];
            let b = &corpus[rng.gen_range(0..corpus.len())];
            run_one(&mutate(a, b, &mut rng));
            tried += 1;
        }
    }
    eprintln!(
        "fuzz {target}: {tried} inputs, {} in the corpus, seed {seed}",
        corpus.len()
    );
    tried
}
