//! Run the deterministic consensus simulator over many seeds and print a summary.
//!
//! ```text
//! cargo run -p caihong-consensus --release --example simulate -- \
//!     --validators 7 --byzantine 2 --seeds 100 --heights 50 --faults
//! ```
//!
//! The last line is always
//! `seeds=<runs> heights=<decided heights, all runs> safety_violations=<n> liveness_failures=<n>`
//! and the exit status is non-zero when either count is not zero. Every failing seed prints
//! the command that replays it.

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use sim::{Behavior, SimConfig};

/// Deterministic Tendermint simulator for caihong-consensus.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Validators per height (n).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Byzantine validators (default: f = (n-1)/3). More than f shows the checker failing.
    #[arg(long)]
    byzantine: Option<usize>,
    /// Byzantine behaviour: silent, equivocate, split-vote, amnesia, mixed.
    #[arg(long, default_value = "mixed")]
    behavior: Behavior,
    /// Number of seeds (runs).
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    seed_start: u64,
    /// Heights every honest node must decide per run.
    #[arg(long, default_value_t = 50)]
    heights: u64,
    /// Turn on all faults with defaults: loss 5%, duplication 5%, asynchrony and partitions
    /// until GST 4 s, 2 crashes, validator set changes. Explicit flags below still apply.
    #[arg(long)]
    faults: bool,
    /// Message loss probability before GST (or always, if there is no GST).
    #[arg(long)]
    loss: Option<f64>,
    /// Message loss probability after GST (default 0: partial synchrony).
    #[arg(long)]
    loss_after_gst: Option<f64>,
    /// Message duplication probability.
    #[arg(long)]
    duplicate: Option<f64>,
    /// Minimum message delay (ms).
    #[arg(long)]
    min_delay: Option<u64>,
    /// Maximum message delay after GST (ms).
    #[arg(long)]
    max_delay: Option<u64>,
    /// Before GST, delays reach this multiple of the maximum.
    #[arg(long)]
    async_factor: Option<u64>,
    /// Random partitions of honest nodes until GST.
    #[arg(long)]
    partitions: bool,
    /// Global stabilization time (ms).
    #[arg(long)]
    gst: Option<u64>,
    /// Shortest partition (ms).
    #[arg(long)]
    partition_min: Option<u64>,
    /// Longest partition (ms).
    #[arg(long)]
    partition_max: Option<u64>,
    /// Adversarial scheduler: before GST, cut off each node that decides until the next
    /// partition change.
    #[arg(long)]
    isolate_deciders: bool,
    /// Crashes of honest nodes (before GST), each restarted from its persisted state.
    #[arg(long)]
    crashes: Option<usize>,
    /// Change the validator set every 5 heights.
    #[arg(long)]
    valset_changes: bool,
    /// Test-only: honest nodes ignore their lock (the checker should find violations).
    #[arg(long)]
    break_locking: bool,
    /// Rounds within which every height started after stabilization must decide.
    #[arg(long)]
    round_bound: Option<u32>,
    /// Print the event log of each run (use with --seeds 1 to replay one).
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let f = a.validators.saturating_sub(1) / 3;
    let byzantine = a.byzantine.unwrap_or(f);
    if a.validators == 0 || byzantine > a.validators {
        eprintln!("error: need 1 <= validators and byzantine <= validators");
        return ExitCode::from(2);
    }
    let mut cfg = if a.faults {
        SimConfig::faulty(a.validators, byzantine)
    } else {
        SimConfig::new(a.validators, byzantine)
    };
    cfg.behavior = a.behavior;
    cfg.heights = a.heights;
    if let Some(x) = a.loss {
        cfg.loss = x;
    }
    if let Some(x) = a.loss_after_gst {
        cfg.loss_after_gst = x;
    }
    if let Some(x) = a.duplicate {
        cfg.duplicate = x;
    }
    if let Some(x) = a.min_delay {
        cfg.min_delay = x;
    }
    if let Some(x) = a.max_delay {
        cfg.max_delay = x;
    }
    if let Some(x) = a.async_factor {
        cfg.async_factor = x;
    }
    if let Some(x) = a.gst {
        cfg.gst = x;
    }
    if let Some(x) = a.partition_min {
        cfg.partition_min = x;
    }
    if let Some(x) = a.partition_max {
        cfg.partition_max = x.max(cfg.partition_min);
    }
    if let Some(x) = a.crashes {
        cfg.crashes = x;
    }
    if let Some(x) = a.round_bound {
        cfg.round_bound = x;
    }
    cfg.partitions |= a.partitions || a.isolate_deciders;
    cfg.isolate_deciders = a.isolate_deciders;
    cfg.valset_changes |= a.valset_changes;
    cfg.break_locking = a.break_locking;
    if (cfg.partitions || cfg.crashes > 0) && cfg.gst == 0 {
        cfg.gst = 4000;
    }
    if cfg.gst == 0 {
        // No GST: the network is what --loss says throughout.
        cfg.loss_after_gst = a.loss_after_gst.unwrap_or(cfg.loss);
    }
    if ![cfg.loss, cfg.loss_after_gst, cfg.duplicate]
        .iter()
        .all(|p| (0.0..1.0).contains(p))
    {
        eprintln!("error: --loss, --loss-after-gst and --duplicate must be in [0, 1)");
        return ExitCode::from(2);
    }

    println!("scenario: {} (f = {f})", cfg.args());
    let start = Instant::now();
    let (mut heights, mut safety, mut liveness) = (0u64, 0u64, 0u64);
    let (mut sim_ms, mut evidence, mut crashes, mut max_round, mut max_round_stable) =
        (0u64, 0u64, 0u64, 0u32, 0u32);
    let mut post_stable_heights_ms = 0u64;
    for seed in a.seed_start..a.seed_start + a.seeds {
        let r = if a.verbose {
            let (r, log) = sim::run_verbose(seed, &cfg);
            for line in log {
                println!("{line}");
            }
            r
        } else {
            sim::run(seed, &cfg)
        };
        heights += r.decided_heights;
        sim_ms += r.sim_time;
        evidence += r.evidence;
        crashes += r.crashes;
        max_round = max_round.max(r.max_round);
        max_round_stable = max_round_stable.max(r.max_round_after_stable);
        post_stable_heights_ms += r.sim_time.saturating_sub(r.stable_time);
        safety += r.safety_violations.len() as u64;
        liveness += r.liveness_failures.len() as u64;
        if !r.ok() {
            println!("FAIL seed={seed}");
            for v in &r.safety_violations {
                println!("  safety: {v}");
            }
            for v in &r.liveness_failures {
                println!("  liveness: {v}");
            }
            println!("  replay: {}", cfg.replay_command(seed));
        } else if a.verbose {
            println!("ok seed={seed} fingerprint={:016x}", r.fingerprint);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let sim_s = sim_ms as f64 / 1000.0;
    println!(
        "stats: simulated {sim_s:.1} s in {wall:.1} s wall; {:.2} heights per simulated second, {:.1} heights per wall second; \
         evidence={evidence} crashes={crashes} max_round={max_round} max_round_after_stabilization={max_round_stable} \
         simulated time after stabilization {:.1} s",
        heights as f64 / sim_s.max(1e-9),
        heights as f64 / wall.max(1e-9),
        post_stable_heights_ms as f64 / 1000.0,
    );
    println!(
        "seeds={} heights={heights} safety_violations={safety} liveness_failures={liveness}",
        a.seeds
    );
    if safety == 0 && liveness == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
