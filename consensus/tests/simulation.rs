//! Simulator runs in CI: a few seeds per scenario, each checking agreement, validity, no
//! double signing, certificate validity and termination. Long sweeps: the `simulate` example.

mod sim;

use sim::SimConfig;

fn sweep(name: &str, cfg: &SimConfig, seeds: std::ops::Range<u64>) -> Vec<sim::Report> {
    let mut reports = Vec::new();
    for seed in seeds {
        let r = sim::run(seed, cfg);
        assert!(
            r.ok(),
            "scenario {name}, seed {seed} failed:\n  safety: {:?}\n  liveness: {:?}\n  replay: {}",
            r.safety_violations,
            r.liveness_failures,
            cfg.replay_command(seed)
        );
        reports.push(r);
    }
    reports
}

#[test]
fn healthy_network_decides_every_height() {
    let cfg = SimConfig {
        heights: 30,
        ..SimConfig::new(4, 0)
    };
    for r in sweep("healthy", &cfg, 0..5) {
        assert_eq!(r.decided_heights, 30);
        assert_eq!(
            r.max_round, 0,
            "seed {}: no faults, every height in round 0",
            r.seed
        );
    }
}
